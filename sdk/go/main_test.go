package intelliauth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

// The tests run against one `controlplane dev`, built from this repository
// (../..) and started once per run by TestMain on free ports with a data
// dir of its own; it seeds the organisation acme and its owner.
const (
	ownerEmail    = "owner@acme.test"
	ownerPassword = "intelliauth-dev-password"
	devOrgSlug    = "acme"
)

// dev is the running server: its API's origin, the owner's token and the
// organisation's id.
var dev struct {
	server     string
	ownerToken string
	orgID      string
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "intelliauth-sdk-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "controlplane")
	build := exec.Command("go", "build", "-o", bin, "./cmd/controlplane")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/controlplane: %v\n%s", err, out)
		return 1
	}
	stop, err := startDev(bin, filepath.Join(tmp, "data"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	if err := signInOwner(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// devListeners are the addresses dev binds, each given a free port.
var devListeners = []string{"CP_HTTP_ADDR", "CP_METRICS_ADDR", "CP_TEMPORAL_ADDRESS", "CP_TEMPORAL_UI_ADDR", "CP_OPERATOR_ADDR"}

// startDev starts `controlplane dev` and waits until it is ready. A port
// taken by another process between its pick and dev's bind makes dev exit
// with "address already in use": it is started again on other ports.
func startDev(bin, dataDir string) (stop func(), err error) {
	for attempt := 1; ; attempt++ {
		// Every attempt of a resume's data-plane step fails, so that a
		// test has a saga that is stuck for real.
		env := append(os.Environ(), "CP_DATA_DIR="+dataDir, "CP_LOG_FORMAT=json", "CP_DATABASE_URL=", "CP_FAULTS=resume_route=fail")
		addrs := map[string]string{}
		for _, k := range devListeners {
			if addrs[k], err = freeAddr(); err != nil {
				return nil, err
			}
			env = append(env, k+"="+addrs[k])
		}
		var out syncBuffer
		cmd := exec.Command(bin, "dev")
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &out
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		stop := func() {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			waitForPostgres(dataDir)
		}
		server := "http://" + addrs["CP_HTTP_ADDR"]
		if err := waitReady(server, done); err != nil {
			stop()
			if attempt < 4 && strings.Contains(out.String(), "address already in use") {
				_ = os.RemoveAll(dataDir)
				continue
			}
			return nil, fmt.Errorf("controlplane dev: %v\n%s", err, out.String())
		}
		dev.server = server
		return stop, nil
	}
}

func waitReady(server string, done chan error) error {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("exited before ready: %v", err)
		default:
		}
		if resp, err := http.Get(server + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("not ready within 3 minutes")
}

// waitForPostgres waits for dev's Postgres, which got the parent-death
// signal, to finish its shutdown before its data dir is removed.
func waitForPostgres(dataDir string) {
	pid := filepath.Join(dataDir, "postgres", "postmaster.pid")
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(pid); errors.Is(err, os.ErrNotExist) {
			return
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// signInOwner signs in as the seeded owner with the SDK and finds the
// organisation's id among the owner's memberships.
func signInOwner() error {
	ctx := context.Background()
	c, err := intelliauth.New(dev.server)
	if err != nil {
		return err
	}
	session, err := intelliauth.Data[intelliauth.SignInResult](c.SignIn(ctx, nil, intelliauth.SignInJSONRequestBody{Email: ownerEmail, Password: ownerPassword}))
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	if session.Token == nil {
		return fmt.Errorf("sign in answered no token: %+v", session)
	}
	dev.ownerToken = *session.Token
	owner, err := intelliauth.New(dev.server, intelliauth.WithToken(dev.ownerToken))
	if err != nil {
		return err
	}
	me, err := intelliauth.Data[intelliauth.MeResult](owner.GetMe(ctx))
	if err != nil {
		return fmt.Errorf("me: %w", err)
	}
	for _, m := range me.Memberships {
		if m.OrgSlug == devOrgSlug {
			dev.orgID = m.OrgId
		}
	}
	if dev.orgID == "" {
		return fmt.Errorf("the owner is no member of %s: %+v", devOrgSlug, me)
	}
	return nil
}

// ownerClient is a client with the owner's token and opts.
func ownerClient(t *testing.T, opts ...intelliauth.Option) *intelliauth.Client {
	t.Helper()
	c, err := intelliauth.New(dev.server, append([]intelliauth.Option{intelliauth.WithToken(dev.ownerToken)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tenantName is a tenant name no other test uses: a DNS label.
func tenantName(t *testing.T, prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1_000_000_000)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
