// Package deploy holds what production runs besides the binary (the
// compose file's scripts, the Helm chart in helm/) and the tests that keep
// docker-compose.yml and the chart true to the code: the compose CLI
// cannot run where the tests run, and no cluster is needed for the chart.
package deploy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
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
	exact := regexp.MustCompile(`^[a-z0-9./-]+:\d+\.\d+(\.\d+)*$`) // e.g. postgres:15.19, temporalio/server:1.32.0
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
	// Every secret file is one deploy/secrets.sh makes (and
	// TestSecretsScriptMakesCertificatesThatVerify runs it).
	script := read(t, "secrets.sh")
	for name, s := range c.Secrets {
		file, ok := strings.CutPrefix(s.File, "./deploy/secrets/")
		if !ok || !strings.Contains(script, file) {
			t.Errorf("secret %s (%s) is not made by deploy/secrets.sh", name, s.File)
		}
	}
}

// TestComposeRunsTheProductionShape: two API replicas (each on a host port
// of its own, for the API and for the operator gateway) and two workers, and a worker's stop grace covers a
// data-plane step in flight (the worker's stop timeout), so a deploy never
// kills a step it could have finished.
func TestComposeRunsTheProductionShape(t *testing.T) {
	c := load(t)
	api, worker := c.Services["controlplane-api"], c.Services["controlplane-worker"]
	if api.Deploy.Replicas != 2 || worker.Deploy.Replicas != 2 {
		t.Fatalf("replicas: api %d, worker %d; want 2 and 2", api.Deploy.Replicas, worker.Deploy.Replicas)
	}
	if len(api.Ports) != 2 || !strings.HasPrefix(api.Ports[0], "127.0.0.1:8080-8081:") || !strings.HasPrefix(api.Ports[1], "127.0.0.1:7234-7235:") {
		t.Fatalf("api ports %v: want one host port per replica, 127.0.0.1:8080-8081 and 127.0.0.1:7234-7235", api.Ports)
	}
	grace, err := time.ParseDuration(worker.StopGracePeriod)
	if err != nil || grace < workflows.StepTimeout+5*time.Second {
		t.Fatalf("worker stop_grace_period %q: want at least the step timeout (%v) and a margin", worker.StopGracePeriod, workflows.StepTimeout)
	}
}

// hostAndContainer splits a short-syntax ports entry,
// [ip:][host[-end]:]container[-end][/proto], into its host and container
// port ranges ("" when the host side is left to Docker).
func hostAndContainer(spec string) (host, container string) {
	spec, _, _ = strings.Cut(spec, "/")
	parts := strings.Split(spec, ":")
	container = parts[len(parts)-1]
	if len(parts) > 1 {
		host = parts[len(parts)-2]
	}
	return host, container
}

// covers says whether a port range such as "8080-8081" or "7233" holds port.
func covers(rng string, port int) bool {
	lo, hi, ok := strings.Cut(rng, "-")
	if !ok {
		hi = lo
	}
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	return err1 == nil && err2 == nil && l <= port && port <= h
}

