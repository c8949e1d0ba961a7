package integration

import (
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
	"github.com/intelliauth/controlplane/internal/store"
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
	d.DB, d.Temporal, d.Log, d.Keys = h.DB, h.Temporal, h.Log, h.Keys
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

func TestConcurrentSignInsCannotOutrunTheFailureLimit(t *testing.T) {
	small := store.DefaultSignInPolicy
	small.Email = store.ThrottleRule{Window: time.Hour, Limit: 100, Free: 5, Delay: time.Minute, MaxDelay: time.Hour}
	tests := []struct {
		name      string
		policy    store.SignInPolicy
		addresses int
		// failures is the most wrong passwords the policy lets be checked.
		failures int
	}{
		// The attack of the review: 30 at once for one email, 29 wrong and
		// the right one last.
		{"thirty at once from one address check at most the pair's limit", store.DefaultSignInPolicy, 1, store.DefaultSignInPolicy.Pair.Limit},
		{"thirty at once from thirty addresses check at most the email's free attempts", small, 30, small.Email.Free},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := harness.Get(t)
			w := newWorld(t, h, "team")
			email := w.People[domain.RoleViewer].Email
			base := servedAPI(t, api.Deps{SignInPolicy: tt.policy})
			callers := make([]caller, tt.addresses)
			for i := range callers {
				callers[i] = newCaller(base)
			}

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
					answers[i] = callers[i%len(callers)].signIn(t, email, pw)
				})
			}
			close(start)
			wg.Wait()

			failed := 0
			for _, r := range answers {
				switch {
				case r.Status == 429 && r.code() == "RATE_LIMITED" && strings.Contains(r.Env.Error.Message, "sign-in"):
				case r.Status == 401:
					failed++
				case r.Status == 200: // the right password, when it came early
				default:
					t.Errorf("unexpected answer %d %s", r.Status, r.Raw)
				}
			}
			if failed > tt.failures {
				t.Errorf("%d wrong passwords were checked; the limit is %d", failed, tt.failures)
			}
			// Guesses after the burst fill what it left of the limit, exactly:
			// each 401 is a wrong password that was checked.
			for range tt.failures + 1 {
				r := callers[0].signIn(t, email, "a guess after the burst")
				if r.Status == 429 {
					if r.Header.Get("Retry-After") == "" {
						t.Errorf("429 without Retry-After: %s", r.Raw)
					}
					break
				}
				if r.Status == 401 {
					failed++
				}
			}
			if failed != tt.failures {
				t.Errorf("%d wrong passwords were checked in all; the limit is %d", failed, tt.failures)
			}
		})
	}
}

