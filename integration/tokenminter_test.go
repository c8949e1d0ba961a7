package integration

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// minterToken is a token as the API shows it, read as JSON so these tests
// say what a client sees.
type minterToken struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	MintedBy *struct {
		MemberID string `json:"member_id"`
		Email    string `json:"email"`
	} `json:"minted_by"`
	RevokedReason string `json:"revoked_reason"`
}

// minterAccount is a service account as the API shows it, with its tokens.
type minterAccount struct {
	ID     string        `json:"id"`
	Tokens []minterToken `json:"tokens"`
}

// token returns the account's token with the id.
func (a minterAccount) token(t *testing.T, id string) minterToken {
	t.Helper()
	for _, tk := range a.Tokens {
		if tk.ID == id {
			return tk
		}
	}
	t.Fatalf("account %s has no token %s: %+v", a.ID, id, a.Tokens)
	return minterToken{}
}

// createAccountAs creates an account through the API as who (who answers
// for it) and returns it with its first token's id and secret.
func createAccountAs(t *testing.T, srv *api.Server, w world, who person, role domain.Role, scopes ...string) (minterAccount, string, string) {
	t.Helper()
	r := req(t, srv, "POST", orgPath(w, "/service-accounts"), who.Token, map[string]any{
		"name": "bot-" + uniq(), "role": role, "scopes": scopes, "token_expires_in": 3600})
	if r.Status != 201 {
		t.Fatalf("create an account as %s: %d %s", who.Role, r.Status, r.Raw)
	}
	var out struct {
		ServiceAccount minterAccount `json:"service_account"`
		Token          string        `json:"token"`
	}
	r.data(t, &out)
	return out.ServiceAccount, out.ServiceAccount.Tokens[0].ID, out.Token
}

// mintAs mints a token on the account through the API as who and returns
// its id and secret.
func mintAs(t *testing.T, srv *api.Server, w world, who person, accountID string) (string, string) {
	t.Helper()
	r := req(t, srv, "POST", orgPath(w, "/service-accounts/"+accountID+"/tokens"), who.Token, map[string]any{"expires_in": 3600})
	if r.Status != 201 {
		t.Fatalf("mint as %s: %d %s", who.Role, r.Status, r.Raw)
	}
	var out struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	r.data(t, &out)
	return out.ID, out.Token
}

func getAccount(t *testing.T, srv *api.Server, w world, who person, id string) minterAccount {
	t.Helper()
	var a minterAccount
	req(t, srv, "GET", orgPath(w, "/service-accounts/"+id), who.Token, nil).data(t, &a)
	return a
}

// revocations are the account's token_revoked events, by token id.
func revocations(t *testing.T, srv *api.Server, w world, accountID string) map[string]store.EventView {
	t.Helper()
	var evs []store.EventView
	req(t, srv, "GET", orgPath(w, "/events?action=service_account.token_revoked&target_id="+accountID), w.People[domain.RoleOwner].Token, nil).data(t, &evs)
	out := map[string]store.EventView{}
	for _, e := range evs {
		var d struct {
			TokenID string `json:"token_id"`
		}
		_ = json.Unmarshal(e.Data, &d)
		out[d.TokenID] = e
	}
	return out
}

