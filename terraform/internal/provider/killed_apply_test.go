package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

var (
	providerBinOnce sync.Once
	providerBinDir  string
	providerBinErr  error
)

// providerBinary builds terraform-provider-intelliauth once per run, for
// the tests that run the tofu CLI as a user does.
func providerBinary(t *testing.T) string {
	t.Helper()
	providerBinOnce.Do(func() {
		providerBinDir = filepath.Join(env.workDir, "provider-bin")
		cmd := exec.Command("go", "build", "-o", filepath.Join(providerBinDir, "terraform-provider-intelliauth"), ".")
		cmd.Dir = filepath.Join(env.repoRoot, "terraform")
		if out, err := cmd.CombinedOutput(); err != nil {
			providerBinErr = fmt.Errorf("go build the provider: %v\n%s", err, out)
		}
	})
	if providerBinErr != nil {
		t.Fatal(providerBinErr)
	}
	return providerBinDir
}

// tofuWorkspace is a directory with a configuration and a CLI
// configuration whose dev_overrides point OpenTofu at the built provider.
type tofuWorkspace struct {
	dir     string
	cliConf string
}

func newTofuWorkspace(t *testing.T, config string) *tofuWorkspace {
	t.Helper()
	w := &tofuWorkspace{dir: t.TempDir()}
	w.cliConf = filepath.Join(w.dir, "tofu.rc")
	rc := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"intelliauth/intelliauth\" = %q\n  }\n  direct {}\n}\n", providerBinary(t))
	if err := os.WriteFile(w.cliConf, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "main.tf"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// command is a tofu command in the workspace, in a process group of its
// own so that killing it kills the provider it started too.
func (w *tofuWorkspace) command(args ...string) (*exec.Cmd, *lockedBuffer) {
	cmd := exec.Command(env.tofu, args...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+w.cliConf, "TF_IN_AUTOMATION=1", "TF_INPUT=0")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, out
}

func (w *tofuWorkspace) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd, out := w.command(args...)
	if err := cmd.Run(); err != nil {
		t.Fatalf("tofu %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

// TestApplyKilledAfterCreateAndRunAgainCreatesNothingTwice kills `tofu
// apply` (and its provider) right after the server accepted the creation,
// before the apply recorded anything, then applies again: the second run
// sends the same Idempotency-Key, adopts the tenant the first run created,
// and the organisation has one tenant of the name, the one in the state.
func TestApplyKilledAfterCreateAndRunAgainCreatesNothingTwice(t *testing.T) {
	name := uniqueName("tf-kill")
	w := newTofuWorkspace(t, tenantConfig(name, "ci", ""))

	cmd, out := w.command("apply", "-auto-approve", "-no-color")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var first intelliauth.Tenant
	deadline := time.Now().Add(3 * time.Minute)
	for first.Id == "" {
		select {
		case err := <-done:
			t.Fatalf("tofu apply ended before the server had the tenant (%v):\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Fatalf("the server did not list tenant %s within 3 minutes:\n%s", name, out.String())
		}
		if ts := tenantsNamed(t, name); len(ts) > 0 {
			first = ts[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	t.Logf("killed tofu apply with tenant %s %s on the server", first.Id, first.State)
	if st := readState(t, w); st != "" && bytes.Contains([]byte(st), []byte(first.Id)) {
		t.Fatalf("the killed apply had already recorded the tenant; the test proves nothing:\n%s", st)
	}

	second := w.run(t, "apply", "-auto-approve", "-no-color")
	t.Logf("second apply:\n%s", second)

	ts := tenantsNamed(t, name)
	if len(ts) != 1 {
		t.Fatalf("%d tenants named %s after the second apply, want 1: %+v", len(ts), name, ts)
	}
	if ts[0].Id != first.Id || ts[0].State != intelliauth.TenantStateActive {
		t.Fatalf("tenant %s is %s %s, want the first run's %s, active", name, ts[0].Id, ts[0].State, first.Id)
	}
	var state struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Address string         `json:"address"`
					Values  map[string]any `json:"values"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(w.run(t, "show", "-json")), &state); err != nil {
		t.Fatal(err)
	}
	rs := state.Values.RootModule.Resources
	if len(rs) != 1 || rs[0].Address != tenantAddr || rs[0].Values["id"] != first.Id {
		t.Fatalf("the state holds %+v, want %s = %s", rs, tenantAddr, first.Id)
	}

	// A third apply has nothing to do; the destroy decommissions it.
	if plan := w.run(t, "plan", "-detailed-exitcode", "-no-color"); !bytes.Contains([]byte(plan), []byte("No changes")) {
		t.Fatalf("a plan after the re-run is not empty:\n%s", plan)
	}
	w.run(t, "destroy", "-auto-approve", "-no-color")
	id := first.Id
	if err := checkTenantDecommissioned(&id)(nil); err != nil {
		t.Fatal(err)
	}
}

// readState is the workspace's local state file, empty when there is none.
func readState(t *testing.T, w *tofuWorkspace) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w.dir, "terraform.tfstate"))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
