package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/auditstream"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/outbound"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/internal/streamwake"
	"github.com/intelliauth/controlplane/workflows"
)

// streamStack is an organisation with an API, a worker of stream
// workflows, a worker of their deliveries (which a test may stop and start
// again) and a notifier that wakes the organisation's streams, as a worker
// process runs them.
type streamStack struct {
	h      *harness.Harness
	w      world
	srv    *api.Server
	tq     string
	cfg    config.Streams
	tls    *tls.Config
	client *workflows.Client
	// stopDeliveries stops the worker of the deliveries, as a kill.
	stopDeliveries harness.StopWorker
	// The notifier's looks so far, their time (ns) in all, and the wakes
	// it sent.
	looks, lookTime, wakes atomic.Int64
}

func newStreamStack(t *testing.T, cfg config.Streams) *streamStack {
	t.Helper()
	h := harness.Get(t)
	return newStreamStackOf(t, cfg, stackOptions{Every: 200 * time.Millisecond}, newWorld(t, h, roomyPlan(t, h)))
}

// stackOptions are how a stream stack differs from the tests' own.
type stackOptions struct {
	// Every is how often the notifier looks.
	Every time.Duration
	// TLS is the deliveries' client's (one that trusts an https
	// receiver's certificate); nil: the system's roots.
	TLS *tls.Config
}

