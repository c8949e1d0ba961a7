package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/auditstream"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/internal/streamwake"
)

// fakeDNS answers lookups from its table, and "not found" otherwise.
type fakeDNS map[string][]netip.Addr

func (d fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := d[host]; ok {
		return a, nil
	}
	return nil, &netDNSNotFound{host}
}

type netDNSNotFound struct{ host string }

func (e *netDNSNotFound) Error() string { return "no such host " + e.host }

// streamsAPI is an API whose streams follow cfg, on a task queue of its own
// (no worker delivers: these tests are about what is accepted).
func streamsAPI(t *testing.T, cfg config.Streams, dns fakeDNS) (*api.Server, world) {
	t.Helper()
	h := harness.Get(t)
	w := newWorld(t, h, roomyPlan(t, h))
	return api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, TaskQueue: harness.TaskQueue(t), Keys: h.Keys,
		Streams: cfg, StreamResolver: dns, WorkerBound: 2 * time.Second}), w
}

func fieldErrors(r response) []string {
	var out []string
	if r.Env.Error != nil {
		for _, f := range r.Env.Error.FieldErrors {
			out = append(out, f.Field)
		}
	}
	return out
}

func TestAStreamToAPrivateAddressOrANameResolvingToOneIsRefusedAtCreation(t *testing.T) {
	dns := fakeDNS{"siem.corp.example": {netip.MustParseAddr("10.1.2.3")}, "siem.example.net": {netip.MustParseAddr("93.184.216.34")},
		"rebind.example.net": {netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("169.254.169.254")}}
	closed := harness.Streams()
	closed.AllowPrivate = false
	srv, w := streamsAPI(t, closed, dns)
	open, ow := streamsAPI(t, harness.Streams(), dns)
	for _, tc := range []struct {
		srv      *api.Server
		w        world
		endpoint string
		status   int
		says     string
	}{
		{srv, w, "https://127.0.0.1/audit", 400, "loopback"},
		{srv, w, "https://10.0.0.5/audit", 400, "private"},
		{srv, w, "https://localhost/audit", 400, "loopback"},
		{srv, w, "https://siem.corp.example/audit", 400, "resolves to an address that is not allowed: private"},
		{srv, w, "https://rebind.example.net/audit", 400, "cloud metadata"},
		{srv, w, "https://169.254.169.254/latest/meta-data", 400, "not allowed"},
		{srv, w, "http://siem.example.net/audit", 400, "https"},
		{srv, w, "https://user:pw@siem.example.net/audit", 400, "credential"},
		{srv, w, "https://siem.example.net/audit", 201, ""},
		{srv, w, "https://unknown.example.net/audit", 201, ""}, // checked at each delivery
		{open, ow, "http://127.0.0.1:9/audit", 201, ""},
		{open, ow, "https://siem.corp.example/audit", 201, ""},
		{open, ow, "https://169.254.169.254/latest/meta-data", 400, "not allowed"},
		{open, ow, "https://[fd00:ec2::254]/", 400, "not allowed"},
	} {
		r := httpReq(t, tc.srv, "POST", orgPath(tc.w, "/audit-streams"), tc.w.People[domain.RoleOwner].Token,
			map[string]any{"name": "SIEM", "kind": "https", "endpoint": tc.endpoint}, "")
		if r.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.endpoint, r.Status, r.Raw, tc.status)
			continue
		}
		if tc.status == 400 && (r.code() != "BAD_REQUEST" || !slices.Contains(fieldErrors(r), "endpoint") || !strings.Contains(r.Raw, tc.says)) {
			t.Errorf("%s: %s, want endpoint refused saying %q", tc.endpoint, r.Raw, tc.says)
		}
	}
}