// env is a service's environment variable as text ("" when unset), so
// true and "true" read alike.
func env(vars map[string]any, key string) string {
	v, ok := vars[key]
	if !ok || v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// TestComposePublishesNoUnauthenticatedTemporalEndpoint: the security
// review's finding. Temporal's frontend takes only clients with a
// certificate of the internal CA, nothing publishes it or the UI to the
// host, every control-plane process connects with its certificate, and
// the UI cannot write (writes go through the operator gateway, with an
// operator's own certificate).
func TestComposePublishesNoUnauthenticatedTemporalEndpoint(t *testing.T) {
	c := load(t)
	for name, s := range c.Services {
		for _, p := range s.Ports {
			host, container := hostAndContainer(p)
			switch {
			case name == "temporal" || name == "temporal-ui":
				t.Errorf("%s publishes %s: Temporal's own listeners stay on the compose network", name, p)
			case covers(container, 7233) || covers(host, 7233):
				t.Errorf("%s publishes %s: the Temporal frontend (7233)", name, p)
			case covers(host, 8233):
				t.Errorf("%s publishes %s: the Temporal UI's port (8233)", name, p)
			}
		}
	}

	// mounted says whether a /run/secrets path names a secret the service
	// mounts.
	mounted := func(name, path string) bool {
		sec, ok := strings.CutPrefix(path, "/run/secrets/")
		return ok && slices.Contains(c.Services[name].Secrets, sec)
	}
	temporal := c.Services["temporal"].Environment
	if env(temporal, "TEMPORAL_TLS_REQUIRE_CLIENT_AUTH") != "true" {
		t.Errorf("temporal: TEMPORAL_TLS_REQUIRE_CLIENT_AUTH is %q, want true", env(temporal, "TEMPORAL_TLS_REQUIRE_CLIENT_AUTH"))
	}
	for _, k := range []string{
		"TEMPORAL_TLS_FRONTEND_CERT", "TEMPORAL_TLS_FRONTEND_KEY", // what the frontend presents
		"TEMPORAL_TLS_CLIENT1_CA_CERT", "TEMPORAL_TLS_CLIENT2_CA_CERT", // whom it accepts: both, or the template lists an empty file
		"TEMPORAL_TLS_SERVER_CERT", "TEMPORAL_TLS_SERVER_KEY", "TEMPORAL_TLS_SERVER_CA_CERT", // internode, and its own worker's client
	} {
		if !mounted("temporal", env(temporal, k)) {
			t.Errorf("temporal: %s is %q, not a secret it mounts", k, env(temporal, k))
		}
	}

	for name, s := range c.Services {
		if !strings.HasPrefix(s.Image, "intelliauth/controlplane:") {
			continue
		}
		for _, k := range []string{"CP_TEMPORAL_TLS_CA_FILE", "CP_TEMPORAL_TLS_CERT_FILE", "CP_TEMPORAL_TLS_KEY_FILE"} {
			if !mounted(name, env(s.Environment, k)) {
				t.Errorf("%s: %s is %q, not a secret it mounts", name, k, env(s.Environment, k))
			}
		}
		if env(s.Environment, "CP_TEMPORAL_TLS_SERVER_NAME") != "temporal" {
			t.Errorf("%s: CP_TEMPORAL_TLS_SERVER_NAME is %q, want temporal (the name in Temporal's certificate)", name, env(s.Environment, "CP_TEMPORAL_TLS_SERVER_NAME"))
		}
	}

	ui := c.Services["temporal-ui"].Environment
	if env(ui, "TEMPORAL_DISABLE_WRITE_ACTIONS") != "true" {
		t.Errorf("temporal-ui: TEMPORAL_DISABLE_WRITE_ACTIONS is %q, want true", env(ui, "TEMPORAL_DISABLE_WRITE_ACTIONS"))
	}
	for _, k := range []string{"TEMPORAL_TLS_CA", "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"} {
		if !mounted("temporal-ui", env(ui, k)) {
			t.Errorf("temporal-ui: %s is %q, not a secret it mounts", k, env(ui, k))
		}
	}
	// Without it the UI server skips verifying Temporal's certificate.
	if env(ui, "TEMPORAL_TLS_ENABLE_HOST_VERIFICATION") != "true" {
		t.Errorf("temporal-ui: TEMPORAL_TLS_ENABLE_HOST_VERIFICATION is %q, want true", env(ui, "TEMPORAL_TLS_ENABLE_HOST_VERIFICATION"))
	}

	// The operators' CLI goes through the gateway, which names who acted.
	tools := c.Services["temporal-admin-tools"].Environment
	if !strings.HasPrefix(env(tools, "TEMPORAL_ADDRESS"), "controlplane-api:") {
		t.Errorf("temporal-admin-tools: TEMPORAL_ADDRESS is %q, want the operator gateway (controlplane-api:7234)", env(tools, "TEMPORAL_ADDRESS"))
	}
}

// TestSecretsScriptMakesCertificatesThatVerify runs deploy/secrets.sh into
// a temporary directory: it makes every file the compose file mounts, the
// chains verify for the use each certificate has, the two CAs sign nothing
// of each other's, the CA keys are the owner's alone, and a second run
// changes nothing.
func TestSecretsScriptMakesCertificatesThatVerify(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	dir := filepath.Join(t.TempDir(), "secrets")
	const operator = "ops+oncall@example.org"
	run := func() {
		t.Helper()
		cmd := exec.Command("sh", "secrets.sh")
		cmd.Env = append(os.Environ(), "CP_SECRETS_DIR="+dir, "CP_OPERATOR_EMAIL="+operator)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("deploy/secrets.sh: %v\n%s", err, out)
		}
	}
	run()

	for name, s := range load(t).Secrets {
		if _, err := os.Stat(filepath.Join(dir, filepath.Base(s.File))); err != nil {
			t.Errorf("secret %s: %v", name, err)
		}
	}
	pool := func(file string) *x509.CertPool {
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM([]byte(read(t, filepath.Join(dir, file)))) {
			t.Fatalf("%s holds no certificate", file)
		}
		return p
	}
	temporalCA, operatorCA := pool("temporal-ca.pem"), pool("operator-ca.pem")
	cert := func(file, key string) *x509.Certificate {
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, file), filepath.Join(dir, key))
		if err != nil {
			t.Fatalf("%s with %s: %v", file, key, err)
		}
		return pair.Leaf
	}

	for _, tc := range []struct {
		file, key string
		roots     *x509.CertPool
		dnsName   string
		usage     x509.ExtKeyUsage
	}{
		{"temporal.pem", "temporal-key.pem", temporalCA, "temporal", x509.ExtKeyUsageServerAuth},
		{"temporal.pem", "temporal-key.pem", temporalCA, "", x509.ExtKeyUsageClientAuth}, // internode
		{"controlplane.pem", "controlplane-key.pem", temporalCA, "", x509.ExtKeyUsageClientAuth},
		{"temporal-ui.pem", "temporal-ui-key.pem", temporalCA, "", x509.ExtKeyUsageClientAuth},
		{"operator-gateway.pem", "operator-gateway-key.pem", operatorCA, "controlplane-api", x509.ExtKeyUsageServerAuth},
		{"operator.pem", "operator-key.pem", operatorCA, "", x509.ExtKeyUsageClientAuth},
	} {
		c := cert(tc.file, tc.key)
		opts := x509.VerifyOptions{Roots: tc.roots, DNSName: tc.dnsName, KeyUsages: []x509.ExtKeyUsage{tc.usage}}
		if _, err := c.Verify(opts); err != nil {
			t.Errorf("%s for %v: %v", tc.file, tc.usage, err)
		}
		// The other CA accepts it for nothing.
		other := operatorCA
		if tc.roots == operatorCA {
			other = temporalCA
		}
		opts.Roots, opts.KeyUsages = other, []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
		if _, err := c.Verify(opts); err == nil {
			t.Errorf("%s verifies against the other CA", tc.file)
		}
	}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		for _, file := range [][2]string{{"temporal.pem", "temporal-key.pem"}, {"operator-gateway.pem", "operator-gateway-key.pem"}} {
			if err := cert(file[0], file[1]).VerifyHostname(name); err != nil {
				t.Errorf("%s: %v", file[0], err)
			}
		}
	}
	op := cert("operator.pem", "operator-key.pem")
	if op.Subject.CommonName != operator || !slices.Equal(op.EmailAddresses, []string{operator}) {
		t.Errorf("operator.pem names CN %q, email %v; want %s in both", op.Subject.CommonName, op.EmailAddresses, operator)
	}

	for _, key := range []string{"temporal-ca-key.pem", "operator-ca-key.pem"} {
		fi, err := os.Stat(filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v; want 0600: no container reads it", key, fi.Mode().Perm())
		}
	}

	before := map[string]string{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		before[e.Name()] = read(t, filepath.Join(dir, e.Name()))
	}
	run()
	entries, _ = os.ReadDir(dir)
	if len(entries) != len(before) {
		t.Errorf("a second run left %d files, the first %d", len(entries), len(before))
	}
	for name, b := range before {
		if read(t, filepath.Join(dir, name)) != b {
			t.Errorf("a second run changed %s", name)
		}
	}
}

