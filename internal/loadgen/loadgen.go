// Package loadgen drives a mixed workload against the control plane's
// public API, as its clients do: it signs in, creates tenants (each with
// its own Idempotency-Key), reads them, lists tenants and audit events, and
// suspends and resumes the tenants it created. It keeps every latency and
// ends with a table per route.
package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options is what a run does.
type Options struct {
	// BaseURL is where the API is, e.g. http://127.0.0.1:8080.
	BaseURL string
	// BaseURLs, when set instead, are replicas of the API: requests go to
	// each in turn, and a retry goes to the next one.
	BaseURLs []string
	// Retries is how many times a mutation answered 503, or not answered
	// at all, is sent again with the same Idempotency-Key, after the
	// answer's Retry-After (at most RetryWait), as a careful client does.
	Retries   int
	RetryWait time.Duration
	Email     string
	Password  string
	// Duration bounds the run; Requests, when set, ends it sooner.
	Duration time.Duration
	Requests int
	// Concurrency is how many requests are in flight at most.
	Concurrency int
	// Rate is requests per second across all workers; 0: as fast as the
	// concurrency allows.
	Rate float64
	// Mix weighs the operations (Operations); a missing one is not run.
	Mix map[string]int
	// Progress, when set, gets a line a second.
	Progress io.Writer
	Client   *http.Client
}

// Operations are what a run can do, with their default weights.
var Operations = map[string]int{"create": 1, "get": 4, "list": 3, "events": 1, "suspend": 1}

// ParseMix reads "create=1,get=4,…".
func ParseMix(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, item := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(item), "=")
		n, err := strconv.Atoi(w)
		if _, known := Operations[name]; !ok || !known || err != nil || n < 0 {
			return nil, fmt.Errorf("mix item %q: want <operation>=<weight> with operation one of create, get, list, events, suspend", item)
		}
		out[name] = n
	}
	return out, nil
}

// Result is one answer: which route, how long, what status and code.
type Result struct {
	Route   string
	Latency time.Duration
	Status  int    // 0: no answer (a network error)
	Code    string // the error envelope's code, or the status

	retryAfter time.Duration
}

// Report is every result of a run.
type Report struct {
	Results []Result
	Elapsed time.Duration
	// Effects are, by Idempotency-Key, the tenant and operation each 202
	// answer named ("tnt_…/op_…"): a key with two different effects was
	// carried out twice.
	Effects map[string][]string
}

// Twice lists the keys whose answers named different effects.
func (rep Report) Twice() []string {
	var out []string
	for key, effects := range rep.Effects {
		if slices.ContainsFunc(effects, func(e string) bool { return e != effects[0] }) {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out
}

type runner struct {
	o       Options
	token   string
	org     string
	mu      sync.Mutex
	tenants []string // created by this run
	results []Result
	effects map[string][]string
	sent    atomic.Int64
	errors  atomic.Int64
	next    atomic.Uint64 // the base URL of the next request
}

// Run signs in and drives the workload until the duration or request count
// is reached or ctx ends.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: max(o.Concurrency, 2)}}
	}
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.Mix == nil {
		o.Mix = Operations
	}
	if len(o.BaseURLs) == 0 {
		o.BaseURLs = []string{o.BaseURL}
	}
	if o.RetryWait <= 0 {
		o.RetryWait = 5 * time.Second
	}
	r := &runner{o: o, effects: map[string][]string{}}
	if err := r.signIn(ctx); err != nil {
		return Report{}, err
	}
	var ops []string
	for name, w := range o.Mix {
		for range w {
			ops = append(ops, name)
		}
	}
	if len(ops) == 0 {
		return Report{}, fmt.Errorf("the mix runs nothing")
	}

	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	start := time.Now()
	work := make(chan string)
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() {
			for op := range work {
				r.do(ctx, op)
			}
		})
	}
	stopProgress := r.progress(start)
	var tick <-chan time.Time
	if o.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / o.Rate))
		defer t.Stop()
		tick = t.C
	}
	// The operations are dealt in a shuffled order, so their weights hold
	// over any stretch of the run.
	mrand.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