// newStreamStackOf is newStreamStack over the organisations given (the
// first is the stack's own), its notifier waking the streams of those
// organisations only.
func newStreamStackOf(t testing.TB, cfg config.Streams, opts stackOptions, worlds ...world) *streamStack {
	t.Helper()
	h := harness.Get(t)
	st := &streamStack{h: h, w: worlds[0], tq: harness.TaskQueue(t), cfg: cfg, tls: opts.TLS}
	every := opts.Every
	h.StartWorker(t, st.tq, func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(workflows.StreamWorkflow, workflow.RegisterOptions{Name: workflows.StreamWorkflowType})
	})
	st.stopDeliveries = st.startDeliveries(t)
	st.srv = api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, TaskQueue: st.tq, Keys: h.Keys, Streams: cfg, WorkerBound: 5 * time.Second})
	st.client = workflows.NewClient(h.Temporal, harness.Namespace, st.tq, config.DefaultSaga())
	st.client.Streams = cfg
	orgs := make(map[string]bool, len(worlds))
	for _, w := range worlds {
		orgs[w.Org.ID] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	n := &streamwake.Notifier{DB: h.DB, Log: h.Log, Every: every,
		// Only this test's streams: the others are other tests' to wake.
		Wake: func(ctx context.Context, id, orgID string) error {
			if !orgs[orgID] {
				return nil
			}
			st.wakes.Add(1)
			return st.client.WakeStream(ctx, id, orgID)
		}}
	go func() {
		// Notifier.Run's loop, each look counted and timed.
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			t0 := time.Now()
			_, err := n.Look(ctx)
			st.looks.Add(1)
			st.lookTime.Add(int64(time.Since(t0)))
			if err != nil && ctx.Err() == nil {
				h.Log.Warn().Err(err).Msg("audit streams not woken; the next look tries again")
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return st
}

// startDeliveries starts a worker of the stack's deliveries; stopping it
// cancels a delivery in flight at once, as a killed worker's.
func (st *streamStack) startDeliveries(t testing.TB) harness.StopWorker {
	t.Helper()
	return st.h.StartStoppableWorker(t, workflows.StreamTaskQueue(st.tq), worker.Options{MaxConcurrentActivityExecutionSize: st.cfg.Deliveries},
		func(r worker.Registry) {
			r.RegisterActivity(&activities.Streams{DB: st.h.DB, Keys: st.h.Keys,
				Client: outbound.NewClient(outbound.Options{AllowPrivate: st.cfg.AllowPrivate, Timeout: st.cfg.Timeout, TLSConfig: st.tls})})
		})
}

// streamData is a stream as the API answers it.
type streamData struct {
	ID             string     `json:"id"`
	Status         string     `json:"status"`
	Cursor         *string    `json:"cursor"`
	CursorSeq      int64      `json:"cursor_seq"`
	LastError      *string    `json:"last_error"`
	FailingSince   *time.Time `json:"failing_since"`
	LastDeliveryAt *time.Time `json:"last_delivery_at"`
	Lag            struct {
		Events  int64 `json:"events"`
		Seconds int64 `json:"seconds"`
	} `json:"lag"`
}

// create creates a stream as the owner and returns it with its signing
// secret (https).
func (st *streamStack) create(t testing.TB, body map[string]any) (streamData, string) {
	t.Helper()
	r := httpReq(t, st.srv, "POST", orgPath(st.w, "/audit-streams"), st.w.People[domain.RoleOwner].Token, body, "create-"+uniq())
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	var out struct {
		Stream        streamData `json:"stream"`
		SigningSecret string     `json:"signing_secret"`
	}
	r.data(t, &out)
	return out.Stream, out.SigningSecret
}

// call calls the API as the role, with a fresh Idempotency-Key.
func (st *streamStack) call(t testing.TB, role domain.Role, method, rest string, body any) response {
	t.Helper()
	key := ""
	if method != "GET" {
		key = "k-" + uniq()
	}
	return httpReq(t, st.srv, method, orgPath(st.w, rest), st.w.People[role].Token, body, key)
}

func (st *streamStack) get(t testing.TB, id string) streamData {
	t.Helper()
	r := st.call(t, domain.RoleOwner, "GET", "/audit-streams/"+id, nil)
	if r.Status != 200 {
		t.Fatalf("get: %d %s", r.Status, r.Raw)
	}
	var s streamData
	r.data(t, &s)
	return s
}

// waitStatus polls the stream until it is in the status.
func (st *streamStack) waitStatus(t *testing.T, id, status string, within time.Duration) streamData {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := st.get(t, id)
		if s.Status == status {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s is %s after %s, want %s: %+v", id, s.Status, within, status, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeEvents writes n events of the actions in turn to the stack's
// organisation, in transactions of up to 2,000, as fast as the store
// takes them, and returns their ids in chain order.
func (st *streamStack) writeEvents(t *testing.T, n int, actions ...string) []string {
	t.Helper()
	if len(actions) == 0 {
		actions = []string{"member.added"}
	}
	var ids []string
	for len(ids) < n {
		err := st.h.DB.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
			for i := 0; i < 2000 && len(ids) < n; i++ {
				ev := &store.AuditEvent{OrgID: st.w.Org.ID, Action: actions[len(ids)%len(actions)], ActorType: "system", ActorID: "stream-test",
					TargetType: "test", TargetID: uniq(), Data: json.RawMessage(`{"n":` + strconv.Itoa(len(ids)) + `}`)}
				if _, err := store.InsertEvent(ctx, tx, ev); err != nil {
					return err
				}
				ids = append(ids, ev.ID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// chainAfter is the ids of the organisation's events after seq, in chain
// order.
func (st *streamStack) chainAfter(t *testing.T, seq int64) []string {
	t.Helper()
	var ids []string
	for {
		evs, err := store.ChainEvents(context.Background(), st.h.DB, st.w.Org.ID, seq, 5000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			ids = append(ids, e.ID)
			seq = e.Seq
		}
		if len(evs) < 5000 {
			return ids
		}
	}
}

// receiver is a stream's receiver on loopback: it verifies each request's
// signature (once it knows the secret), records what it got, and answers
// as its test says.
type receiver struct {
	t    *testing.T
	addr string

	mu     sync.Mutex
	srv    *http.Server
	secret []byte
	got    []received
	// answer, when set, decides the answer to the n-th request (from 0)
	// after it was recorded; nil: 200.
	answer func(n int, w http.ResponseWriter, r *http.Request)
}

// received is one request as the receiver got it.
type received struct {
	Key, Signature string
	Header         http.Header
	Body           []byte
	// Events are the NDJSON lines' events (https streams).
	Events []receivedEvent
	At     time.Time
}

type receivedEvent struct {
	ID     string `json:"id"`
	Seq    int64  `json:"seq"`
	Action string `json:"action"`
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{t: t}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.down)
	return r
}

func (r *receiver) url(path string) string { return "http://" + r.addr + path }

func (r *receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// down closes the receiver and every connection to it: a request in
// flight gets no answer, and new ones are refused.
func (r *receiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up listens again on the same address.
func (r *receiver) up() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.serve(ln)
}

func (r *receiver) setSecret(secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secret = []byte(secret)
}

func (r *receiver) setAnswer(f func(n int, w http.ResponseWriter, req *http.Request)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = f
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 2<<20))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	rec := received{Key: req.Header.Get(auditstream.IdempotencyHeader), Signature: req.Header.Get(auditstream.SignatureHeader), Header: req.Header.Clone(), Body: body, At: time.Now()}
	for line := range bytes.Lines(body) {
		var e receivedEvent
		if json.Unmarshal(line, &e) == nil && e.ID != "" {
			rec.Events = append(rec.Events, e)
		}
	}
	r.mu.Lock()
	n := len(r.got)
	r.got = append(r.got, rec)
	answer := r.answer
	r.mu.Unlock()
	if answer != nil {
		answer(n, w, req)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// requests is what the receiver got so far.
func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// firstReceipt is the events in the order they first came, and how many
// batches came again. It fails unless every request is signed with the
// stream's secret when it was sent, and every repeat is a batch sent again
// whole with its first sending's Idempotency-Key (so the receiver can drop
// it by its key).
func (r *receiver) firstReceipt(t *testing.T) (ids []string, repeatedBatches int) {
	t.Helper()
	byKey := map[string][]receivedEvent{}
	seen := map[string]bool{}
	r.mu.Lock()
	secret := r.secret
	r.mu.Unlock()
	for i, rec := range r.requests() {
		if err := auditstream.Verify(rec.Signature, rec.Body, secret, 5*time.Second, rec.At); err != nil {
			t.Fatalf("request %d (%s): signature: %v", i, rec.Key, err)
		}
		if want := streamKeyOf(rec.Events); !strings.HasSuffix(rec.Key, want) || want == "" {
			t.Fatalf("request %d has Idempotency-Key %q, want %q", i, rec.Key, want)
		}
		if before, ok := byKey[rec.Key]; ok {
			if !slices.Equal(before, rec.Events) {
				t.Fatalf("key %s came again with other events", rec.Key)
			}
			repeatedBatches++
			continue
		}
		byKey[rec.Key] = rec.Events
		for _, e := range rec.Events {
			if seen[e.ID] {
				t.Fatalf("event %s came again in a batch of another key (%s)", e.ID, rec.Key)
			}
			seen[e.ID] = true
			ids = append(ids, e.ID)
		}
	}
	return ids, repeatedBatches
}

// streamKeyOf is the key a batch of the events carries, but for its
// stream id prefix, which the caller's key has: "/first/last".
func streamKeyOf(evs []receivedEvent) string {
	if len(evs) == 0 {
		return ""
	}
	return "/" + evs[0].ID + "/" + evs[len(evs)-1].ID
}

// waitUntil polls cond until it holds.
func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
