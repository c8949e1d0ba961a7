package integration

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

// BenchmarkAuthenticatedGetOrganization measures GET /organizations/{id}
// over loopback with many clients: token lookup, membership and role, the
// organisation read and the envelope. It reports requests per second and
// the p50 and p99 latency seen by the clients, for a member's session and
// a service account's token; then (service_account_vs_member) the two in
// turn, a second each, eight times, and the median of the eight ratios of
// the token's rate to the session's: a machine that gets busier or quieter
// during the run moves both sides of a pair alike.
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
	b.Run("service_account_vs_member", func(b *testing.B) {
		var ratios []float64
		for range 8 {
			member := rateOver(b, url, w.People[domain.RoleViewer].Token, time.Second)
			account := rateOver(b, url, sa.Token, time.Second)
			ratios = append(ratios, account/member)
		}
		slices.Sort(ratios)
		b.Logf("service account ÷ member, eight pairs: %.3f", ratios)
		b.ReportMetric((ratios[3]+ratios[4])/2, "sa/member")
	})
}

// rateOver is the rate of GET url with the bearer token that 32 clients
// reach in d.
func rateOver(b *testing.B, url, bearer string, d time.Duration) float64 {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	defer client.CloseIdleConnections()
	var done atomic.Int64
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for time.Now().Before(end) && getOK(b, client, url, "Bearer "+bearer) {
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / d.Seconds()
}

// getOK sends GET url with the Authorization header and reads the answer;
// anything but a 200 fails the benchmark and returns false.
func getOK(b *testing.B, client *http.Client, url, authorization string) bool {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", authorization)
	resp, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Errorf("status %d", resp.StatusCode)
		return false
	}
	return true
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
			t0 := time.Now()
			if !getOK(b, client, url, token) {
				return
			}
			mine = append(mine, time.Since(t0))
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