feed:
	for i := 0; o.Requests == 0 || i < o.Requests; i++ {
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
				break feed
			}
		}
		select {
		case work <- ops[i%len(ops)]:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	stopProgress()
	r.mu.Lock()
	defer r.mu.Unlock()
	return Report{Results: r.results, Elapsed: time.Since(start), Effects: r.effects}, nil
}

func (r *runner) progress(start time.Time) func() {
	if r.o.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				el := time.Since(start)
				n := r.sent.Load()
				fmt.Fprintf(r.o.Progress, "%6.1fs  %7d requests  %7.1f/s  %d errors\n", el.Seconds(), n, float64(n)/el.Seconds(), r.errors.Load())
			}
		}
	}()
	return func() { close(done); <-stopped }
}

func (r *runner) signIn(ctx context.Context) error {
	var in struct {
		Data struct{ Token string } `json:"data"`
	}
	res := r.call(ctx, "sign-in", "POST", "/api/v1/auth/sign-in", "", map[string]string{"email": r.o.Email, "password": r.o.Password}, &in)
	if res.Status != 200 {
		return fmt.Errorf("sign in as %s: %d %s", r.o.Email, res.Status, res.Code)
	}
	r.token = in.Data.Token
	var orgs struct {
		Data []struct{ ID string } `json:"data"`
	}
	if res := r.call(ctx, "organizations", "GET", "/api/v1/organizations", "", nil, &orgs); res.Status != 200 || len(orgs.Data) == 0 {
		return fmt.Errorf("list organisations: %d %s", res.Status, res.Code)
	}
	r.org = orgs.Data[0].ID
	return nil
}

func (r *runner) pick() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.tenants) == 0 {
		return ""
	}
	return r.tenants[mrand.IntN(len(r.tenants))]
}

func (r *runner) do(ctx context.Context, op string) {
	org := "/api/v1/organizations/" + r.org
	switch op {
	case "create":
		name := "load-" + randomHex(6)
		if id, ok := r.mutate(ctx, "POST /tenants", org+"/tenants", map[string]string{"name": name, "environment": "load"}); ok {
			r.mu.Lock()
			r.tenants = append(r.tenants, id)
			r.mu.Unlock()
		}
	case "get":
		if id := r.pick(); id != "" {
			r.call(ctx, "GET /tenants/{id}", "GET", org+"/tenants/"+id, "", nil, nil)
		} else {
			r.call(ctx, "GET /organizations/{id}", "GET", org, "", nil, nil)
		}
	case "list":
		r.call(ctx, "GET /tenants", "GET", org+"/tenants?limit=50", "", nil, nil)
	case "events":
		r.call(ctx, "GET /events", "GET", org+"/events?limit=50&action=tenant.*", "", nil, nil)
	case "suspend":
		id := r.pick()
		if id == "" {
			r.call(ctx, "GET /tenants", "GET", org+"/tenants?limit=50", "", nil, nil)
			break
		}
		// Suspend, or resume when it is suspended: either is a conflict
		// while another operation runs, which is an answer, not an error.
		var t struct {
			Data struct{ State string } `json:"data"`
		}
		r.call(ctx, "GET /tenants/{id}", "GET", org+"/tenants/"+id, "", nil, &t)
		action := "suspend"
		if t.Data.State == "suspended" {
			action = "resume"
		}
		r.mutate(ctx, "POST /tenants/{id}/"+action, org+"/tenants/"+id+"/"+action, nil)
	}
}