// TestAServiceTokenStopsWhenItsMinterLosesThePowerToMintIt: an admin mints
// a token on an account the owner answers for; removing the admin, the
// admin leaving, or demoting the admin below service_accounts.manage stops
// that token at once (revoked, with an event naming why), while the
// owner's own token on the same account goes on working. An owner made
// admin loses the tokens it minted on an owner's account. The token view
// says who minted each token.
func TestAServiceTokenStopsWhenItsMinterLosesThePowerToMintIt(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)

	for _, c := range []struct {
		name, reason string
		accountRole  domain.Role
		minterRole   domain.Role
		stop         func(t *testing.T, w world, minter person)
	}{
		{"the minter is removed", "minter_removed", domain.RoleDeveloper, domain.RoleAdmin, func(t *testing.T, w world, m person) {
			if r := req(t, srv, "DELETE", orgPath(w, "/members/"+m.MemberID), w.People[domain.RoleOwner].Token, nil); r.Status != 200 {
				t.Fatalf("remove: %d %s", r.Status, r.Raw)
			}
		}},
		{"the minter leaves", "minter_left", domain.RoleDeveloper, domain.RoleAdmin, func(t *testing.T, w world, m person) {
			if r := req(t, srv, "DELETE", orgPath(w, "/members/"+m.MemberID), m.Token, nil); r.Status != 200 {
				t.Fatalf("leave: %d %s", r.Status, r.Raw)
			}
		}},
		{"the minter is made a developer", "minter_demoted", domain.RoleDeveloper, domain.RoleAdmin, func(t *testing.T, w world, m person) {
			if r := req(t, srv, "PATCH", orgPath(w, "/members/"+m.MemberID), w.People[domain.RoleOwner].Token, map[string]any{"role": "developer"}); r.Status != 200 {
				t.Fatalf("demote: %d %s", r.Status, r.Raw)
			}
		}},
		{"an owner minter is made admin, below the account's role", "minter_demoted", domain.RoleOwner, domain.RoleOwner, func(t *testing.T, w world, m person) {
			if r := req(t, srv, "PATCH", orgPath(w, "/members/"+m.MemberID), w.People[domain.RoleOwner].Token, map[string]any{"role": "admin"}); r.Status != 200 {
				t.Fatalf("demote: %d %s", r.Status, r.Raw)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, h, "enterprise")
			owner := w.People[domain.RoleOwner]
			minter := addPerson(t, h, w.Org.ID, c.minterRole)
			sa, ownersTokenID, ownersToken := createAccountAs(t, srv, w, owner, c.accountRole, "tenants:read")
			tokenID, token := mintAs(t, srv, w, minter, sa.ID)
			if r := req(t, srv, "GET", orgPath(w, "/tenants"), token, nil); r.Status != 200 {
				t.Fatalf("the minted token before: %d %s", r.Status, r.Raw)
			}
			before := getAccount(t, srv, w, owner, sa.ID).token(t, tokenID)

			c.stop(t, w, minter)

			if r := req(t, srv, "GET", orgPath(w, "/tenants"), token, nil); r.Status != 401 {
				t.Fatalf("the token of a minter who lost the power to mint it still works: %d %s", r.Status, r.Raw)
			}
			if r := req(t, srv, "GET", orgPath(w, "/tenants"), ownersToken, nil); r.Status != 200 {
				t.Fatalf("the owner's token on the same account: %d %s", r.Status, r.Raw)
			}
			if before.MintedBy == nil || before.MintedBy.MemberID != minter.MemberID || before.MintedBy.Email != minter.Email {
				t.Fatalf("the token view does not say who minted it: %+v", before)
			}
			a := getAccount(t, srv, w, owner, sa.ID)
			if got := a.token(t, tokenID); got.Status != "revoked" || got.RevokedReason != c.reason || got.MintedBy == nil || got.MintedBy.MemberID != minter.MemberID {
				t.Fatalf("the minter's token as shown: %+v", got)
			}
			if got := a.token(t, ownersTokenID); got.Status != "active" {
				t.Fatalf("the owner's token as shown: %+v", got)
			}
			ev, ok := revocations(t, srv, w, sa.ID)[tokenID]
			if !ok || !strings.Contains(string(ev.Data), c.reason) || !strings.Contains(string(ev.Data), minter.MemberID) {
				t.Fatalf("no token_revoked event naming why: %+v", ev)
			}
		})
	}
}

