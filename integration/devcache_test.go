package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	c := signInDev(t, p.api)
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

// call sends a request as the client (a POST with a new Idempotency-Key),
// decodes the envelope's data into out and returns the status: the typed
// form of do, for callers that read the answer's fields.
func (d *devClient) call(method, path string, body any, out any) int {
	key := ""
	if method == "POST" {
		key = fmt.Sprintf("dev-%d-%d", time.Now().UnixNano(), devKeys.Add(1))
	}
	code, env := d.doKey(method, path, key, body)
	if out != nil {
		b, _ := json.Marshal(env["data"])
		if err := json.Unmarshal(b, out); err != nil {
			d.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return code
}

var devKeys atomic.Int64

// page reads a page of a list: how many items it has and the next page's
// cursor ("" at the end).
func (d *devClient) page(path string) (int, string) {
	d.t.Helper()
	code, env := d.do("GET", path, nil)
	if code != 200 {
		d.t.Fatalf("GET %s: %d %v", path, code, env)
	}
	items, _ := env["data"].([]any)
	meta, _ := env["meta"].(map[string]any)
	if more, _ := meta["has_more"].(bool); !more {
		return len(items), ""
	}
	cursor, _ := meta["cursor"].(string)
	return len(items), cursor
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
