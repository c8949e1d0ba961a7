package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

func seedEvents(t *testing.T, h *harness.Harness, orgID string, n int, action string, at time.Time) {
	t.Helper()
	for i := range n {
		ev := &store.AuditEvent{OrgID: orgID, Action: action, ActorType: "member", ActorID: fmt.Sprintf("mem_%d", i%3),
			TargetType: "tenant", TargetID: fmt.Sprintf("tnt_%d", i%5), OccurredAt: at.Add(time.Duration(i) * time.Millisecond)}
		if _, err := store.InsertEvent(context.Background(), h.DB, ev); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEventsPageNewestFirstAndStayStableUnderConcurrentInserts(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	tok := w.People[domain.RoleAdmin].Token
	base := time.Now().Add(-time.Hour).UTC()
	seedEvents(t, h, w.Org.ID, 1000, "tenant.suspended", base)
	var seeded []string
	if err := h.DB.NewRaw("SELECT id FROM audit_events WHERE org_id = ?", w.Org.ID).Scan(context.Background(), &seeded); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // events keep arriving while we page: new ones, and late ones dated inside the range being paged
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			seedEvents(t, h, w.Org.ID, 1, "tenant.suspended", time.Now().UTC())
			seedEvents(t, h, w.Org.ID, 1, "tenant.resumed", base.Add(time.Duration(i*37%1000)*time.Millisecond))
			time.Sleep(2 * time.Millisecond)
		}
	})
	seen := map[string]int{}
	var last time.Time
	var lastID string
	pages, _ := walkPages(t, srv, tok, orgPath(w, "/events?limit=100"), func(r response) {
		var evs []store.EventView
		r.data(t, &evs)
		for _, e := range evs {
			seen[e.ID]++
			if seen[e.ID] > 1 {
				t.Fatalf("event %s twice", e.ID)
			}
			if !last.IsZero() && (e.OccurredAt.After(last) || e.OccurredAt.Equal(last) && e.ID > lastID) {
				t.Fatalf("not newest first: %v %s after %v %s", e.OccurredAt, e.ID, last, lastID)
			}
			last, lastID = e.OccurredAt, e.ID
		}
	})
	close(stop)
	wg.Wait()
	for _, id := range seeded {
		if seen[id] != 1 {
			t.Fatalf("seeded event %s seen %d times", id, seen[id])
		}
	}
	if len(seeded) != 1000 || pages < 10 {
		t.Fatalf("%d events seeded, %d pages, want 1000 in at least 10", len(seeded), pages)
	}
}

func TestEventFiltersAndTheirValidation(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	tok := w.People[domain.RoleOwner].Token
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seedEvents(t, h, w.Org.ID, 30, "tenant.suspended", base)
	seedEvents(t, h, w.Org.ID, 20, "member.removed", base.Add(time.Minute))
	count := func(q string) int {
		r := req(t, srv, "GET", orgPath(w, "/events?limit=200&"+q), tok, nil)
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", q, r.Status, r.Raw)
		}
		var evs []store.EventView
		r.data(t, &evs)
		return len(evs)
	}
	tests := []struct {
		query string
		want  int
	}{
		{"action=tenant.suspended", 30},
		{"action=tenant.*", 30},
		{"action=member.*", 20},
		{"action=tenant.sus*", 30},
		{"action=tenant.res*", 0},
		{"action=tenant*", 30},
		{"action=tenant", 0},
		{"actor_id=mem_0&action=tenant.*", 10},
		{"target_id=tnt_1&action=member.removed", 4},
		{"since=2026-01-01T00:01:00Z&until=2026-01-01T00:02:00Z", 20},
		{"until=2026-01-01T00:00:00.010Z", 10},
	}
	for _, tt := range tests {
		if got := count(tt.query); got != tt.want {
			t.Errorf("%s: %d events, want %d", tt.query, got, tt.want)
		}
	}
	r := req(t, srv, "GET", orgPath(w, "/events?action=DROP%20TABLE&since=yesterday&limit=0"), tok, nil)
	if r.Status != 400 || len(r.Env.Error.FieldErrors) != 3 {
		t.Fatalf("invalid filters: %d %s", r.Status, r.Raw)
	}
}

func TestEventsExportAsNDJSONStreamsEveryMatchingEvent(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	seedEvents(t, h, w.Org.ID, 2500, "tenant.provisioned", time.Now().Add(-time.Hour).UTC())
	req := httptest.NewRequest("GET", orgPath(w, "/events?action=tenant.provisioned"), nil)
	req.Header.Set("Authorization", "Bearer "+w.People[domain.RoleAdmin].Token)
	req.Header.Set("Accept", "application/x-ndjson")
	resp := testApp(t, srv, req, 60_000)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") {
		t.Fatalf("export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	n := 0
	ids := map[string]bool{}
	for sc.Scan() {
		var e store.EventView
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		ids[e.ID] = true
		n++
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if n != 2500 || len(ids) != 2500 {
		t.Fatalf("exported %d lines, %d distinct; want 2500", n, len(ids))
	}
}