// loadSpec loads docker-compose.yml with Compose v2's own loader, which
// validates it against the Compose Specification's schema and resolves
// anchors, merges and interpolation exactly as `docker compose` does. Every
// profile is on, so the one-shots behind a profile are checked as well.
func loadSpec(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"},
		cli.WithName("intelliauth"),
		cli.WithWorkingDirectory(".."),
		cli.WithEnv([]string{}),
		cli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml is not a valid Compose file: %v", err)
	}
	return p
}

// TestComposeSpecificationAcceptsTheFile: the file loads with Compose v2's
// loader and holds every service the YAML names (none is dropped by a merge
// or a profile).
func TestComposeSpecificationAcceptsTheFile(t *testing.T) {
	p := loadSpec(t)
	names := p.ServiceNames()
	for name := range load(t).Services {
		if !slices.Contains(names, name) {
			t.Errorf("Compose's loader does not see service %s (it sees %v)", name, names)
		}
	}
}

// addedCapabilities are the only capabilities a service takes back after
// dropping them all, each for a reason written beside it in the compose
// file.
var addedCapabilities = map[string][]string{
	// The postgres image's entrypoint starts as root, searches the data
	// directory, hands it and the socket's to the postgres user and drops
	// to it with gosu.
	"postgres": {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID"},
}

// writableRoot names the services that may keep a writable root file
// system, and why. None does today: each writes only to its volumes and
// to tmpfs mounts.
var writableRoot = map[string]string{}

// TestEveryServiceIsHardenedLimitedAndRotatesItsLogs: each service has CPU
// and memory limits, rotated json-file logs, no capabilities beyond the
// ones listed above, no-new-privileges, and a read-only root file system
// (or a reason in writableRoot).
func TestEveryServiceIsHardenedLimitedAndRotatesItsLogs(t *testing.T) {
	p := loadSpec(t)
	if len(p.Services) < 10 {
		t.Fatalf("the loader sees %d services; want every one of docker-compose.yml", len(p.Services))
	}
	for name, s := range p.Services {
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil ||
			s.Deploy.Resources.Limits.NanoCPUs <= 0 || s.Deploy.Resources.Limits.MemoryBytes <= 0 {
			t.Errorf("%s: no deploy.resources.limits with both cpus and memory", name)
		}
		if s.Logging == nil || s.Logging.Driver != "json-file" ||
			s.Logging.Options["max-size"] == "" || s.Logging.Options["max-file"] == "" {
			t.Errorf("%s: logging %+v; want json-file with max-size and max-file", name, s.Logging)
		}
		if !slices.Equal(s.CapDrop, []string{"ALL"}) {
			t.Errorf("%s: cap_drop %v; want [ALL]", name, s.CapDrop)
		}
		for _, c := range s.CapAdd {
			if !slices.Contains(addedCapabilities[name], c) {
				t.Errorf("%s: cap_add %s, which no written reason allows", name, c)
			}
		}
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: security_opt %v; want no-new-privileges:true", name, s.SecurityOpt)
		}
		if _, exempt := writableRoot[name]; !s.ReadOnly && !exempt {
			t.Errorf("%s: the root file system is writable; set read_only (and tmpfs for what it writes) or give the reason in writableRoot", name)
		}
		if s.ReadOnly && !slices.Contains(s.Tmpfs, "/tmp") {
			t.Errorf("%s: read-only without a tmpfs /tmp", name)
		}
	}
	// The control plane's data directory is in its tmpfs.
	for name, s := range p.Services {
		if dir, ok := s.Environment["CP_DATA_DIR"]; ok && (dir == nil || !strings.HasPrefix(*dir, "/tmp/")) {
			t.Errorf("%s: CP_DATA_DIR is not under the tmpfs /tmp", name)
		}
	}
}

