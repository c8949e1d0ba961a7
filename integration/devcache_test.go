package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
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
	c := signInToDev(t, p)
	call := c.call
	tenants := "/organizations/" + c.org + "/tenants"
	const n = 30
	for i := range n {
		if code := call("POST", tenants, map[string]string{"name": fmt.Sprintf("cached-%02d", i), "environment": "prod"}, nil); code != 202 {
			t.Fatalf("create %d: %d", i, code)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var active []any
		if code := call("GET", tenants+"?state=active&limit=100", nil, &active); code != 200 {
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

// devOwner is the dev owner signed in to a `controlplane dev`, with its
// organisation.
type devOwner struct {
	t     testing.TB
	api   string
	token string
	org   string
	keys  atomic.Int64
}

// signInToDev signs the dev owner in.
func signInToDev(t testing.TB, p *devProcess) *devOwner {
	t.Helper()
	c := &devOwner{t: t, api: "http://" + p.api + "/api/v1"}
	var session struct {
		Token string `json:"token"`
	}
	if code := c.call("POST", "/auth/sign-in", map[string]string{"email": config.DevOwnerEmail, "password": config.DevOwnerPassword}, &session); code != 200 {
		t.Fatalf("sign in: %d", code)
	}
	c.token = session.Token
	var orgs []struct {
		ID string `json:"id"`
	}
	if code := c.call("GET", "/organizations", nil, &orgs); code != 200 || len(orgs) == 0 {
		t.Fatalf("organizations: %d %v", code, orgs)
	}
	c.org = orgs[0].ID
	return c
}

// call sends a request as the owner (a POST with a new Idempotency-Key),
// decodes the envelope's data into out and returns the status.
func (c *devOwner) call(method, path string, body any, out any) int {
	var buf bytes.Buffer
	if body != nil {
		_ = json.NewEncoder(&buf).Encode(body)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, c.api+path, &buf)
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if method == "POST" {
		req.Header.Set("Idempotency-Key", fmt.Sprintf("dev-%d-%d", time.Now().UnixNano(), c.keys.Add(1)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(&struct{ Data any }{out})
	}
	return resp.StatusCode
}

// page reads a page of a list: how many items it has and the next
// page's cursor ("" at the end).
func (c *devOwner) page(path string) (int, string) {
	var env struct {
		Data []json.RawMessage `json:"data"`
		Meta struct {
			Cursor  string `json:"cursor"`
			HasMore bool   `json:"has_more"`
		} `json:"meta"`
	}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", c.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		c.t.Fatal(err)
	}
	if !env.Meta.HasMore {
		return len(env.Data), ""
	}
	return len(env.Data), env.Meta.Cursor
}

// stickyCacheSize reads the SDK's count of workflows in memory from the
// process's metrics.
func stickyCacheSize(t testing.TB, metricsAddr string) int {
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
