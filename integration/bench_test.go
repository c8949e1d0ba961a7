package integration

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

// BenchmarkAuthenticatedGetOrganization measures GET /organizations/{id}
// over loopback with many clients: token lookup, membership and role, the
// organisation read and the envelope. It reports requests per second and
// the p50 and p99 latency seen by the clients.
func BenchmarkAuthenticatedGetOrganization(b *testing.B) {
	h := harness.Get(b)
	// A plan whose budget the benchmark cannot spend: it measures the rate
	// limiter's cost on every request, not its refusals.
	if _, err := h.DB.ExecContext(b.Context(), "INSERT INTO plans (id, name, max_tenants, max_members, requests_per_minute) VALUES ('unmetered', 'Unmetered', 10, 10, 1000000000) ON CONFLICT DO NOTHING"); err != nil {
		b.Fatal(err)
	}
	w := newWorld(b, h, "unmetered")
	srv := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log})
	url := "http://" + serve(b, srv) + "/api/v1/organizations/" + w.Org.ID
	// A member's session, and a service account's token (its account,
	// organisation and accountable member read in one query).
	b.Run("member", func(b *testing.B) { benchmarkGet(b, url, w.People[domain.RoleViewer].Token) })
	sa := addScopedAccount(b, h, w, w.People[domain.RoleOwner], domain.RoleViewer, []string{string(domain.ScopeOrganizationRead)}, nil)
	b.Run("service_account", func(b *testing.B) { benchmarkGet(b, url, sa.Token) })
}

// benchmarkGet runs GET url with the bearer token from many clients and
// reports the rate and latencies.
func benchmarkGet(b *testing.B, url, bearer string) {
	token := "Bearer " + bearer
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}

	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(16) // 16 × GOMAXPROCS clients
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", token)
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mine = append(mine, time.Since(t0))
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}
