package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

// freshWindow waits, when the current minute window (on the database's
// clock, which the limiter uses) has less than 20 s left, for the next one,
// so a test's requests all fall in one window.
func freshWindow(t *testing.T, h *harness.Harness) {
	t.Helper()
	var left float64
	if err := h.DB.NewRaw("SELECT extract(epoch FROM date_trunc('minute', now()) + interval '1 minute' - now())").Scan(context.Background(), &left); err != nil {
		t.Fatal(err)
	}
	if left < 20 {
		time.Sleep(time.Duration(left*float64(time.Second)) + 200*time.Millisecond)
	}
}

// tinyPlan creates a plan with the given request budget.
func tinyPlan(t *testing.T, h *harness.Harness, rpm int) string {
	t.Helper()
	id := "rl-" + uniq()
	if _, err := h.DB.ExecContext(context.Background(),
		"INSERT INTO plans (id, name, max_tenants, max_members, requests_per_minute) VALUES (?, ?, 5, 50, ?)", id, id, rpm); err != nil {
		t.Fatal(err)
	}
	return id
}

func rateHeaders(r response) (limit, remaining, reset int) {
	limit, _ = strconv.Atoi(r.Header.Get("RateLimit-Limit"))
	remaining, _ = strconv.Atoi(r.Header.Get("RateLimit-Remaining"))
	reset, _ = strconv.Atoi(r.Header.Get("RateLimit-Reset"))
	return
}

func TestPlanRateLimitIsOneBudgetSharedByTwoAPIInstances(t *testing.T) {
	t.Parallel() // each waits for a fresh window
	h := harness.Get(t)
	const budget = 12
	w := newWorld(t, h, tinyPlan(t, h, budget))
	other := newWorld(t, h, "team")
	// Two API processes in all but name: they share nothing but Postgres.
	a := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log})
	b := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log})
	freshWindow(t, h)

	path := orgPath(w, "")
	token := w.People[domain.RoleViewer].Token
	for i := range budget {
		// Two members, each within their share (half the budget).
		srv := []*api.Server{a, b}[i%2]
		who := []domain.Role{domain.RoleViewer, domain.RoleDeveloper}[(i/2)%2]
		r := req(t, srv, "GET", path, w.People[who].Token, nil)
		limit, remaining, reset := rateHeaders(r)
		if r.Status != 200 || limit != budget || remaining != budget-i-1 || reset < 1 || reset > 60 {
			t.Fatalf("request %d: %d limit=%d remaining=%d reset=%d, want 200 %d %d 1..60: %s", i+1, r.Status, limit, remaining, reset, budget, budget-i-1, r.Raw)
		}
	}
	// The budget is spent on both instances, for any member and any route
	// of the organisation, those who spent none of it included.
	for i, srv := range []*api.Server{a, b} {
		for _, who := range []domain.Role{domain.RoleAdmin, domain.RoleOwner} {
			r := req(t, srv, "GET", orgPath(w, "/members"), w.People[who].Token, nil)
			limit, remaining, reset := rateHeaders(r)
			retry, _ := strconv.Atoi(r.Header.Get("Retry-After"))
			if r.Status != 429 || r.Env.Error.Code != "RATE_LIMITED" || limit != budget || remaining != 0 || retry < 1 || retry > 60 || retry != reset {
				t.Fatalf("instance %d, %s over budget: %d %s limit=%d remaining=%d Retry-After=%d reset=%d", i, who, r.Status, r.Env.Error.Code, limit, remaining, retry, reset)
			}
			if !strings.Contains(r.Env.Error.Message, fmt.Sprint(budget)) {
				t.Errorf("message does not name the limit: %q", r.Env.Error.Message)
			}
		}
	}
	// A plan upgrade gives the larger budget at once, on both instances.
	if _, err := h.DB.ExecContext(context.Background(), "UPDATE organizations SET plan_id = 'team' WHERE id = ?", w.Org.ID); err != nil {
		t.Fatal(err)
	}
	for i, srv := range []*api.Server{a, b} {
		if r := req(t, srv, "GET", path, token, nil); r.Status != 200 || r.Header.Get("RateLimit-Limit") != "3000" {
			t.Fatalf("instance %d after the upgrade: %d limit=%q %s", i, r.Status, r.Header.Get("RateLimit-Limit"), r.Raw)
		}
	}
	// Routes outside an organisation are the user's budget.
	if r := req(t, a, "GET", "/api/v1/me", token, nil); r.Status != 200 || r.Header.Get("RateLimit-Limit") != "1200" {
		t.Fatalf("/me: %d limit=%q", r.Status, r.Header.Get("RateLimit-Limit"))
	}
	// Another organisation has its own budget.
	if r := req(t, a, "GET", orgPath(other, ""), other.People[domain.RoleViewer].Token, nil); r.Status != 200 {
		t.Fatalf("other organisation: %d %s", r.Status, r.Raw)
	}
	// A caller who is not a member can neither see nor spend it: 404, as
	// for any organisation it is not in.
	if r := req(t, b, "GET", path, other.People[domain.RoleOwner].Token, nil); r.Status != 404 {
		t.Fatalf("non-member: %d %s", r.Status, r.Raw)
	}
}

