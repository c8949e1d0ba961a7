package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// Issue 23, finding 5: one NDJSON export returned a whole trail (136 MB)
// for one request's budget, and nothing bounded how many ran at once. An
// export now returns at most exportCap events and says where the next one
// starts (Next-Cursor), spends a request of the budget per 200 events it
// reads (a page's worth), and at most two run at once in an organisation,
// one per caller.
const (
	exportCap    = 50_000
	exportCharge = 200
)

// seedTrailRows writes n events of the organisation, a millisecond apart
// from start (the newest last), 5,000 a statement (the harness's handle
// has a 5 s timeout), for the tests that need more events than
// InsertEvent writes quickly.
func seedTrailRows(t *testing.T, h *harness.Harness, orgID string, n int, start time.Time) {
	t.Helper()
	prefix := strings.ToUpper(uniq())
	for from := 1; from <= n; from += 5000 {
		if _, err := h.DB.ExecContext(context.Background(), `
			INSERT INTO audit_events (id, org_id, action, actor_type, actor_id, target_type, target_id, data, occurred_at)
			SELECT 'evt_' || ? || lpad(i::text, 8, '0'), ?, 'tenant.suspended', 'system', 'saga', 'tenant', 'tnt_' || (i % 7),
			       '{"before": {"state": "active"}, "after": {"state": "suspended"}}', ?::timestamptz + i * interval '1 millisecond'
			FROM generate_series(?::int, ?::int) AS i`, prefix, orgID, start, from, min(from+4999, n)); err != nil {
			t.Fatal(err)
		}
	}
}

// export is one NDJSON export's answer, read whole.
type export struct {
	Status     int
	Header     http.Header
	IDs        []string
	NextCursor string
	Err        *envelope
}

// exportEvents asks the organisation's events as NDJSON (after cursor,
// when given) through the in-process API, the answer checked against the
// contract.
func exportEvents(t *testing.T, srv *api.Server, w world, token, cursor string) export {
	t.Helper()
	path := orgPath(w, "/events")
	if cursor != "" {
		path += "?cursor=" + url.QueryEscape(cursor)
	}
	r := httptest.NewRequest("GET", path, nil)
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Accept", "application/x-ndjson")
	resp := testApp(t, srv, r, 120_000)
	defer resp.Body.Close()
	return readExport(t, resp)
}

func readExport(t *testing.T, resp *http.Response) export {
	t.Helper()
	out := export{Status: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode != 200 {
		raw, _ := io.ReadAll(resp.Body)
		out.Err = &envelope{}
		if err := json.Unmarshal(raw, out.Err); err != nil {
			t.Fatalf("export: %d %s", resp.StatusCode, raw)
		}
		return out
	}
	if _, err := ndjsonLines(resp.Body, func(line []byte) {
		var e store.EventView
		if err := json.Unmarshal(line, &e); err != nil || e.ID == "" {
			t.Fatalf("line %d is not an event: %v %.200s", len(out.IDs)+1, err, line)
		}
		out.IDs = append(out.IDs, e.ID)
	}); err != nil {
		t.Fatalf("after %d lines: %v", len(out.IDs), err)
	}
	out.NextCursor = resp.Header.Get("Next-Cursor")
	return out
}

// ndjsonLines hands each line of r to line and returns how many there
// were; an error is a stream that did not end cleanly.
func ndjsonLines(r io.Reader, line func([]byte)) (int, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	for n := 0; ; n++ {
		l, err := br.ReadSlice('\n')
		if err == io.EOF && len(l) == 0 {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		line(l)
	}
}

// TestAnExportStopsAtItsCapAndSaysWhereTheNextOneStarts: an organisation
// of 51,500 events exports in two requests, the first of exportCap events
// with a Next-Cursor header, the second, from that cursor, of the rest
// without one; together every event once, newest first.
func TestAnExportStopsAtItsCapAndSaysWhereTheNextOneStarts(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "team")
	const total = exportCap + 1500
	seedTrailRows(t, h, w.Org.ID, total, time.Now().Add(-time.Hour).UTC())
	admin := w.People[domain.RoleAdmin].Token

	first := exportEvents(t, srv, w, admin, "")
	if first.Status != 200 || len(first.IDs) != exportCap || first.NextCursor == "" {
		t.Fatalf("the first export: %d, %d events, Next-Cursor %q; want 200, %d events and a Next-Cursor", first.Status, len(first.IDs), first.NextCursor, exportCap)
	}
	rest := exportEvents(t, srv, w, admin, first.NextCursor)
	if rest.Status != 200 || len(rest.IDs) != total-exportCap || rest.NextCursor != "" {
		t.Fatalf("the export from Next-Cursor: %d, %d events, Next-Cursor %q; want 200, the other %d and no Next-Cursor", rest.Status, len(rest.IDs), rest.NextCursor, total-exportCap)
	}
	seen := map[string]bool{}
	all := append(first.IDs, rest.IDs...)
	for i, id := range all {
		if seen[id] || i > 0 && id >= all[i-1] {
			t.Fatalf("event %d (%s) is repeated or not older than the one before", i, id)
		}
		seen[id] = true
	}
}

// TestAnExportSpendsTheBudgetOfThePagesItReads: on a plan of 40 requests a
// minute (20 per caller), an export of 10,000 events may read 20 pages'
// worth (4,000 events), then says where to go on; the caller's next request
// is refused until the window ends, and another member's is not. On the
// old code the export returned all 10,000 for one request.
func TestAnExportSpendsTheBudgetOfThePagesItReads(t *testing.T) {
	t.Parallel() // waits for a fresh window
	h := harness.Get(t)
	w := newWorld(t, h, tinyPlan(t, h, 40))
	srv := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log})
	seedTrailRows(t, h, w.Org.ID, 10_000, time.Now().Add(-time.Hour).UTC())
	owner, admin := w.People[domain.RoleOwner].Token, w.People[domain.RoleAdmin].Token
	freshWindow(t, h)

	first := exportEvents(t, srv, w, owner, "")
	if first.Status != 200 || len(first.IDs) != 20*exportCharge || first.NextCursor == "" {
		t.Fatalf("the owner's export: %d, %d events, Next-Cursor %q; want 200, the %d events of the owner's share of 20 requests, and a Next-Cursor",
			first.Status, len(first.IDs), first.NextCursor, 20*exportCharge)
	}
	if r := req(t, srv, "GET", orgPath(w, "/events"), owner, nil); r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("the owner's next request: %d (Retry-After %q) %s; want 429: the export spent the owner's share", r.Status, r.Header.Get("Retry-After"), r.Raw)
	}
	if r := req(t, srv, "GET", orgPath(w, "/events?limit=1"), admin, nil); r.Status != 200 {
		t.Fatalf("the admin's page: %d %s; the owner's export must not spend the admin's share", r.Status, r.Raw)
	}
	// The admin goes on where the owner's export stopped, with what is left
	// of the admin's share (19 requests).
	next := exportEvents(t, srv, w, admin, first.NextCursor)
	if next.Status != 200 || len(next.IDs) != 19*exportCharge || next.NextCursor == "" || next.IDs[0] >= first.IDs[len(first.IDs)-1] {
		t.Fatalf("the admin's export from Next-Cursor: %d, %d events, Next-Cursor %q; want 200, %d events older than the owner's, and a Next-Cursor",
			next.Status, len(next.IDs), next.NextCursor, 19*exportCharge)
	}
}

