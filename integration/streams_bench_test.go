package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/auditstream"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/internal/streamwake"
	"github.com/intelliauth/controlplane/workflows"
)

// BenchmarkStreamDelivery measures audit streams' delivery to an https
// receiver on loopback (TLS, HTTP/1.1, in the test process), with the
// production's stream settings (32 delivery slots, 30 s timeout, the
// notifier looking once a second) but for CP_STREAM_ALLOW_PRIVATE:
//
//   - one: one NDJSON stream of the organisation of a million chained
//     events (events_bench_test.go's trail), created, then replayed from
//     the first event, until its cursor reaches the chain's head;
//   - thousand: 1,000 organisations of 100 chained events each (the
//     trail's shapes), one stream each, created and replayed from the
//     first event at once (16 requests in flight), until every cursor
//     reaches its head; then what the 1,000 idle streams cost in 30 s,
//     beside 30 s before any stream existed.
//
// The receiver keeps no body: it checks each batch's seqs follow each
// other, that none is skipped between batches, and the signature of
// some batches. Only benchmarks seed: `go test ./...` never does.
//
//	go test -run '^$' -bench StreamDelivery -benchtime 1x -timeout 60m ./integration
func BenchmarkStreamDelivery(b *testing.B) {
	countStatements(harness.Get(b))
	b.Run("one", benchOneStream)
	b.Run("thousand", benchThousandStreams)
}

// benchStreams are the production's stream settings, with receivers on
// loopback allowed.
func benchStreams() config.Streams {
	cfg := config.DefaultStreams()
	cfg.AllowPrivate = true
	return cfg
}

func benchOneStream(b *testing.B) {
	h := harness.Get(b)
	ctx := context.Background()
	tr := auditTrail(b, h)
	b.Logf("%d events in organisation %s, %s", tr.Count, tr.Org.ID, tr.Seeded)
	owner := addPerson(b, h, tr.Org.ID, domain.RoleOwner)
	rcv := newBenchReceiver(b, 50)
	st := newStreamStackOf(b, benchStreams(), stackOptions{Every: streamwake.DefaultEvery, TLS: rcv.tls},
		world{Org: tr.Org, People: map[domain.Role]person{domain.RoleOwner: owner}})
	c := newStreamsClient(b, st)
	var first string
	if err := h.DB.NewRaw("SELECT id FROM audit_events WHERE org_id = ? AND seq = 1", tr.Org.ID).Scan(ctx, &first); err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	load0 := loadAverage()
	cpu0, pg0, stmts0 := cpuTime(os.Getpid()), pgCPU(b, h.DB), statements.Load()
	t0 := time.Now()
	id := c.createAndReplay(b, rcv, tr.Org.ID, owner.Token, "/one", first)
	waitCaughtUp(b, h.DB, []string{id}, 30*time.Minute, nil)
	elapsed := time.Since(t0)
	cpu, pg, stmts := cpuTime(os.Getpid())-cpu0, pgCPUSince(b, h.DB, pg0), statements.Load()-stmts0
	b.StopTimer()

	head, err := store.ChainLength(ctx, h.DB, tr.Org.ID)
	if err != nil {
		b.Fatal(err)
	}
	rs := rcv.check(b, id, head)
	var lat []time.Duration
	var failed int
	var logged []struct {
		Outcome   string `bun:"outcome"`
		LatencyMS int    `bun:"latency_ms"`
	}
	if err := h.DB.NewRaw("SELECT outcome, latency_ms FROM audit_stream_deliveries WHERE stream_id = ?", id).Scan(ctx, &logged); err != nil {
		b.Fatal(err)
	}
	for _, d := range logged {
		if d.Outcome != store.DeliveryDelivered {
			failed++
			continue
		}
		lat = append(lat, time.Duration(d.LatencyMS)*time.Millisecond)
	}
	if len(lat) == 0 {
		b.Fatal("no delivery logged")
	}
	perK := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / (float64(rs.distinct) / 1000) }
	rate := float64(rs.distinct) / elapsed.Seconds()
	b.Logf("load average %s at the start, %s at the end", load0, loadAverage())
	b.Logf("one stream: %d events (seq 1…%d, each at least once, in order; %d lines, %d batches, %d went back: the replay) in %v from its creation: %.0f events/s, %.1f batches/s; %d signatures verified",
		rs.distinct, head, rs.events, rs.batches, rs.back, elapsed.Round(time.Millisecond), rate, float64(rs.batches)/elapsed.Seconds(), rs.verified)
	b.Logf("batch latency (the delivery log's %d newest, the receiver's answer): p50 %v p99 %v; a batch every p50 %v p99 %v at the receiver; %d failed attempts logged",
		len(lat), percentile(lat, 50), percentile(lat, 99), percentile(rs.gaps, 50).Round(10*time.Microsecond), percentile(rs.gaps, 99).Round(10*time.Microsecond), failed)
	b.Logf("processor time: the test process (worker, receiver, Temporal) %v, %.1f ms per 1,000 events; Postgres %v, %.1f ms per 1,000 events; %d statements, %.1f per batch",
		cpu, perK(cpu), pg, perK(pg), stmts, float64(stmts)/float64(rs.batches))
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(float64(rs.batches)/elapsed.Seconds(), "batches/s")
	b.ReportMetric(ms(percentile(lat, 50)), "batch-p50-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "batch-p99-ms")
	b.ReportMetric(ms(percentile(rs.gaps, 50)), "interval-p50-ms")
	b.ReportMetric(ms(percentile(rs.gaps, 99)), "interval-p99-ms")
	b.ReportMetric(perK(cpu), "cpu-ms/1k-events")
	b.ReportMetric(perK(pg), "pg-cpu-ms/1k-events")
	b.ReportMetric(float64(stmts)/float64(rs.batches), "statements/batch")
}

