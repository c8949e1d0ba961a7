package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

// roomyPlan creates a plan like enterprise with room for the service
// accounts a route matrix makes in one organisation (one or more a cell).
func roomyPlan(t *testing.T, h *harness.Harness) string {
	t.Helper()
	id := "roomy-" + uniq()
	if _, err := h.DB.ExecContext(context.Background(), `INSERT INTO plans (id, name, max_tenants, max_members, requests_per_minute, max_service_accounts)
		VALUES (?, ?, 100, 1000, 30000, 100000)`, id, id); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestServiceAccountsTogetherCannotLockTheMembersOut: four service accounts
// of an organisation whose budget is 20 requests a minute each send 20;
// they spend at most their part of the budget together, and the owner's
// and the admin's requests are still answered.
func TestServiceAccountsTogetherCannotLockTheMembersOut(t *testing.T) {
	h := harness.Get(t)
	srv := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log})
	w := newWorld(t, h, tinyPlan(t, h, 20))
	freshWindow(t, h)

	served := 0
	for range 4 {
		bot := addScopedAccount(t, h, w, w.People[domain.RoleOwner], domain.RoleViewer, []string{string(domain.ScopeOrganizationRead)}, nil)
		for range 20 {
			if r := req(t, srv, "GET", orgPath(w, ""), bot.Token, nil); r.Status == 200 {
				served++
			}
		}
	}
	if served > 10 {
		t.Errorf("service accounts were served %d of a budget of 20: more than their half", served)
	}
	for _, who := range []domain.Role{domain.RoleOwner, domain.RoleAdmin} {
		if r := req(t, srv, "GET", orgPath(w, ""), w.People[who].Token, nil); r.Status != 200 {
			t.Fatalf("the %s after four service accounts' flood: %d %s", who, r.Status, r.Raw)
		}
	}
}

// TestServiceAccountsAreCappedByThePlan: a free organisation may have
// three service accounts; a fourth is 409 naming the plan and its limit,
// also when many are created at once, and the usage view counts them; a
// deleted account frees its place.
func TestServiceAccountsAreCappedByThePlan(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "free")
	admin := w.People[domain.RoleAdmin]
	create := func() response {
		return req(t, srv, "POST", orgPath(w, "/service-accounts"), admin.Token, map[string]any{
			"name": "capped-" + uniq(), "role": "viewer", "scopes": []string{"tenants:read"}, "token_expires_in": 3600})
	}

	// Ten at once: three are created, the others refused.
	var mu sync.Mutex
	statuses := map[int]int{}
	var ids []string
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := create()
			mu.Lock()
			defer mu.Unlock()
			statuses[r.Status]++
			if r.Status == 201 {
				var out struct {
					ServiceAccount struct {
						ID string `json:"id"`
					} `json:"service_account"`
				}
				_ = json.Unmarshal(r.Env.Data, &out)
				ids = append(ids, out.ServiceAccount.ID)
			} else if r.Status != 409 || r.code() != "CONFLICT" || !strings.Contains(r.Env.Error.Message, "plan free allows 3 service accounts") {
				t.Errorf("a creation beyond the cap: %d %s", r.Status, r.Raw)
			}
		}()
	}
	wg.Wait()
	if statuses[201] != 3 || statuses[409] != 7 {
		t.Fatalf("ten creations at once on a free plan: %v", statuses)
	}

	var u struct {
		Plan struct {
			MaxServiceAccounts int `json:"max_service_accounts"`
		} `json:"plan"`
		ServiceAccounts struct {
			Used  int `json:"used"`
			Limit int `json:"limit"`
		} `json:"service_accounts"`
	}
	req(t, srv, "GET", orgPath(w, "/usage"), w.People[domain.RoleViewer].Token, nil).data(t, &u)
	if got := fmt.Sprintf("%d/%d plan %d", u.ServiceAccounts.Used, u.ServiceAccounts.Limit, u.Plan.MaxServiceAccounts); got != "3/3 plan 3" {
		t.Fatalf("usage shows service accounts %s, want 3/3 plan 3", got)
	}

	if r := req(t, srv, "DELETE", orgPath(w, "/service-accounts/"+ids[0]), admin.Token, nil); r.Status != 200 {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	if r := create(); r.Status != 201 {
		t.Fatalf("a creation after a deletion freed a place: %d %s", r.Status, r.Raw)
	}
	if r := create(); r.Status != 409 {
		t.Fatalf("a creation beyond the cap again: %d %s", r.Status, r.Raw)
	}
}