// TestTemporalRunsWithItsFinalShardCountAndExportsMetrics: the number of
// history shards can never change after the first start, so it is set to
// what production grows into; Temporal's Prometheus listener is on.
func TestTemporalRunsWithItsFinalShardCountAndExportsMetrics(t *testing.T) {
	temporal := load(t).Services["temporal"].Environment
	if got := env(temporal, "NUM_HISTORY_SHARDS"); got != "512" {
		t.Errorf("temporal: NUM_HISTORY_SHARDS is %q, want 512", got)
	}
	if _, port, err := net.SplitHostPort(env(temporal, "PROMETHEUS_ENDPOINT")); err != nil || port == "" {
		t.Errorf("temporal: PROMETHEUS_ENDPOINT is %q, want a listen address", env(temporal, "PROMETHEUS_ENDPOINT"))
	}
	if !strings.Contains(read(t, "../docs/deployment.md"), "NUM_HISTORY_SHARDS") {
		t.Error("docs/deployment.md does not say that NUM_HISTORY_SHARDS can never change")
	}
}

// TestTemporalSchemaJobSwallowsNoError: the schema job is idempotent
// without hiding failures; only an existing database is passed over.
func TestTemporalSchemaJobSwallowsNoError(t *testing.T) {
	p := loadSpec(t)
	job, ok := p.Services["temporal-schema"]
	if !ok {
		t.Fatal("no temporal-schema service")
	}
	script := strings.Join(append(slices.Clone(job.Entrypoint), job.Command...), " ")
	if regexp.MustCompile(`\|\|\s*true`).MatchString(script) {
		t.Errorf("temporal-schema swallows errors with || true:\n%s", script)
	}
	if !strings.Contains(script, "-e") {
		t.Errorf("temporal-schema's shell does not stop at the first failure (sh -e):\n%s", script)
	}
	for _, step := range []string{" create", "setup-schema", "update-schema"} {
		if !strings.Contains(script, step) {
			t.Errorf("temporal-schema does not run %s", step)
		}
	}
	if !strings.Contains(script, "42P04") {
		t.Errorf("temporal-schema does not single out the database existing (SQLSTATE 42P04):\n%s", script)
	}
}