func TestAStreamsRequestIsCheckedEveryFieldAtOnce(t *testing.T) {
	srv, w := streamsAPI(t, harness.Streams(), nil)
	many := make([]string, domain.MaxStreamActions+1)
	for i := range many {
		many[i] = domain.AuditActions()[i]
	}
	for _, tc := range []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"nothing", map[string]any{}, []string{"endpoint", "kind", "name"}},
		{"a name too long and an unknown kind", map[string]any{"name": strings.Repeat("n", 101), "kind": "kafka", "endpoint": "https://x.example"}, []string{"kind", "name"}},
		{"a format on datadog and no key", map[string]any{"name": "d", "kind": "datadog", "endpoint": "https://x.example", "format": "ndjson"}, []string{"credential", "format"}},
		{"a credential on https and an unknown format", map[string]any{"name": "h", "kind": "https", "endpoint": "https://x.example", "format": "xml", "credential": "k"}, []string{"credential", "format"}},
		{"a credential that would break a header", map[string]any{"name": "s", "kind": "splunk_hec", "endpoint": "https://x.example", "credential": "a\r\nX-Evil: 1"}, []string{"credential"}},
		{"an unknown family", map[string]any{"name": "h", "kind": "https", "endpoint": "https://x.example", "actions": []string{"tenant.*", "nope.*"}}, []string{"actions"}},
		{"an action named twice", map[string]any{"name": "h", "kind": "https", "endpoint": "https://x.example", "actions": []string{"tenant.provisioned", "tenant.provisioned"}}, []string{"actions"}},
		{"too many actions", map[string]any{"name": "h", "kind": "https", "endpoint": "https://x.example", "actions": many}, []string{"actions"}},
		{"a pattern that is not a family", map[string]any{"name": "h", "kind": "https", "endpoint": "https://x.example", "actions": []string{"tenant.prov*"}}, []string{"actions"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httpReq(t, srv, "POST", orgPath(w, "/audit-streams"), w.People[domain.RoleAdmin].Token, tc.body, "")
			got := fieldErrors(r)
			slices.Sort(got)
			if r.Status != 400 || !slices.Equal(slices.Compact(got), tc.fields) {
				t.Fatalf("%d, fields %v, want 400 with %v: %s", r.Status, got, tc.fields, r.Raw)
			}
		})
	}
}

