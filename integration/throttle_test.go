package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

// caller is a client of a served API from its own loopback address, so
// what the API counts per client address is its own.
type caller struct {
	http *http.Client
	base string
	Addr string
}

// newCaller returns a caller of the API served at base (http://host:port)
// from a fresh loopback address.
func newCaller(base string) caller {
	c, ip := addrClient()
	return caller{http: c, base: base, Addr: ip}
}

// servedAPI serves a new API with deps completed by the harness, and returns
// its base URL.
func servedAPI(t *testing.T, d api.Deps) string {
	h := harness.Get(t)
	d.DB, d.Temporal, d.Log = h.DB, h.Temporal, h.Log
	return "http://" + serve(t, api.New(d))
}

// post sends a JSON body with the given headers over the client's own
// connection.
func (c caller) post(t *testing.T, path string, body any, header map[string]string) response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	r, err := http.NewRequest("POST", c.base+path, strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		r.Header.Set(k, v)
	}
	resp, err := c.http.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if err := json.Unmarshal(raw, &out.Env); err != nil {
		t.Fatalf("POST %s: not JSON: %s", path, raw)
	}
	return out
}

func (c caller) signIn(t *testing.T, email, pw string) response {
	t.Helper()
	return c.post(t, "/api/v1/auth/sign-in", map[string]any{"email": email, "password": pw}, nil)
}

// signInFailures counts the user.sign_in_failed events of an organisation:
// one per password that was checked and wrong.
func signInFailures(t *testing.T, h *harness.Harness, orgID string) int {
	t.Helper()
	var n int
	if err := h.DB.NewRaw("SELECT count(*) FROM audit_events WHERE org_id = ? AND action = 'user.sign_in_failed'", orgID).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConcurrentSignInsCannotOutrunTheFailureLimit(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	email := w.People[domain.RoleViewer].Email
	c := newCaller(servedAPI(t, api.Deps{}))

	// The attack of the review: 30 at once for one email, 29 wrong and the
	// right one last.
	const n = 30
	answers := make([]response, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		pw := "wrong-password-" + strconv.Itoa(i)
		if i == n-1 {
			pw = testPassword
		}
		wg.Go(func() {
			<-start
			if i == n-1 {
				time.Sleep(20 * time.Millisecond)
			}
			answers[i] = c.signIn(t, email, pw)
		})
	}
	close(start)
	wg.Wait()

	checked := 0
	for _, r := range answers {
		switch {
		case r.Status == 429 && r.code() == "RATE_LIMITED" && strings.Contains(r.Env.Error.Message, "sign-in"):
		case r.Status == 401 || r.Status == 200:
			checked++
		default:
			t.Errorf("unexpected answer %d %s", r.Status, r.Raw)
		}
	}
	if checked > 10 {
		t.Errorf("%d passwords were checked; the limit is 10", checked)
	}
	if n := signInFailures(t, h, w.Org.ID); n > 10 {
		t.Errorf("%d failed sign-ins were audited; the limit is 10", n)
	}
	if r := c.signIn(t, email, testPassword); r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Errorf("the right password after the limit: %d %s", r.Status, r.Raw)
	}
}

func TestAnOverlongEmailIsRefusedBeforeItReachesTheThrottle(t *testing.T) {
	// 20 kB that do not compress: too long for the throttle's key index.
	long := make([]byte, 0, 20_000)
	for len(long) < 20_000 {
		long = append(long, uniq()...)
	}
	r := signIn(t, string(long)+"@example.test", "whatever password")
	if r.Status != 400 || !strings.Contains(r.Raw, `"field":"email"`) {
		t.Fatalf("got %d %s", r.Status, r.Raw)
	}
}