// TestAtMostTwoExportsRunAtOnceInAnOrganisationOnePerCaller: two exports
// that their clients read slowly hold the organisation's two slots; a
// third is 429 with Retry-After, and so is a second by the same caller,
// while pages and other organisations' exports are served. When one ends,
// the next export runs.
func TestAtMostTwoExportsRunAtOnceInAnOrganisationOnePerCaller(t *testing.T) {
	h := harness.Get(t)
	srv := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log})
	addr := serve(t, srv)
	w := newWorld(t, h, "enterprise")
	other := newWorld(t, h, "team")
	// Far more than the sockets' buffers hold, so a client that does not
	// read keeps its export running.
	seedTrailRows(t, h, w.Org.ID, exportCap, time.Now().Add(-time.Hour).UTC())
	seedTrailRows(t, h, other.Org.ID, 100, time.Now().Add(-time.Hour).UTC())
	owner, admin := w.People[domain.RoleOwner].Token, w.People[domain.RoleAdmin].Token

	created := httpReq(t, srv, "POST", orgPath(w, "/service-accounts"), admin, map[string]any{
		"name": "siem", "role": "admin", "scopes": []string{"events:read"}, "token_expires_in": 3600}, "")
	if created.Status != 201 {
		t.Fatalf("create the service account: %d %s", created.Status, created.Raw)
	}
	var sa struct {
		Token string `json:"token"`
	}
	created.data(t, &sa)

	start := func(wd world, token string) *http.Response {
		t.Helper()
		r, _ := http.NewRequest("GET", "http://"+addr+orgPath(wd, "/events"), nil)
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Accept", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	refused := func(resp *http.Response, who string) {
		t.Helper()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		resp.Body.Close()
		if wait, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != 429 || wait < 1 || !strings.Contains(string(raw), "RATE_LIMITED") {
			t.Fatalf("%s: %d (Retry-After %q) %.300s; want 429 RATE_LIMITED with Retry-After", who, resp.StatusCode, resp.Header.Get("Retry-After"), raw)
		}
	}

	byOwner := start(w, owner)
	if byOwner.StatusCode != 200 {
		t.Fatalf("the owner's export: %d", byOwner.StatusCode)
	}
	refused(start(w, owner), "the owner's second export while the first runs")
	byAdmin := start(w, admin)
	if byAdmin.StatusCode != 200 {
		t.Fatalf("the admin's export: %d", byAdmin.StatusCode)
	}
	refused(start(w, sa.Token), "a third export in the organisation")

	if r := req(t, srv, "GET", orgPath(w, "/events?limit=5"), sa.Token, nil); r.Status != 200 {
		t.Fatalf("a page while two exports run: %d %s", r.Status, r.Raw)
	}
	if e := readExport(t, start(other, other.People[domain.RoleOwner].Token)); e.Status != 200 || len(e.IDs) != 100 {
		t.Fatalf("another organisation's export: %d, %d events", e.Status, len(e.IDs))
	}

	// The owner's client goes away: its slot is free again at once.
	byOwner.Body.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp := start(w, sa.Token)
		if resp.StatusCode == 200 {
			if e := readExport(t, resp); len(e.IDs) != exportCap {
				t.Fatalf("the service account's export: %d events, want %d", len(e.IDs), exportCap)
			}
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the service account's export is still %d 15 s after the owner's export ended", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Reading the admin's to its end frees its slot too.
	if e := readExport(t, byAdmin); len(e.IDs) != exportCap {
		t.Fatalf("the admin's export: %d events, want %d", len(e.IDs), exportCap)
	}
}