// TestTheImageIsStampedWithItsVersionAndChecksItsHealth: the Dockerfile
// takes VERSION and REVISION, stamps them into the binary's variables (the
// ones `controlplane version` and controlplane_build_info read), labels the
// image with them under the OCI keys, and has a healthcheck by the binary.
func TestTheImageIsStampedWithItsVersionAndChecksItsHealth(t *testing.T) {
	df := read(t, "../Dockerfile")
	// Continuation lines joined, so an instruction reads as one line.
	joined := strings.ReplaceAll(df, "\\\n", " ")
	for _, arg := range []string{"VERSION", "REVISION"} {
		if !regexp.MustCompile(`(?m)^ARG ` + arg + `\b`).MatchString(df) {
			t.Errorf("Dockerfile has no ARG %s", arg)
		}
	}
	const pkg = "github.com/intelliauth/controlplane/internal/telemetry"
	for _, v := range []string{"Version=${VERSION}", "Revision=${REVISION}"} {
		if !strings.Contains(joined, "-X "+pkg+"."+v) {
			t.Errorf("Dockerfile's go build does not set -X %s.%s", pkg, v)
		}
		name, _, _ := strings.Cut(v, "=")
		if !regexp.MustCompile(`(?m)^\s*` + name + `\s+= `).MatchString(read(t, "../internal/telemetry/build.go")) {
			t.Errorf("internal/telemetry has no variable %s for -X to set", name)
		}
	}
	var labels []string
	for _, line := range strings.Split(joined, "\n") {
		if strings.HasPrefix(line, "LABEL ") {
			labels = append(labels, line)
		}
	}
	all := strings.Join(labels, " ")
	for _, key := range []string{"title", "version", "revision", "source", "licenses"} {
		if !strings.Contains(all, "org.opencontainers.image."+key+"=") {
			t.Errorf("Dockerfile has no label org.opencontainers.image.%s", key)
		}
	}
	for _, kv := range []string{`org.opencontainers.image.version="${VERSION}"`, `org.opencontainers.image.revision="${REVISION}"`} {
		if !strings.Contains(all, kv) {
			t.Errorf("Dockerfile does not label %s", kv)
		}
	}
	hc := regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD \["/usr/local/bin/controlplane", "healthcheck"\]`)
	if !hc.MatchString(joined) {
		t.Error(`Dockerfile has no HEALTHCHECK running ["/usr/local/bin/controlplane", "healthcheck"]`)
	}
	if !strings.Contains(read(t, "../cmd/controlplane/main.go"), `"healthcheck":`) {
		t.Error("the binary has no healthcheck command for the image's HEALTHCHECK")
	}
}
