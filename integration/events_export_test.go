package integration

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// exportGate holds the export's second page, its third read of
// audit_events (after where it stops, store.PlanExport, and its first
// page), until the test lets it go.
type exportGate struct {
	reads   atomic.Int32
	reached chan struct{}
	release chan struct{}
}

func (g *exportGate) BeforeQuery(ctx context.Context, ev *bun.QueryEvent) context.Context {
	if strings.Contains(ev.Query, "audit_events") {
		if g.reads.Add(1) == 3 {
			close(g.reached)
			select {
			case <-g.release:
			case <-time.After(30 * time.Second):
			}
		}
	}
	return ctx
}

func (g *exportGate) AfterQuery(context.Context, *bun.QueryEvent) {}

func TestAnExportCutShortByTheDatabaseEndsInAnErrorNotACleanEnd(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	seedEvents(t, h, w.Org.ID, 1500, "tenant.suspended", time.Now().Add(-time.Hour).UTC())
	// The API has a database handle of its own, closed while the export
	// waits to read its second page.
	db, err := store.Open(context.Background(), h.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gate := &exportGate{reached: make(chan struct{}), release: make(chan struct{})}
	db.AddQueryHook(gate)
	srv := api.New(api.Deps{DB: db, Temporal: h.Temporal, Log: h.Log})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+orgPath(w, "/events"), nil)
	req.Header.Set("Authorization", "Bearer "+w.People[domain.RoleAdmin].Token)
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("export: %d", resp.StatusCode)
	}
	select {
	case <-gate.reached:
	case <-time.After(30 * time.Second):
		t.Fatal("the export never read its second page")
	}
	db.Close()
	close(gate.release)

	br := bufio.NewReader(resp.Body)
	lines := 0
	for {
		_, err = br.ReadSlice('\n')
		if err != nil {
			break
		}
		lines++
	}
	// The stream must end in an error, since a clean end would tell the
	// client it has every event. (Cutting the connection may also drop the
	// end of the first page, still in the server's buffers.)
	if errors.Is(err, io.EOF) || lines > 1000 {
		t.Fatalf("after %d lines: %v; want at most the first page's 1000 lines, then an error (not a clean end)", lines, err)
	}
}
