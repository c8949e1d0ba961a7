package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/harness"
)

// TestDevKeepsAtMostItsWorkflowCacheOfTenantWorkflowsInMemory runs
// `controlplane dev` with CP_WORKFLOW_CACHE_SIZE=10 and creates three times
// as many tenants: the workflows the process keeps in memory (the SDK's
// sticky cache, which the embedded Temporal server's own workers share) stay
// within the bound, so the process does not grow with its tenants.
func TestDevKeepsAtMostItsWorkflowCacheOfTenantWorkflowsInMemory(t *testing.T) {
	t.Parallel()
	h := harness.Get(t)
	url, db := h.NewDatabase(t, false)
	env := append(devEnv(t), "CP_DATABASE_URL="+url, "CP_WORKFLOW_CACHE_SIZE=10")
	p := startDev(t, env)
	if _, err := db.ExecContext(t.Context(), "UPDATE organizations SET plan_id = 'enterprise'"); err != nil {
		t.Fatal(err)
	}
	api := "http://" + p.api + "/api/v1"
	call := func(method, path, token string, body any, out any) int {
		t.Helper()
		var buf bytes.Buffer
		if body != nil {
			_ = json.NewEncoder(&buf).Encode(body)
		}
		req, _ := http.NewRequestWithContext(t.Context(), method, api+path, &buf)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if method == "POST" {
			req.Header.Set("Idempotency-Key", fmt.Sprintf("cache-%d", time.Now().UnixNano()))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(&struct{ Data any }{out})
		}
		return resp.StatusCode
	}
	var session struct {
		Token string `json:"token"`
	}
	if code := call("POST", "/auth/sign-in", "", map[string]string{"email": config.DevOwnerEmail, "password": config.DevOwnerPassword}, &session); code != 200 {
		t.Fatalf("sign in: %d", code)
	}
	var orgs []struct {
		ID string `json:"id"`
	}
	if code := call("GET", "/organizations", session.Token, nil, &orgs); code != 200 || len(orgs) == 0 {
		t.Fatalf("organizations: %d %v", code, orgs)
	}
	tenants := "/organizations/" + orgs[0].ID + "/tenants"
	const n = 30
	for i := range n {
		if code := call("POST", tenants, session.Token, map[string]string{"name": fmt.Sprintf("cached-%02d", i), "environment": "prod"}, nil); code != 202 {
			t.Fatalf("create %d: %d", i, code)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var active []any
		if code := call("GET", tenants+"?state=active&limit=100", session.Token, nil, &active); code != 200 {
			t.Fatalf("list: %d", code)
		}
		if len(active) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d tenants active after two minutes", len(active), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if cached := stickyCacheSize(t, lookup(env, "CP_METRICS_ADDR")); cached > 10 {
		t.Fatalf("the process keeps %d workflows in memory with %d tenants; CP_WORKFLOW_CACHE_SIZE is 10", cached, n)
	}
}

// stickyCacheSize reads the SDK's count of workflows in memory from the
// process's metrics.
func stickyCacheSize(t *testing.T, metricsAddr string) int {
	t.Helper()
	code, body := get(t, "http://"+metricsAddr+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	found, most := false, 0
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "temporal_sticky_cache_size") {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		found, most = true, max(most, int(v))
	}
	if !found {
		t.Fatalf("no temporal_sticky_cache_size in /metrics")
	}
	return most
}
