package integration

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTheLoadGeneratorDrivesAMixedWorkloadAndReportsEachRoute runs
// cmd/loadgen, as an operator would, against a real `controlplane dev`: it
// must sign in, create, read, list and suspend, and end with a table per
// route in which no answer was a 5xx (it exits 1 otherwise).
func TestTheLoadGeneratorDrivesAMixedWorkloadAndReportsEachRoute(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "loadgen")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/loadgen").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := startDev(t, devEnv(t))
	cmd := exec.Command(bin, "-url", "http://"+p.api, "-duration", "6s", "-concurrency", "4")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("loadgen: %v\n%s\n%s", err, out, stderr.String())
	}
	table := string(out)
	for _, route := range []string{"POST /tenants ", "GET /tenants ", "GET /tenants/{id} ", "GET /events ", "total "} {
		if !strings.Contains(table, "\n"+route) {
			t.Errorf("the table has no %q row:\n%s", route, table)
		}
	}
	if !strings.Contains(stderr.String(), "requests") {
		t.Errorf("no progress was shown:\n%s", stderr.String())
	}
	t.Logf("\n%s", table)
}