func TestAStreamsCreationIsIdempotentEachChangeAuditedAndTheQuotaHolds(t *testing.T) {
	h := harness.Get(t)
	srv, w := streamsAPI(t, harness.Streams(), nil)
	owner := w.People[domain.RoleOwner]
	body := map[string]any{"name": "Lifecycle hooks", "kind": "https", "endpoint": "https://ci.example.net/hooks",
		"actions": []string{"tenant.provisioned", "tenant.provisioning_failed"}}
	first := httpReq(t, srv, "POST", orgPath(w, "/audit-streams"), owner.Token, body, "hooks-1")
	again := httpReq(t, srv, "POST", orgPath(w, "/audit-streams"), owner.Token, body, "hooks-1")
	var a, b struct {
		Stream        streamData `json:"stream"`
		SigningSecret string     `json:"signing_secret"`
	}
	first.data(t, &a)
	again.data(t, &b)
	if first.Status != 201 || again.Status != 201 || a.Stream.ID != b.Stream.ID || a.SigningSecret == "" || b.SigningSecret != "" ||
		again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a creation and its retry: %s / %s", first.Raw, again.Raw)
	}
	id := a.Stream.ID
	other := httpReq(t, srv, "POST", orgPath(w, "/audit-streams"), owner.Token, map[string]any{"name": "Other", "kind": "https", "endpoint": "https://x.example"}, "hooks-1")
	if other.Status != 422 {
		t.Fatalf("the key with another body: %d %s", other.Status, other.Raw)
	}
	for _, step := range []struct {
		method, rest string
		body         map[string]any
		action       string
	}{
		{"PATCH", "", map[string]any{"name": "CI hooks", "actions": []string{"tenant.*"}}, domain.ActionStreamUpdated},
		{"PATCH", "", map[string]any{"paused": true}, domain.ActionStreamPaused},
		{"PATCH", "", map[string]any{"paused": false}, domain.ActionStreamResumed},
		{"POST", "/replay", map[string]any{"since": time.Now().Add(-time.Hour)}, domain.ActionStreamReplayed},
		{"DELETE", "", nil, domain.ActionStreamDeleted},
	} {
		r := httpReq(t, srv, step.method, orgPath(w, "/audit-streams/"+id+step.rest), owner.Token, step.body, "step-"+uniq())
		if r.Status != 200 {
			t.Fatalf("%s %s: %d %s", step.method, step.rest, r.Status, r.Raw)
		}
		var evs []store.AuditEvent
		if err := h.DB.NewSelect().Model(&evs).Where("org_id = ? AND target_id = ? AND action = ?", w.Org.ID, id, step.action).Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].ActorID != owner.MemberID || evs[0].RequestID == "" {
			t.Fatalf("%s: %d events %+v", step.action, len(evs), evs)
		}
		if strings.Contains(string(evs[0].Data), "cpw_") {
			t.Fatalf("%s's event holds the secret: %s", step.action, evs[0].Data)
		}
	}
	if r := httpReq(t, srv, "GET", orgPath(w, "/audit-streams/"+id), owner.Token, nil, ""); r.Status != 404 {
		t.Fatalf("a deleted stream: %d", r.Status)
	}
	for i := range store.MaxStreams {
		r := httpReq(t, srv, "POST", orgPath(w, "/audit-streams"), owner.Token, map[string]any{"name": "s", "kind": "https", "endpoint": "https://x.example"}, "q-"+uniq())
		if r.Status != 201 {
			t.Fatalf("stream %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	over := httpReq(t, srv, "POST", orgPath(w, "/audit-streams"), owner.Token, map[string]any{"name": "s", "kind": "https", "endpoint": "https://x.example"}, "q-over")
	if over.Status != 409 || !strings.Contains(over.Raw, "quota") {
		t.Fatalf("over the quota: %d %s", over.Status, over.Raw)
	}
}

func TestTheTestButtonAnswersTheReceiversStatusAndLogsIt(t *testing.T) {
	h := harness.Get(t)
	srv, w := streamsAPI(t, harness.Streams(), nil)
	rcv := newReceiver(t)
	r := httpReq(t, srv, "POST", orgPath(w, "/audit-streams"), w.People[domain.RoleOwner].Token,
		map[string]any{"name": "Hook", "kind": "https", "format": "cloudevents", "endpoint": rcv.url("/hook")}, "")
	var created struct {
		Stream        streamData `json:"stream"`
		SigningSecret string     `json:"signing_secret"`
	}
	r.data(t, &created)
	id := created.Stream.ID
	type result struct {
		Delivered bool    `json:"delivered"`
		Status    int     `json:"status"`
		LatencyMS int64   `json:"latency_ms"`
		Error     *string `json:"error"`
		EventID   string  `json:"event_id"`
	}
	test := func() result {
		t.Helper()
		r := httpReq(t, srv, "POST", orgPath(w, "/audit-streams/"+id+"/test"), w.People[domain.RoleAdmin].Token, nil, "t-"+uniq())
		if r.Status != 200 {
			t.Fatalf("test: %d %s", r.Status, r.Raw)
		}
		var res result
		r.data(t, &res)
		return res
	}
	rcv.setAnswer(func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("no tea here"))
	})
	refused := test()
	if refused.Delivered || refused.Status != 418 || refused.Error == nil || !strings.Contains(*refused.Error, "no tea here") {
		t.Fatalf("a refusal: %+v", refused)
	}
	rcv.setAnswer(nil)
	ok := test()
	if !ok.Delivered || ok.Status != 200 || ok.Error != nil {
		t.Fatalf("a delivery: %+v", ok)
	}
	got := rcv.requests()
	last := got[len(got)-1]
	if err := auditstream.Verify(last.Signature, last.Body, []byte(created.SigningSecret), time.Minute, time.Now()); err != nil {
		t.Fatalf("the test event's signature: %v", err)
	}
	var batch []struct {
		Type string `json:"type"`
		Data struct {
			ID, Action string
			Target     struct{ ID string }
		} `json:"data"`
	}
	if err := json.Unmarshal(last.Body, &batch); err != nil || len(batch) != 1 || batch[0].Type != "com.intelliauth.audit.audit_stream.test" ||
		batch[0].Data.ID != ok.EventID || batch[0].Data.Target.ID != id || last.Key != id+"/"+ok.EventID+"/"+ok.EventID {
		t.Fatalf("the test event (CloudEvents batch): %s (%v), key %s", last.Body, err, last.Key)
	}
	var trail int
	if err := h.DB.NewSelect().Model((*store.AuditEvent)(nil)).ColumnExpr("count(*)").Where("org_id = ? AND action = ?", w.Org.ID, domain.ActionStreamTest).Scan(context.Background(), &trail); err != nil || trail != 0 {
		t.Fatalf("test events in the trail: %d %v", trail, err)
	}
	var rows []map[string]any
	httpReq(t, srv, "GET", orgPath(w, "/audit-streams/"+id+"/deliveries"), w.People[domain.RoleOwner].Token, nil, "").data(t, &rows)
	if len(rows) != 2 || rows[0]["outcome"] != "test" || rows[0]["status"] != float64(200) || rows[1]["status"] != float64(418) {
		t.Fatalf("the delivery log: %v", rows)
	}
}

