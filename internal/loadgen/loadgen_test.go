package loadgen

import (
	"bytes"
	"strings"
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