func TestTheNextWindowHasAFreshBudget(t *testing.T) {
	t.Parallel() // each waits for a fresh window
	h := harness.Get(t)
	w := newWorld(t, h, tinyPlan(t, h, 2))
	srv := sharedAPI(t)
	freshWindow(t, h)
	// Two members, one request each (each member may spend half).
	for _, who := range []domain.Role{domain.RoleViewer, domain.RoleDeveloper} {
		if r := req(t, srv, "GET", orgPath(w, ""), w.People[who].Token, nil); r.Status != 200 {
			t.Fatalf("within budget: %d %s", r.Status, r.Raw)
		}
	}
	token := w.People[domain.RoleAdmin].Token
	r := req(t, srv, "GET", orgPath(w, ""), token, nil)
	if r.Status != 429 {
		t.Fatalf("over budget: %d %s", r.Status, r.Raw)
	}
	retry, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	time.Sleep(time.Duration(retry)*time.Second + 300*time.Millisecond)
	if r := req(t, srv, "GET", orgPath(w, ""), token, nil); r.Status != 200 {
		t.Fatalf("after Retry-After: %d %s", r.Status, r.Raw)
	}
}

// addrClient is an HTTP client whose connections come from its own
// loopback address, so its public-route budget is its own.
func addrClient() (*http.Client, string) {
	ip := net.IPv4(127, byte(1+rand.IntN(250)), byte(rand.IntN(256)), byte(2+rand.IntN(250)))
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}, ip.String()
}

