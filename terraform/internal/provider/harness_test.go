package provider

// The acceptance tests' harness, shared by every resource's and data
// source's tests: TestMain builds OpenTofu (once per machine, into the user
// cache) and controlplane (once per run), starts one `controlplane dev` for
// the package on free ports with its own data dir, signs in as the seeded
// owner, puts the organisation on a plan with room for the tests' tenants
// and makes a service account whose token the provider uses by default.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

// The seeded owner of `controlplane dev` and its organisation's slug.
const (
	devOwnerEmail    = "owner@acme.test"
	devOwnerPassword = "intelliauth-dev-password"
	devOrgSlug       = "acme"
)

// env is the running control plane the tests talk to.
var env struct {
	endpoint     string // http://127.0.0.1:port
	orgID        string
	ownerToken   string // the owner's session token
	serviceToken string // a service account's token (cps_…): the provider's default
	owner        *intelliauth.Client
	service      *intelliauth.Client
	tofu         string // the OpenTofu CLI
	controlplane string // the built controlplane binary
	repoRoot     string
	workDir      string // this run's temp dir
}

// protoV6ProviderFactories runs the provider in the test process: OpenTofu
// reaches it by reattaching (TF_REATTACH_PROVIDERS), so no binary is built.
var protoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"intelliauth": providerserver.NewProtocol6WithError(New("test")()),
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var cleanups []func()
	defer func() {
		for _, c := range slices.Backward(cleanups) {
			c()
		}
	}()
	if err := setUp(&cleanups); err != nil {
		fmt.Fprintln(os.Stderr, "provider tests: set-up failed:", err)
		return 1
	}
	return m.Run()
}

func setUp(cleanups *[]func()) error {
	var err error
	if env.repoRoot, err = repoRoot(); err != nil {
		return err
	}
	if env.workDir, err = os.MkdirTemp("", "tf-provider-test-"); err != nil {
		return err
	}
	*cleanups = append(*cleanups, func() { _ = os.RemoveAll(env.workDir) })

	// OpenTofu and controlplane build side by side: each takes minutes
	// cold, and the first mostly waits on the module proxy.
	var wg sync.WaitGroup
	var tofuErr, cpErr error
	wg.Go(func() { env.tofu, tofuErr = tofuBinary() })
	wg.Go(func() { env.controlplane, cpErr = buildControlplane() })
	wg.Wait()
	if err := errors.Join(tofuErr, cpErr); err != nil {
		return err
	}

	// terraform-plugin-testing runs this binary. OpenTofu resolves a
	// provider source without a host to registry.opentofu.org, so the
	// reattached provider is named there; the tests' configurations name
	// it intelliauth/intelliauth.
	// An empty CLI configuration: the user's own (provider mirrors,
	// credentials, dev_overrides) has no say in these tests.
	cliConfig := filepath.Join(env.workDir, "empty.tofurc")
	if err := os.WriteFile(cliConfig, nil, 0o600); err != nil {
		return err
	}
	for k, v := range map[string]string{
		"TF_CLI_CONFIG_FILE":        cliConfig,
		"TF_ACC":                    "1",
		"TF_ACC_TERRAFORM_PATH":     env.tofu,
		"TF_ACC_PROVIDER_HOST":      "registry.opentofu.org",
		"TF_ACC_PROVIDER_NAMESPACE": "intelliauth",
		"CHECKPOINT_DISABLE":        "1",
	} {
		os.Setenv(k, v)
	}

	dev, err := startDev()
	if err != nil {
		return err
	}
	*cleanups = append(*cleanups, dev.stop)
	env.endpoint = "http://" + dev.api
	return prepare()
}

// repoRoot is the control plane's repository: the directory above this
// module that has the main module's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/intelliauth/controlplane\n")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("no github.com/intelliauth/controlplane module above %s", dir)
}

// tofuBinary runs scripts/tofu.sh, the one recipe for the OpenTofu CLI
// that .ci/run uses too.
func tofuBinary() (string, error) {
	script := filepath.Join(env.repoRoot, "terraform", "scripts", "tofu.sh")
	var stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stderr = io.MultiWriter(&stderr, os.Stderr)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/tofu.sh: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

func buildControlplane() (string, error) {
	bin := filepath.Join(env.workDir, "controlplane")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/controlplane")
	cmd.Dir = env.repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/controlplane: %v\n%s", err, out)
	}
	return bin, nil
}

