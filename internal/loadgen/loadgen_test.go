package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestStatsArePerRouteWithNearestRankPercentilesAndErrorsByCode(t *testing.T) {
	var rep Report
	for i := 1; i <= 100; i++ {
		rep.Results = append(rep.Results, Result{Route: "GET /tenants", Latency: time.Duration(i) * time.Millisecond, Status: 200, Code: "200"})
	}
	rep.Results = append(rep.Results,
		Result{Route: "POST /tenants", Latency: time.Millisecond, Status: 202, Code: "202"},
		Result{Route: "POST /tenants", Latency: 3 * time.Millisecond, Status: 409, Code: "CONFLICT"},
		Result{Route: "POST /tenants", Latency: 2 * time.Millisecond, Status: 0, Code: "NETWORK"})
	rep.Elapsed = time.Second
	stats := rep.Stats()
	if len(stats) != 2 || stats[0].Route != "GET /tenants" || stats[1].Route != "POST /tenants" {
		t.Fatalf("stats = %+v", stats)
	}
	if g := stats[0]; g.Count != 100 || g.P50 != 50*time.Millisecond || g.P99 != 99*time.Millisecond || len(g.Errors) != 0 {
		t.Fatalf("GET /tenants = %+v", g)
	}
	if p := stats[1]; p.P50 != 2*time.Millisecond || p.Errors["CONFLICT"] != 1 || p.Errors["NETWORK"] != 1 || len(p.Errors) != 2 {
		t.Fatalf("POST /tenants = %+v", p)
	}
	var b bytes.Buffer
	rep.WriteTable(&b)
	if !strings.Contains(b.String(), "CONFLICT=1 NETWORK=1") || !strings.Contains(b.String(), "total                                 103") {
		t.Fatalf("table:\n%s", b.String())
	}
}

func TestAMixNamesKnownOperationsWithWeights(t *testing.T) {
	m, err := ParseMix("create=2, get=1")
	if err != nil || m["create"] != 2 || m["get"] != 1 || len(m) != 2 {
		t.Fatalf("ParseMix = %v, %v", m, err)
	}
	for _, bad := range []string{"delete=1", "create", "create=-1", "create=x"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
}

// replicas are two fake API replicas: sign-in and the organisation list
// answer; a creation's first attempt (by Idempotency-Key) is answered 503
// with Retry-After, a retry 202 with a tenant id.
func replicas(t *testing.T) (urls []string, hits *[2]atomic.Int64) {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]int{}
	hits = &[2]atomic.Int64{}
	for i := range 2 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			switch r.URL.Path {
			case "/api/v1/auth/sign-in":
				fmt.Fprint(w, `{"data":{"token":"t"}}`)
			case "/api/v1/organizations":
				fmt.Fprint(w, `{"data":[{"id":"org_1"}]}`)
			case "/api/v1/organizations/org_1/tenants":
				key := r.Header.Get("Idempotency-Key")
				mu.Lock()
				seen[key]++
				n := seen[key]
				mu.Unlock()
				if n == 1 {
					w.Header().Set("Retry-After", "0")
					w.WriteHeader(503)
					fmt.Fprint(w, `{"error":{"code":"UNAVAILABLE"}}`)
					return
				}
				w.WriteHeader(202)
				fmt.Fprintf(w, `{"data":{"tenant":{"id":%q},"operation":{"id":"op_%s"}}}`, key, key)
			default:
				w.WriteHeader(404)
			}
		}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	return urls, hits
}

func TestAMutationAnswered503IsRetriedWithItsKeyOnTheNextReplica(t *testing.T) {
	urls, hits := replicas(t)
	rep, err := Run(context.Background(), Options{BaseURLs: urls, Duration: 10 * time.Second, Requests: 10, Concurrency: 2,
		Mix: map[string]int{"create": 1}, Retries: 2, Email: "a@b.test", Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Effects) != 10 || len(rep.Twice()) != 0 {
		t.Fatalf("effects = %v, twice = %v", rep.Effects, rep.Twice())
	}
	for key, effects := range rep.Effects {
		if len(effects) != 1 || !strings.HasPrefix(effects[0], key+"/") {
			t.Fatalf("effects of %s = %v", key, effects)
		}
	}
	var creates RouteStats
	for _, s := range rep.Stats() {
		if s.Route == "POST /tenants" {
			creates = s
		}
	}
	if creates.Count != 20 || creates.Errors["UNAVAILABLE"] != 10 || len(creates.Errors) != 1 {
		t.Fatalf("creations = %+v", creates)
	}
	if hits[0].Load() == 0 || hits[1].Load() == 0 {
		t.Fatalf("requests per replica = %d, %d", hits[0].Load(), hits[1].Load())
	}
}

func TestAKeyAnsweredWithTwoEffectsIsReported(t *testing.T) {
	rep := Report{Effects: map[string][]string{
		"k":    {"tnt_1/op_1", "tnt_2/op_2"},
		"same": {"tnt_3/op_3", "tnt_3/op_3"},
		"once": {"tnt_4/op_4"},
	}}
	if got := rep.Twice(); len(got) != 1 || got[0] != "k" {
		t.Fatalf("twice = %v", got)
	}
}