// TestATakeOverDoesNotReviveARemovedMintersToken: an admin creates an
// account (so answers for it and minted its first token) and the owner
// mints a second token on it. The owner removes the admin: the admin's
// token stops, the owner's waits for someone to answer for the account.
// The owner takes the account over: the owner's token works again, the
// admin's stays revoked, and the take-over's event lists the tokens it
// keeps and who minted them.
func TestATakeOverDoesNotReviveARemovedMintersToken(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "enterprise")
	owner := w.People[domain.RoleOwner]
	admin := addPerson(t, h, w.Org.ID, domain.RoleAdmin)
	sa, adminsTokenID, adminsToken := createAccountAs(t, srv, w, admin, domain.RoleDeveloper, "tenants:read")
	ownersTokenID, ownersToken := mintAs(t, srv, w, owner, sa.ID)

	if r := req(t, srv, "DELETE", orgPath(w, "/members/"+admin.MemberID), owner.Token, nil); r.Status != 200 {
		t.Fatalf("remove: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", orgPath(w, "/tenants"), ownersToken, nil); r.Status != 403 || !strings.Contains(r.Raw, "take it over") {
		t.Fatalf("the owner's token while nobody answers for the account: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "POST", orgPath(w, "/service-accounts/"+sa.ID+"/take-over"), owner.Token, nil); r.Status != 200 {
		t.Fatalf("take over: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", orgPath(w, "/tenants"), adminsToken, nil); r.Status != 401 {
		t.Fatalf("the removed admin's token after the take-over: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", orgPath(w, "/tenants"), ownersToken, nil); r.Status != 200 {
		t.Fatalf("the owner's token after the take-over: %d %s", r.Status, r.Raw)
	}
	var evs []store.EventView
	req(t, srv, "GET", orgPath(w, "/events?action=service_account.taken_over&target_id="+sa.ID), owner.Token, nil).data(t, &evs)
	if len(evs) != 1 {
		t.Fatalf("take-over events: %+v", evs)
	}
	var data struct {
		TokensKept []struct {
			ID       string `json:"id"`
			MintedBy string `json:"minted_by"`
		} `json:"tokens_kept"`
	}
	if err := json.Unmarshal(evs[0].Data, &data); err != nil || len(data.TokensKept) != 1 || data.TokensKept[0].ID != ownersTokenID || data.TokensKept[0].MintedBy != owner.MemberID {
		t.Fatalf("the take-over does not list the tokens it keeps: %s", evs[0].Data)
	}
	if got := getAccount(t, srv, w, owner, sa.ID).token(t, adminsTokenID); got.Status != "revoked" || got.RevokedReason != "minter_removed" {
		t.Fatalf("the removed admin's token as shown: %+v", got)
	}
}

// TestEveryServiceAccountEventNamesItsToken: what a service account does
// (its request's event and the saga's events on its behalf) names the
// token it used, and so does the event of the token's own creation.
func TestEveryServiceAccountEventNamesItsToken(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "enterprise")
	owner := w.People[domain.RoleOwner]
	sa, _, _ := createAccountAs(t, l.srv, w, owner, domain.RoleDeveloper, "tenants:create", "tenants:read")
	tokenID, token := mintAs(t, l.srv, w, owner, sa.ID)

	r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), token, map[string]any{"name": "named-" + uniq()[:6], "environment": "prod"}, "")
	if r.Status != 202 {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	var d lifecycleData
	r.data(t, &d)
	l.waitState(t, w, d.Tenant.ID, domain.StateActive)

	var evs []struct {
		Action string `json:"action"`
		Actor  struct {
			Type    string `json:"type"`
			ID      string `json:"id"`
			TokenID string `json:"token_id"`
		} `json:"actor"`
		OnBehalfOf json.RawMessage `json:"on_behalf_of"`
	}
	req(t, l.srv, "GET", orgPath(w, "/events?target_id="+d.Tenant.ID), owner.Token, nil).data(t, &evs)
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Action] = true
		switch e.Actor.Type {
		case "service_account":
			if e.Actor.ID != sa.ID || e.Actor.TokenID != tokenID {
				t.Errorf("%s by %+v: the token is not named", e.Action, e.Actor)
			}
		case "system":
			if !strings.Contains(string(e.OnBehalfOf), `"token_id":"`+tokenID+`"`) {
				t.Errorf("%s on behalf of %s: the token is not named", e.Action, e.OnBehalfOf)
			}
		}
	}
	for _, a := range []string{"tenant.create_requested", "tenant.provisioned"} {
		if !seen[a] {
			t.Errorf("no %s in %+v", a, evs)
		}
	}
}