func TestAFloodOfFailuresElsewhereDoesNotLockTheVictimOut(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	victim := w.People[domain.RoleViewer].Email
	base := servedAPI(t, api.Deps{})
	attacker := newCaller(base)
	limit := store.DefaultSignInPolicy.Pair.Limit
	for i := range limit {
		if r := attacker.signIn(t, victim, "guess-"+strconv.Itoa(i)); r.Status != 401 {
			t.Fatalf("guess %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	r := attacker.signIn(t, victim, testPassword)
	if r.Status != 429 || r.code() != "RATE_LIMITED" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("the attacker past the limit, even with the right password: %d %s", r.Status, r.Raw)
	}
	// The victim, at their own address, is not locked out.
	if r := newCaller(base).signIn(t, victim, testPassword); r.Status != 200 {
		t.Fatalf("the victim elsewhere: %d %s", r.Status, r.Raw)
	}
}

func TestFailuresOnManyEmailsFromOneAddressDoNotBlockAUserBehindIt(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	office := newCaller(servedAPI(t, api.Deps{}))
	// Fifty failures from one address used to block it for everyone.
	for i := range 50 {
		if r := office.signIn(t, "typo-"+uniq()+"@example.test", "wrong password"); r.Status != 401 {
			t.Fatalf("failure %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	if r := office.signIn(t, w.People[domain.RoleViewer].Email, testPassword); r.Status != 200 {
		t.Fatalf("a user behind the address: %d %s", r.Status, r.Raw)
	}
}

func TestTheAddressLimitCountsFailuresAndSparesUsersWhoSignedInThere(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	user := w.People[domain.RoleViewer].Email
	policy := store.DefaultSignInPolicy
	policy.Address = store.ThrottleRule{Window: time.Hour, Limit: 3}
	nat := newCaller(servedAPI(t, api.Deps{SignInPolicy: policy}))
	stranger := func() response { return nat.signIn(t, "stranger-"+uniq()+"@example.test", "wrong password") }

	steps := []struct {
		name string
		do   func() response
		want int
	}{
		{"a first failure is checked", stranger, 401},
		{"a second failure is checked", stranger, 401},
		{"a success does not count", func() response { return nat.signIn(t, user, testPassword) }, 200},
		{"nor does another", func() response { return nat.signIn(t, user, testPassword) }, 200},
		{"a third failure is checked", stranger, 401},
		{"a fourth failure is refused", stranger, 429},
		{"a user who signed in here before still signs in", func() response { return nat.signIn(t, user, testPassword) }, 200},
		{"another user behind the address is refused", func() response { return nat.signIn(t, w.People[domain.RoleAdmin].Email, testPassword) }, 429},
	}
	for _, s := range steps {
		if r := s.do(); r.Status != s.want {
			t.Fatalf("%s: got %d %s, want %d", s.name, r.Status, r.Raw, s.want)
		}
	}
}

func TestTheEmailCeilingDelaysBrieflyAndSparesTheUsersOwnAddress(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	victim := w.People[domain.RoleViewer].Email
	rule := store.DefaultSignInPolicy.Email
	base := servedAPI(t, api.Deps{})
	home := newCaller(base)
	if r := home.signIn(t, victim, testPassword); r.Status != 200 {
		t.Fatalf("the victim at home: %d %s", r.Status, r.Raw)
	}
	// A botnet: every guess from another address.
	for i := range rule.Free {
		if r := newCaller(base).signIn(t, victim, "guess-"+strconv.Itoa(i)); r.Status != 401 {
			t.Fatalf("guess %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	r := newCaller(base).signIn(t, victim, "one guess too many")
	retry, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	if r.Status != 429 || retry < 1 || retry > int(rule.Delay.Seconds())+1 {
		t.Fatalf("past the free attempts: %d Retry-After=%q %s", r.Status, r.Header.Get("Retry-After"), r.Raw)
	}
	if r := home.signIn(t, victim, testPassword); r.Status != 200 {
		t.Fatalf("the victim at home during the flood: %d %s", r.Status, r.Raw)
	}
	time.Sleep(time.Duration(retry) * time.Second)
	if r := newCaller(base).signIn(t, victim, "a guess after the wait"); r.Status != 401 {
		t.Fatalf("after Retry-After: %d %s", r.Status, r.Raw)
	}
	r = newCaller(base).signIn(t, victim, "at once again")
	if again, _ := strconv.Atoi(r.Header.Get("Retry-After")); r.Status != 429 || again <= retry || again > int(rule.MaxDelay.Seconds()) {
		t.Fatalf("the next delay: %d Retry-After=%q, want more than %d and at most %v", r.Status, r.Header.Get("Retry-After"), retry, rule.MaxDelay)
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

func TestARightPasswordStartsNoDelayForTheEmail(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	user := w.People[domain.RoleViewer].Email
	policy := store.DefaultSignInPolicy
	policy.Email = store.ThrottleRule{Window: time.Hour, Limit: 100, Free: 3, Delay: time.Minute, MaxDelay: time.Hour}
	base := servedAPI(t, api.Deps{SignInPolicy: policy})
	steps := []struct {
		name string
		pw   string
		want int
	}{
		{"a first failure is checked", "wrong-password-1", 401},
		{"a second failure is checked", "wrong-password-2", 401},
		{"the right password, third, signs in", testPassword, 200},
		{"a third failure is checked: the success did not count", "wrong-password-3", 401},
		{"a fourth failure waits", "wrong-password-4", 429},
	}
	for _, s := range steps {
		// Each from another address: only the email's rule applies.
		if r := newCaller(base).signIn(t, user, s.pw); r.Status != s.want {
			t.Fatalf("%s: got %d %s, want %d", s.name, r.Status, r.Raw, s.want)
		}
	}
}