// TestTheNotifierWakesAStreamBehindItsChainOncePerLength: a look wakes
// the active stream behind a chain that moved, not again while the chain
// stays where it was, again once it grows; a paused stream, and a stream
// whose chain did not move lately, are not woken.
func TestTheNotifierWakesAStreamBehindItsChainOncePerLength(t *testing.T) {
	h := harness.Get(t)
	srv, w := streamsAPI(t, harness.Streams(), nil)
	st := &streamStack{h: h, w: w}
	create := func(name string) streamData {
		r := httpReq(t, srv, "POST", orgPath(w, "/audit-streams"), w.People[domain.RoleOwner].Token,
			map[string]any{"name": name, "kind": "https", "endpoint": "https://x.example/" + name}, "")
		var c struct{ Stream streamData }
		r.data(t, &c)
		return c.Stream
	}
	active, paused := create("active"), create("paused")
	if r := httpReq(t, srv, "PATCH", orgPath(w, "/audit-streams/"+paused.ID), w.People[domain.RoleOwner].Token, map[string]any{"paused": true}, ""); r.Status != 200 {
		t.Fatalf("pause: %d %s", r.Status, r.Raw)
	}
	var woken []string
	n := &streamwake.Notifier{DB: h.DB, Log: h.Log, Within: 5 * time.Second, Wake: func(_ context.Context, id, orgID string) error {
		if orgID == w.Org.ID {
			woken = append(woken, id)
		}
		return nil
	}}
	look := func() {
		t.Helper()
		if _, err := n.Look(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	st.writeEvents(t, 3)
	look()
	look()
	if !slices.Equal(woken, []string{active.ID}) {
		t.Fatalf("woken %v, want the active stream once", woken)
	}
	st.writeEvents(t, 1)
	look()
	if !slices.Equal(woken, []string{active.ID, active.ID}) {
		t.Fatalf("woken %v, want the active stream once more after the chain grew", woken)
	}
	// A notifier that never woke it (another replica's, say) does not
	// either once the chain stood still longer than it looks back.
	time.Sleep(1500 * time.Millisecond)
	n = &streamwake.Notifier{DB: h.DB, Log: h.Log, Within: time.Second, Wake: n.Wake}
	look()
	if len(woken) != 2 {
		t.Fatalf("woken %v after the chain stood still", woken)
	}
}

// TestWhereAStreamSendsTheTrailNeedsARecentAuthentication: a stolen
// session cannot set up a stream, nor point one elsewhere; renaming or
// pausing it needs nothing more, and a reauthentication lets the same
// request through.
func TestWhereAStreamSendsTheTrailNeedsARecentAuthentication(t *testing.T) {
	h := harness.Get(t)
	srv, w := streamsAPI(t, harness.Streams(), nil)
	owner := w.People[domain.RoleOwner]
	body := map[string]any{"name": "SIEM", "kind": "https", "endpoint": "https://siem.example.net/in"}
	created := httpReq(t, srv, "POST", orgPath(w, "/audit-streams"), owner.Token, body, "")
	var c struct{ Stream streamData }
	created.data(t, &c)
	stale(t, h, owner.Token)
	for _, tc := range []struct {
		method, path string
		body         map[string]any
		status       int
	}{
		{"POST", "/audit-streams", body, 403},
		{"PATCH", "/audit-streams/" + c.Stream.ID, map[string]any{"endpoint": "https://elsewhere.example.net/in"}, 403},
		{"PATCH", "/audit-streams/" + c.Stream.ID, map[string]any{"name": "Renamed", "paused": true}, 200},
	} {
		r := httpReq(t, srv, tc.method, orgPath(w, tc.path), owner.Token, tc.body, "stale-"+uniq())
		if r.Status != tc.status || (tc.status == 403 && r.code() != "REAUTHENTICATION_REQUIRED") {
			t.Fatalf("%s %s with a stale session: %d %s, want %d", tc.method, tc.path, r.Status, r.Raw, tc.status)
		}
	}
	if r := reauthenticate(t, srv, owner.Token); r.Status != 200 {
		t.Fatalf("reauthenticate: %d %s", r.Status, r.Raw)
	}
	if r := httpReq(t, srv, "POST", orgPath(w, "/audit-streams"), owner.Token, body, ""); r.Status != 201 {
		t.Fatalf("after reauthenticating: %d %s", r.Status, r.Raw)
	}
}