const (
	// benchStreamOrgs organisations of benchStreamEvents events each, one
	// stream each.
	benchStreamOrgs   = 1000
	benchStreamEvents = 100
	// benchIdle is how long idle streams are watched.
	benchIdle = 30 * time.Second
)

func benchThousandStreams(b *testing.B) {
	h := harness.Get(b)
	ctx := context.Background()
	plan := benchPlan(b, h)
	t0 := time.Now()
	worlds := make([]world, benchStreamOrgs)
	ids := make([]string, benchStreamOrgs)
	parallel(b, len(worlds), 8, func(i int) {
		now := time.Now().UTC()
		org := store.Organization{ID: domain.NewID(domain.PrefixOrganization), Slug: "bench-streams-" + uniq(), Name: fmt.Sprintf("Bench Streams %d", i),
			PlanID: plan, CreatedAt: now, UpdatedAt: now}
		if _, err := h.DB.NewInsert().Model(&org).Exec(ctx); err != nil {
			b.Error(err)
			return
		}
		worlds[i] = world{Org: org, People: map[domain.Role]person{domain.RoleOwner: addPerson(b, h, org.ID, domain.RoleOwner)}}
		ids[i] = org.ID
	})
	if b.Failed() {
		b.FailNow()
	}
	seedStreamOrgs(b, h, ids, benchStreamEvents)
	first := map[string]string{}
	var rows []struct {
		OrgID string `bun:"org_id"`
		ID    string `bun:"id"`
	}
	if err := h.DB.NewRaw("SELECT org_id, id FROM audit_events WHERE org_id IN (?) AND seq = 1", bun.In(ids)).Scan(ctx, &rows); err != nil {
		b.Fatal(err)
	}
	for _, r := range rows {
		first[r.OrgID] = r.ID
	}
	b.Logf("%d organisations with %d chained events each in %v", len(worlds), benchStreamEvents, time.Since(t0).Round(100*time.Millisecond))

	rcv := newBenchReceiver(b, 1)
	st := newStreamStackOf(b, benchStreams(), stackOptions{Every: streamwake.DefaultEvery, TLS: rcv.tls}, worlds...)
	c := newStreamsClient(b, st)
	before := measureIdle(b, st, rcv, nil)

	b.ResetTimer()
	load0 := loadAverage()
	cpu0, pg0, stmts0 := cpuTime(os.Getpid()), pgCPU(b, h.DB), statements.Load()
	t0 = time.Now()
	streams := make([]string, len(worlds))
	parallel(b, len(worlds), 16, func(i int) {
		w := worlds[i]
		streams[i] = c.createAndReplay(b, rcv, w.Org.ID, w.People[domain.RoleOwner].Token, fmt.Sprintf("/s/%d", i), first[w.Org.ID])
	})
	if b.Failed() {
		b.FailNow()
	}
	answered := time.Since(t0)
	var marks []string
	waitCaughtUp(b, h.DB, streams, 30*time.Minute, func(behind int) {
		if done := len(streams) - behind; len(marks) < 2 && done >= len(streams)*[]int{50, 90}[len(marks)]/100 {
			marks = append(marks, fmt.Sprintf("%d%% caught up after %v", done*100/len(streams), time.Since(t0).Round(100*time.Millisecond)))
		}
	})
	elapsed := time.Since(t0)
	cpu, pg, stmts := cpuTime(os.Getpid())-cpu0, pgCPUSince(b, h.DB, pg0), statements.Load()-stmts0
	b.StopTimer()

	var distinct, lines, batches int64
	for i, id := range streams {
		head, err := store.ChainLength(ctx, h.DB, worlds[i].Org.ID)
		if err != nil {
			b.Fatal(err)
		}
		rs := rcv.check(b, id, head)
		distinct, lines, batches = distinct+rs.distinct, lines+rs.events, batches+int64(rs.batches)
	}
	perK := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / (float64(distinct) / 1000) }
	rate := float64(distinct) / elapsed.Seconds()
	b.Logf("load average %s at the start, %s at the end", load0, loadAverage())
	b.Logf("%d streams created and replayed (every request answered after %v); %s; all caught up after %v: %d events (%d lines, %d batches): %.0f events/s",
		len(streams), answered.Round(100*time.Millisecond), strings.Join(marks, ", "), elapsed.Round(100*time.Millisecond), distinct, lines, batches, rate)
	b.Logf("processor time: the test process (API, worker, receiver, Temporal) %v, %.1f ms per 1,000 events; Postgres %v, %.1f ms per 1,000 events; %d statements",
		cpu, perK(cpu), pg, perK(pg), stmts)

	time.Sleep(5 * time.Second) // the last runs end and their workflows wait
	idle := measureIdle(b, st, rcv, streams)
	b.Logf("%v before any stream: %s", benchIdle, before)
	b.Logf("%v with %d idle streams: %s", benchIdle, len(streams), idle)
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(elapsed.Seconds(), "caught-up-s")
	b.ReportMetric(perK(cpu), "cpu-ms/1k-events")
	b.ReportMetric(perK(pg), "pg-cpu-ms/1k-events")
	b.ReportMetric(float64(idle.history), "idle-history-events")
	b.ReportMetric(float64(idle.statements), "idle-statements")
	b.ReportMetric(ms(idle.cpu), "idle-cpu-ms")
	b.ReportMetric(ms(before.cpu), "no-streams-idle-cpu-ms")
}