func TestPublicRoutesAreLimitedPerClientAddressAcrossInstances(t *testing.T) {
	t.Parallel() // each waits for a fresh window
	h := harness.Get(t)
	const budget = 4
	var urls []string
	for range 2 {
		srv := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, PublicRequestsPerMinute: budget})
		urls = append(urls, "http://"+serve(t, srv))
	}
	freshWindow(t, h)
	post := func(c *http.Client, base string) (int, http.Header, string) {
		t.Helper()
		resp, err := c.Post(base+"/api/v1/auth/sign-in", "application/json", strings.NewReader(`{"email":"nobody-`+uniq()+`@example.test","password":"wrong password"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var env envelope
		_ = json.Unmarshal(raw, &env)
		return resp.StatusCode, resp.Header, env.Error.Code
	}
	c, ip := addrClient()
	for i := range budget {
		if status, hd, code := post(c, urls[i%2]); status != 401 || hd.Get("RateLimit-Limit") != strconv.Itoa(budget) {
			t.Fatalf("%s request %d: %d %s limit=%q", ip, i+1, status, code, hd.Get("RateLimit-Limit"))
		}
	}
	for _, u := range urls {
		if status, hd, code := post(c, u); status != 429 || code != "RATE_LIMITED" || hd.Get("Retry-After") == "" {
			t.Fatalf("%s over budget: %d %s Retry-After=%q", ip, status, code, hd.Get("Retry-After"))
		}
	}
	// Another address is not affected.
	c2, ip2 := addrClient()
	if status, _, code := post(c2, urls[0]); status != 401 {
		t.Fatalf("%s: %d %s", ip2, status, code)
	}
}

func TestNoOneCanSpendABudgetThatIsNotTheirs(t *testing.T) {
	h := harness.Get(t)
	freshWindow(t, h)
	srv := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, PublicRequestsPerMinute: 5, UserRequestsPerMinute: 5})
	counts := func(n int, call func() response) map[int]int {
		out := map[int]int{}
		for range n {
			out[call().Status]++
		}
		return out
	}

	t.Run("a viewer cannot spend the owner's share of the organisation's budget", func(t *testing.T) {
		w := newWorld(t, h, tinyPlan(t, h, 20))
		got := counts(20, func() response { return req(t, srv, "GET", orgPath(w, ""), w.People[domain.RoleViewer].Token, nil) })
		if got[429] == 0 || got[200] > 10 {
			t.Fatalf("one member's 20 requests on a budget of 20: %v", got)
		}
		if r := req(t, srv, "GET", orgPath(w, ""), w.People[domain.RoleOwner].Token, nil); r.Status != 200 {
			t.Fatalf("the owner after a viewer's flood: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("a service account cannot spend the people's share of the organisation's budget", func(t *testing.T) {
		w := newWorld(t, h, tinyPlan(t, h, 20))
		bot := addScopedAccount(t, h, w, w.People[domain.RoleOwner], domain.RoleViewer, []string{string(domain.ScopeOrganizationRead)}, nil)
		got := counts(20, func() response { return req(t, srv, "GET", orgPath(w, ""), bot.Token, nil) })
		if got[429] == 0 || got[200] > 10 {
			t.Fatalf("a service account's 20 requests on a budget of 20: %v", got)
		}
		if r := req(t, srv, "GET", orgPath(w, ""), w.People[domain.RoleOwner].Token, nil); r.Status != 200 {
			t.Fatalf("the owner after the account's flood: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("invalid tokens are limited per client address", func(t *testing.T) {
		got := counts(15, func() response { return req(t, srv, "GET", "/api/v1/me", "not-a-token-"+uniq(), nil) })
		if got[429] == 0 || got[401]+got[429] != 15 {
			t.Fatalf("15 invalid tokens: %v", got)
		}
		// A valid token from the same address is not locked out.
		w := newWorld(t, h, "team")
		if r := req(t, srv, "GET", "/api/v1/me", w.People[domain.RoleViewer].Token, nil); r.Status != 200 {
			t.Fatalf("a valid token from the same address: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("a service account's probes of another organisation are limited", func(t *testing.T) {
		own, target := newWorld(t, h, "team"), newWorld(t, h, "team")
		bot := addScopedAccount(t, h, own, own.People[domain.RoleOwner], domain.RoleViewer, []string{string(domain.ScopeOrganizationRead)}, nil)
		got := counts(15, func() response { return req(t, srv, "GET", orgPath(target, ""), bot.Token, nil) })
		if got[429] == 0 || got[404]+got[429] != 15 {
			t.Fatalf("15 probes of another organisation by a service account: %v", got)
		}
	})
	t.Run("a non-member's probes of another organisation are limited", func(t *testing.T) {
		outsider, target := newWorld(t, h, "team"), newWorld(t, h, "team")
		got := counts(15, func() response {
			return req(t, srv, "GET", orgPath(target, ""), outsider.People[domain.RoleOwner].Token, nil)
		})
		if got[429] == 0 || got[404]+got[429] != 15 {
			t.Fatalf("15 probes of another organisation: %v", got)
		}
	})
}