// devProcess is the running `controlplane dev`.
type devProcess struct {
	cmd     *exec.Cmd
	done    chan error
	out     *lockedBuffer
	api     string
	dataDir string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeAddrs returns n loopback addresses free now; all are held until
// every one is taken, so none is handed out twice.
func freeAddrs(n int) ([]string, error) {
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// startDev starts `controlplane dev` and waits until it is ready. A port
// taken by another process between the pick and dev's bind makes dev exit
// saying so: it is started again on other ports.
// extraEnv adds to (or overrides) the environment the tests' dev has.
func startDev(extraEnv ...string) (*devProcess, error) {
	for attempt := 1; ; attempt++ {
		p, err := launchDev(extraEnv)
		if err == nil {
			return p, nil
		}
		p.stop()
		if attempt < 4 && strings.Contains(p.out.String(), "address already in use") {
			continue
		}
		return nil, fmt.Errorf("controlplane dev: %v\n%s", err, p.out.String())
	}
}

func launchDev(extraEnv []string) (*devProcess, error) {
	dataDir, err := os.MkdirTemp(env.workDir, "dev-")
	if err != nil {
		return nil, err
	}
	addrs, err := freeAddrs(5)
	if err != nil {
		return nil, err
	}
	p := &devProcess{done: make(chan error, 1), out: &lockedBuffer{}, api: addrs[0], dataDir: dataDir}
	p.cmd = exec.Command(env.controlplane, "dev")
	p.cmd.Env = append(os.Environ(),
		"CP_DATA_DIR="+dataDir,
		"CP_HTTP_ADDR="+addrs[0],
		"CP_METRICS_ADDR="+addrs[1],
		"CP_TEMPORAL_ADDRESS="+addrs[2],
		"CP_TEMPORAL_UI_ADDR="+addrs[3],
		"CP_OPERATOR_ADDR="+addrs[4],
		"CP_LOG_FORMAT=json",
		"CP_DATABASE_URL=",
		// Every provisioning's last step takes two seconds more: the
		// window in which an apply is stopped after the server accepted
		// its creation and before the tenant is active is then certain.
		"CP_FAULTS=route=delay:2s",
	)
	p.cmd.Env = append(p.cmd.Env, extraEnv...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return p, err
	}
	go func() { p.done <- p.cmd.Wait() }()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			return p, fmt.Errorf("exited before ready: %v", err)
		default:
		}
		if resp, err := http.Get("http://" + p.api + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p, errors.New("not ready within 3 minutes")
}

// stop ends dev and waits for its Postgres, which got the parent-death
// signal and writes its shutdown checkpoint, to exit before the data dir
// is removed.
func (p *devProcess) stop() {
	if p.cmd.Process != nil {
		select {
		case err := <-p.done:
			p.done <- err
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	pid := filepath.Join(p.dataDir, "postgres", "postmaster.pid")
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(pid); errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	_ = os.RemoveAll(p.dataDir)
}

// prepare signs in as the seeded owner, finds the organisation, moves it
// to the enterprise plan (the free plan's two tenants are too few for the
// tests, and a decommissioned tenant counts until its grace period ends),
// and makes the service account the provider uses by default.
func prepare() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	owner, err := signIn(ctx, env.endpoint)
	if err != nil {
		return err
	}
	env.ownerToken, env.orgID, env.owner = owner.token, owner.orgID, owner.client
	plan := "enterprise"
	if _, err := intelliauth.Data[intelliauth.Organization](env.owner.UpdateOrganization(ctx, env.orgID, nil,
		intelliauth.UpdateOrgRequest{Plan: &plan})); err != nil {
		return fmt.Errorf("move %s to the %s plan: %w", env.orgID, plan, err)
	}
	created, err := intelliauth.Data[intelliauth.CreatedServiceAccount](env.owner.CreateServiceAccount(ctx, env.orgID, nil,
		intelliauth.CreateServiceAccountRequest{Name: "terraform", Role: intelliauth.Role("admin"), Scopes: serviceAccountScopes(), TokenExpiresIn: 86400}))
	if err != nil {
		return fmt.Errorf("create the service account: %w", err)
	}
	env.serviceToken = created.Token
	if env.service, err = intelliauth.New(env.endpoint, intelliauth.WithToken(env.serviceToken)); err != nil {
		return err
	}

	os.Setenv(EnvEndpoint, env.endpoint)
	os.Setenv(EnvOrganizationID, env.orgID)
	os.Setenv(EnvToken, env.serviceToken)
	return nil
}

// ownerSession is the seeded owner signed in to a dev server.
type ownerSession struct {
	token  string
	orgID  string
	client *intelliauth.Client
}

// signIn signs in as the seeded owner and finds its organisation.
func signIn(ctx context.Context, endpoint string) (ownerSession, error) {
	var s ownerSession
	anon, err := intelliauth.New(endpoint)
	if err != nil {
		return s, err
	}
	session, err := intelliauth.Data[intelliauth.SignInResult](anon.SignIn(ctx, nil,
		intelliauth.SignInRequest{Email: devOwnerEmail, Password: devOwnerPassword}))
	if err != nil {
		return s, fmt.Errorf("sign in as %s: %w", devOwnerEmail, err)
	}
	if session.Token == nil || *session.Token == "" {
		return s, fmt.Errorf("sign in as %s: no token (a second step?)", devOwnerEmail)
	}
	s.token = *session.Token
	if s.client, err = intelliauth.New(endpoint, intelliauth.WithToken(s.token)); err != nil {
		return s, err
	}
	orgs, err := intelliauth.List[intelliauth.Organization](s.client.ListOrganizations(ctx, nil))
	if err != nil {
		return s, fmt.Errorf("list organizations: %w", err)
	}
	for _, o := range orgs.Items {
		if o.Slug == devOrgSlug {
			s.orgID = o.Id
		}
	}
	if s.orgID == "" {
		return s, fmt.Errorf("no organization %q among %d", devOrgSlug, len(orgs.Items))
	}
	return s, nil
}

// serviceAccountScopes are what the provider's resources and data sources
// need of a service account (the plans data source cannot be read by one).
func serviceAccountScopes() []intelliauth.Scope {
	return []intelliauth.Scope{"organization:read", "tenants:read", "tenants:create", "tenants:suspend",
		"tenants:resume", "tenants:decommission", "tenants:restore"}
}

func ptr[T any](v T) *T { return &v }

// providerBlock is the configuration's required_providers, naming the
// provider as the registries do; every test configuration starts with it.
const providerBlock = `
terraform {
  required_providers {
    intelliauth = {
      source = "intelliauth/intelliauth"
    }
  }
}
`

// uniqueName is a tenant name no other test (or earlier run against the
// same server) uses: the name stays taken during a decommission's grace
// period.
func uniqueName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// tenantByID reads a tenant as the owner sees it.
func tenantByID(t *testing.T, id string) intelliauth.Tenant {
	t.Helper()
	tn, err := intelliauth.Data[intelliauth.Tenant](env.owner.GetTenant(context.Background(), env.orgID, id))
	if err != nil {
		t.Fatalf("get tenant %s: %v", id, err)
	}
	return tn
}

// tenantsNamed lists the organisation's tenants with the name, any state.
func tenantsNamed(t *testing.T, name string) []intelliauth.Tenant {
	t.Helper()
	var out []intelliauth.Tenant
	fetch := func(ctx context.Context, cursor string) (*http.Response, error) {
		p := &intelliauth.ListTenantsParams{}
		if cursor != "" {
			p.Cursor = &cursor
		}
		return env.owner.ListTenants(ctx, env.orgID, p)
	}
	for tn, err := range intelliauth.All[intelliauth.Tenant](context.Background(), fetch) {
		if err != nil {
			t.Fatalf("list tenants: %v", err)
		}
		if tn.Name == name {
			out = append(out, tn)
		}
	}
	return out
}