// mutate sends a mutation with a new Idempotency-Key, and again with the
// same key when it is answered 503 or not at all, up to Options.Retries
// times. It returns the tenant id of a 202 answer.
func (r *runner) mutate(ctx context.Context, route, path string, body any) (tenantID string, ok bool) {
	key := "load-" + randomHex(12)
	for attempt := 0; ; attempt++ {
		var out struct {
			Data struct {
				Tenant    struct{ ID string } `json:"tenant"`
				Operation struct{ ID string } `json:"operation"`
			} `json:"data"`
		}
		res := r.call(ctx, route, "POST", path, key, body, &out)
		if res.Status == 202 {
			r.mu.Lock()
			r.effects[key] = append(r.effects[key], out.Data.Tenant.ID+"/"+out.Data.Operation.ID)
			r.mu.Unlock()
			return out.Data.Tenant.ID, true
		}
		if (res.Status != 503 && res.Status != 0) || attempt >= r.o.Retries || ctx.Err() != nil {
			return "", false
		}
		select {
		case <-time.After(min(max(res.retryAfter, 100*time.Millisecond), r.o.RetryWait)):
		case <-ctx.Done():
			return "", false
		}
	}
}

// call sends one request and records its result under route.
func (r *runner) call(ctx context.Context, route, method, path, key string, body, out any) Result {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	res := Result{Route: route}
	base := r.o.BaseURLs[int(r.next.Add(1)%uint64(len(r.o.BaseURLs)))]
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, rd)
	if err != nil {
		res.Code = "BAD_REQUEST_URL"
		return r.record(res)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	start := time.Now()
	resp, err := r.o.Client.Do(req)
	res.Latency = time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return res // the run ended under it: not counted
		}
		res.Code = "NETWORK"
		return r.record(res)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	res.Status = resp.StatusCode
	res.Code = strconv.Itoa(resp.StatusCode)
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs >= 0 {
		res.retryAfter = time.Duration(secs) * time.Second
	}
	if resp.StatusCode >= 400 {
		var env struct {
			Error struct{ Code string } `json:"error"`
		}
		if json.Unmarshal(b, &env) == nil && env.Error.Code != "" {
			res.Code = env.Error.Code
		}
	} else if out != nil {
		_ = json.Unmarshal(b, out)
	}
	return r.record(res)
}

func (r *runner) record(res Result) Result {
	r.sent.Add(1)
	if res.Status == 0 || res.Status >= 400 {
		r.errors.Add(1)
	}
	r.mu.Lock()
	r.results = append(r.results, res)
	r.mu.Unlock()
	return res
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RouteStats is one row of the table.
type RouteStats struct {
	Route    string
	Count    int
	P50, P99 time.Duration
	// Errors counts the answers that were not 2xx, by code.
	Errors map[string]int
}

// Stats summarises a report per route, in route order.
func (rep Report) Stats() []RouteStats {
	by := map[string][]Result{}
	for _, res := range rep.Results {
		by[res.Route] = append(by[res.Route], res)
	}
	var out []RouteStats
	for route, rs := range by {
		s := RouteStats{Route: route, Count: len(rs), Errors: map[string]int{}}
		lat := make([]time.Duration, len(rs))
		for i, res := range rs {
			lat[i] = res.Latency
			if res.Status == 0 || res.Status >= 400 {
				s.Errors[res.Code]++
			}
		}
		slices.Sort(lat)
		s.P50, s.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b RouteStats) int { return strings.Compare(a.Route, b.Route) })
	return out
}

// percentile is the nearest-rank percentile of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// WriteTable writes the per-route table and a total line.
func (rep Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "%-32s %8s %10s %10s  %s\n", "route", "count", "p50", "p99", "errors")
	total := 0
	for _, s := range rep.Stats() {
		total += s.Count
		var errs []string
		for code, n := range s.Errors {
			errs = append(errs, fmt.Sprintf("%s=%d", code, n))
		}
		slices.Sort(errs)
		e := strings.Join(errs, " ")
		if e == "" {
			e = "-"
		}
		fmt.Fprintf(w, "%-32s %8d %10s %10s  %s\n", s.Route, s.Count, round(s.P50), round(s.P99), e)
	}
	fmt.Fprintf(w, "%-32s %8d in %s, %.1f requests/s\n", "total", total, rep.Elapsed.Round(time.Millisecond), float64(total)/rep.Elapsed.Seconds())
}

func round(d time.Duration) string {
	return d.Round(100 * time.Microsecond).String()
}