// parallel runs f(0)…f(n-1), at most inflight at once.
func parallel(b *testing.B, n, inflight int, f func(i int)) {
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}

// seedStreamOrgs writes per events in each organisation, the trail's
// shapes (writeTrail, each organisation an hour of its own, so no two
// organisations' events have the same id), in one COPY, then chains them
// and analyses the table.
func seedStreamOrgs(b *testing.B, h *harness.Harness, orgIDs []string, per int) {
	b.Helper()
	ctx := context.Background()
	end := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	db := copyTrail(b, h, "streams-bench-seed", per*len(orgIDs), func(w *bufio.Writer) error {
		for k, org := range orgIDs {
			var tenants []trailTenant
			to := end.Add(-time.Duration(k) * time.Hour)
			if err := writeTrail(w, org, per, to.Add(-time.Hour), to, &tenants); err != nil {
				return err
			}
		}
		return nil
	})
	if _, err := store.ChainBacklogs(ctx, db); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "VACUUM (ANALYZE) audit_events"); err != nil {
		b.Fatal(err)
	}
}

// streamsClient calls the stack's API over loopback, as a customer's
// client would.
type streamsClient struct {
	base string
	http *http.Client
}

func newStreamsClient(b *testing.B, st *streamStack) streamsClient {
	return streamsClient{base: "http://" + serve(b, st.srv) + "/api/v1/organizations/", http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}}
}

