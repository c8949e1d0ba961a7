// Package deploy holds what production runs besides the binary (the
// compose file's scripts) and the test that keeps docker-compose.yml true
// to the code: the compose CLI cannot run where the tests run.
package deploy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/intelliauth/controlplane/workflows"
)

type compose struct {
	Services map[string]struct {
		Image       string                    `yaml:"image"`
		Environment map[string]any            `yaml:"environment"`
		DependsOn   map[string]map[string]any `yaml:"depends_on"`
		Secrets     []string                  `yaml:"secrets"`
		Volumes     []string                  `yaml:"volumes"`
		Ports       []string                  `yaml:"ports"`
		Deploy      struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"deploy"`
		StopGracePeriod string `yaml:"stop_grace_period"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func load(t *testing.T) compose {
	t.Helper()
	var c compose
	if err := yaml.Unmarshal([]byte(read(t, "../docker-compose.yml")), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// goModVersion is the version go.mod requires of a module, without its v.
func goModVersion(t *testing.T, module string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + ` v(\S+)`).FindStringSubmatch(read(t, "../go.mod"))
	if m == nil {
		t.Fatalf("go.mod does not require %s", module)
	}
	return m[1]
}

func TestEveryImageIsPinnedAndTemporalsMatchWhatTheTestsEmbed(t *testing.T) {
	c := load(t)
	exact := regexp.MustCompile(`^[a-z0-9./-]+:\d+\.\d+(\.\d+)*$`) // e.g. postgres:15.10, temporalio/server:1.32.0
	want := map[string]string{
		"temporalio/server":      goModVersion(t, "go.temporal.io/server"),
		"temporalio/admin-tools": goModVersion(t, "go.temporal.io/server"),
		"temporalio/ui":          goModVersion(t, "github.com/temporalio/ui-server/v2"),
	}
	seen := map[string]bool{}
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, "intelliauth/controlplane:") {
			continue // built here
		}
		if !exact.MatchString(s.Image) {
			t.Errorf("%s: image %q is not pinned to an exact version", name, s.Image)
			continue
		}
		repo, tag, _ := strings.Cut(s.Image, ":")
		if v, ok := want[repo]; ok {
			seen[repo] = true
			if tag != v {
				t.Errorf("%s: %s is %s, but go.mod embeds %s", name, repo, tag, v)
			}
		}
	}
	for repo := range want {
		if !seen[repo] {
			t.Errorf("no service runs %s", repo)
		}
	}
}

func TestEveryControlPlaneVariableInComposeIsOneTheBinaryReads(t *testing.T) {
	c := load(t)
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`"(CP_[A-Z_]+)"`).FindAllStringSubmatch(read(t, "../internal/config/config.go"), -1) {
		known[m[1]] = true
	}
	for name, s := range c.Services {
		for k := range s.Environment {
			base := strings.TrimSuffix(k, "_FILE")
			if strings.HasPrefix(k, "CP_") && !known[base] {
				t.Errorf("%s sets %s, which the binary does not read", name, k)
			}
		}
	}
}

func TestEveryDependencySecretAndMountExists(t *testing.T) {
	c := load(t)
	for name, s := range c.Services {
		for dep, cond := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which is no service", name, dep)
			}
			if !slices.Contains([]any{"service_healthy", "service_completed_successfully", "service_started"}, cond["condition"]) {
				t.Errorf("%s: condition %v on %s", name, cond["condition"], dep)
			}
		}
		for _, sec := range s.Secrets {
			if _, ok := c.Secrets[sec]; !ok {
				t.Errorf("%s uses secret %s, which is not declared", name, sec)
			}
		}
		for _, v := range s.Volumes {
			if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, "./") {
				if _, err := os.Stat("../" + src); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			}
		}
	}
	// Every secret file is one deploy/secrets.sh makes.
	script := read(t, "secrets.sh")
	for name, s := range c.Secrets {
		if !strings.HasPrefix(s.File, "./deploy/secrets/") || !strings.Contains(script, name) {
			t.Errorf("secret %s (%s) is not made by deploy/secrets.sh", name, s.File)
		}
	}
}

// TestComposeRunsTheProductionShape: two API replicas (each on a host port
// of its own) and two workers, and a worker's stop grace covers a
// data-plane step in flight (the worker's stop timeout), so a deploy never
// kills a step it could have finished.
func TestComposeRunsTheProductionShape(t *testing.T) {
	c := load(t)
	api, worker := c.Services["controlplane-api"], c.Services["controlplane-worker"]
	if api.Deploy.Replicas != 2 || worker.Deploy.Replicas != 2 {
		t.Fatalf("replicas: api %d, worker %d; want 2 and 2", api.Deploy.Replicas, worker.Deploy.Replicas)
	}
	if len(api.Ports) != 1 || !strings.HasPrefix(api.Ports[0], "127.0.0.1:8080-8081:") {
		t.Fatalf("api ports %v: want one host port per replica, 127.0.0.1:8080-8081", api.Ports)
	}
	grace, err := time.ParseDuration(worker.StopGracePeriod)
	if err != nil || grace < workflows.StepTimeout+5*time.Second {
		t.Fatalf("worker stop_grace_period %q: want at least the step timeout (%v) and a margin", worker.StopGracePeriod, workflows.StepTimeout)
	}
}