// post posts the body as the token's holder, with an Idempotency-Key, and
// decodes the answer's data into out; any status but want fails b.
func (c streamsClient) post(b *testing.B, token, path string, body, out any, want int) {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", c.base+path, bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "bench-"+uniq())
	resp, err := c.http.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if resp.StatusCode != want || json.Unmarshal(answer, &env) != nil || json.Unmarshal(env.Data, out) != nil {
		b.Fatalf("POST %s: %d %.300s", path, resp.StatusCode, answer)
	}
}

// createAndReplay creates an https NDJSON stream of the organisation to
// the receiver's path, tells the receiver its secret, and replays it from
// the event given; it returns the stream's id.
func (c streamsClient) createAndReplay(b *testing.B, rcv *benchReceiver, orgID, token, path, from string) string {
	var created struct {
		Stream        streamData `json:"stream"`
		SigningSecret string     `json:"signing_secret"`
	}
	c.post(b, token, orgID+"/audit-streams", map[string]any{"name": "Bench " + path, "kind": "https", "endpoint": rcv.srv.URL + path}, &created, 201)
	rcv.setSecret(created.Stream.ID, created.SigningSecret)
	var replayed streamData
	c.post(b, token, orgID+"/audit-streams/"+created.Stream.ID+"/replay", map[string]any{"from_event_id": from}, &replayed, 200)
	if replayed.CursorSeq != 0 {
		b.Fatalf("replayed from the first event, the cursor is at %d", replayed.CursorSeq)
	}
	return created.Stream.ID
}

// waitCaughtUp polls, every 250 ms, until the cursor of every stream is at
// its chain's head, telling progress how many are behind each time.
func waitCaughtUp(b *testing.B, db *bun.DB, ids []string, within time.Duration, progress func(behind int)) {
	b.Helper()
	deadline := time.Now().Add(within)
	for {
		var behind int
		if err := db.NewRaw(`SELECT count(*) FROM audit_streams s JOIN audit_chains c ON c.org_id = s.org_id
			WHERE s.id IN (?) AND s.cursor_seq < c.length`, bun.In(ids)).Scan(context.Background(), &behind); err != nil {
			b.Fatal(err)
		}
		if progress != nil {
			progress(behind)
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d streams behind their chain after %v", behind, len(ids), within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// idleCost is what a stretch of benchIdle cost.
type idleCost struct {
	cpu, pg time.Duration
	// statements the process sent to Postgres; looks the notifier made,
	// lookTime their time in all, wakes it sent; requests the receiver
	// got; history the events added to the streams' workflows.
	statements, looks, wakes, requests, history int64
	lookTime                                    time.Duration
}

func (c idleCost) String() string {
	return fmt.Sprintf("test process %v of processor time, Postgres %v; %d statements; %d looks of the notifier (%v each on average), %d wakes; %d requests to the receiver; %d events in the streams' workflow histories",
		c.cpu, c.pg, c.statements, c.looks, (c.lookTime / time.Duration(max(c.looks, 1))).Round(10*time.Microsecond), c.wakes, c.requests, c.history)
}

// measureIdle waits benchIdle and says what it cost: the workflow
// histories of the streams are read before and after, outside it.
func measureIdle(b *testing.B, st *streamStack, rcv *benchReceiver, streams []string) idleCost {
	b.Helper()
	h0 := historyLength(b, st, streams)
	cpu0, pg0 := cpuTime(os.Getpid()), pgCPU(b, st.h.DB)
	s0, l0, lt0, w0, r0 := statements.Load(), st.looks.Load(), st.lookTime.Load(), st.wakes.Load(), rcv.requests.Load()
	time.Sleep(benchIdle)
	c := idleCost{cpu: cpuTime(os.Getpid()) - cpu0, pg: pgCPUSince(b, st.h.DB, pg0),
		statements: statements.Load() - s0, looks: st.looks.Load() - l0, lookTime: time.Duration(st.lookTime.Load() - lt0),
		wakes: st.wakes.Load() - w0, requests: rcv.requests.Load() - r0}
	c.history = historyLength(b, st, streams) - h0
	return c
}

// historyLength is the sum of the streams' workflow history lengths.
func historyLength(b *testing.B, st *streamStack, streams []string) int64 {
	var total atomic.Int64
	parallel(b, len(streams), 8, func(i int) {
		d, err := st.h.Temporal.DescribeWorkflowExecution(context.Background(), workflows.StreamWorkflowID(streams[i]), "")
		if err != nil {
			b.Error(err)
			return
		}
		total.Add(d.GetWorkflowExecutionInfo().GetHistoryLength())
	})
	if b.Failed() {
		b.FailNow()
	}
	return total.Load()
}

// statements counts the statements the process sends through the
// harness's database handle (the API, the worker, the notifier).
var (
	statements     atomic.Int64
	statementsOnce sync.Once
)

type statementCounter struct{}

func (statementCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}
func (statementCounter) AfterQuery(context.Context, *bun.QueryEvent) { statements.Add(1) }

func countStatements(h *harness.Harness) {
	statementsOnce.Do(func() { h.DB.AddQueryHook(statementCounter{}) })
}

// pgCPU is the processor time so far of the Postgres processes of the
// database (its backends and the cluster's background processes), by
// pid.
func pgCPU(b *testing.B, db *bun.DB) map[int]time.Duration {
	b.Helper()
	var pids []int
	if err := db.NewRaw("SELECT pid FROM pg_stat_activity WHERE datname = current_database() OR datname IS NULL").Scan(context.Background(), &pids); err != nil {
		b.Fatal(err)
	}
	out := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		out[pid] = cpuTime(pid)
	}
	return out
}

// pgCPUSince is the processor time the Postgres processes used since
// before: of those alive now (a backend that ended meanwhile is not
// counted; one started meanwhile is, whole).
func pgCPUSince(b *testing.B, db *bun.DB, before map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, t := range pgCPU(b, db) {
		d += t - before[pid]
	}
	return d
}

func loadAverage() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// benchReceiver is the benchmarks' https receiver: it keeps no body,
// only what each stream's batches say of their order, and verifies the
// signature of every verifyEvery-th batch of a stream whose secret it
// knows.
type benchReceiver struct {
	srv         *httptest.Server
	tls         *tls.Config
	verifyEvery int
	requests    atomic.Int64

	mu       sync.Mutex
	streams  map[string]*receivedStream
	secrets  map[string][]byte
	problems []string
}

// receivedStream is what one stream's batches said.
type receivedStream struct {
	// next is the seq after the last batch's (0: none came yet).
	next int64
	// seen has a bit per seq received; distinct counts them.
	seen     []uint64
	distinct int64
	// events counts the lines, batches the requests; back the batches
	// that began before next (a replay, or a batch sent again).
	events, batches, back int64
	verified              int
	last                  time.Time
	// gaps are the times between a batch and the one before.
	gaps []time.Duration
}

func newBenchReceiver(b *testing.B, verifyEvery int) *benchReceiver {
	r := &benchReceiver{verifyEvery: verifyEvery, streams: map[string]*receivedStream{}, secrets: map[string][]byte{}}
	r.srv = httptest.NewUnstartedServer(r)
	r.srv.StartTLS()
	b.Cleanup(r.srv.Close)
	r.tls = r.srv.Client().Transport.(*http.Transport).TLSClientConfig
	return r
}

func (r *benchReceiver) setSecret(streamID, secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets[streamID] = []byte(secret)
}

func (r *benchReceiver) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) < 10 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

var seqField = []byte(`"seq":`)

func (r *benchReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	now := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 2<<20))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	key := req.Header.Get(auditstream.IdempotencyHeader)
	id, _, _ := strings.Cut(key, "/")
	seqs := make([]int64, 0, auditstream.MaxBatchEvents)
	for line := range bytes.Lines(body) {
		// The seq is the view's last field but the hash, after data: the
		// last "seq": of the line is the event's.
		i := bytes.LastIndex(line, seqField)
		if i < 0 {
			r.problem("%s: a line without a seq: %.200s", key, line)
			continue
		}
		var n int64
		for _, c := range line[i+len(seqField):] {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int64(c-'0')
		}
		seqs = append(seqs, n)
	}
	if len(seqs) == 0 {
		r.problem("%s: an empty batch", key)
		w.WriteHeader(http.StatusOK)
		return
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			r.problem("%s: seq %d after %d in one batch", key, seqs[i], seqs[i-1])
			break
		}
	}
	r.mu.Lock()
	s := r.streams[id]
	if s == nil {
		s = &receivedStream{}
		r.streams[id] = s
	}
	switch first := seqs[0]; {
	case s.next == 0 || first == s.next:
	case first < s.next:
		s.back++
	default:
		if len(r.problems) < 10 {
			r.problems = append(r.problems, fmt.Sprintf("%s: a batch from seq %d, after one that ended at %d", key, first, s.next-1))
		}
	}
	s.next = seqs[len(seqs)-1] + 1
	for _, q := range seqs {
		for int(q/64) >= len(s.seen) {
			s.seen = append(s.seen, make([]uint64, len(s.seen)+1)...)
		}
		if bit := uint64(1) << (q % 64); s.seen[q/64]&bit == 0 {
			s.seen[q/64] |= bit
			s.distinct++
		}
	}
	s.events += int64(len(seqs))
	s.batches++
	if !s.last.IsZero() {
		s.gaps = append(s.gaps, now.Sub(s.last))
	}
	s.last = now
	secret := r.secrets[id]
	verify := secret != nil && (s.batches-1)%int64(r.verifyEvery) == 0
	r.mu.Unlock()
	if verify {
		if err := auditstream.Verify(req.Header.Get(auditstream.SignatureHeader), body, secret, time.Minute, time.Now()); err != nil {
			r.problem("%s: signature: %v", key, err)
		} else {
			r.mu.Lock()
			s.verified++
			r.mu.Unlock()
		}
	}
	w.WriteHeader(http.StatusOK)
}

// check fails b unless the stream's batches came with no problem and
// carried every seq from 1 to head; it returns what they said.
func (r *benchReceiver) check(b *testing.B, streamID string, head int64) receivedStream {
	b.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) > 0 {
		b.Fatalf("the receiver saw: %s", strings.Join(r.problems, "; "))
	}
	s := r.streams[streamID]
	if s == nil {
		b.Fatalf("stream %s delivered nothing", streamID)
	}
	for q := int64(1); q <= head; q++ {
		if int(q/64) >= len(s.seen) || s.seen[q/64]&(1<<(q%64)) == 0 {
			b.Fatalf("stream %s: seq %d of 1…%d never came (%d distinct)", streamID, q, head, s.distinct)
		}
	}
	if s.distinct != head {
		b.Fatalf("stream %s: %d distinct seqs, its chain has %d", streamID, s.distinct, head)
	}
	return *s
}
