package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/password"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

const testPassword = "a-long-test-password"

var (
	hashOnce sync.Once
	testHash string
)

// passwordHash is testPassword's hash, computed once: fixtures create many
// users, and argon2id is slow on purpose.
func passwordHash(t testing.TB) string {
	hashOnce.Do(func() {
		var err error
		testHash, err = password.Hash(testPassword, password.Default)
		if err != nil {
			t.Fatal(err)
		}
	})
	return testHash
}

// person is a user with a membership and a session.
type person struct {
	UserID, MemberID, Email, Token string
	Role                           domain.Role
}

// world is an organisation with a member of each role, for tests through
// the API.
type world struct {
	Org    store.Organization
	People map[domain.Role]person
}

func uniq() string {
	return strings.ToLower(strings.TrimPrefix(domain.NewID(""), ""))[14:]
}

// newWorld creates an organisation on the plan with one member per role,
// each signed in.
func newWorld(t testing.TB, h *harness.Harness, plan string) world {
	t.Helper()
	return newWorldSlug(t, h, plan, "w-"+uniq())
}

// newWorldSlug is newWorld with the organisation's slug.
func newWorldSlug(t testing.TB, h *harness.Harness, plan, slug string) world {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	org := store.Organization{ID: domain.NewID(domain.PrefixOrganization), Slug: slug, Name: "World " + slug, PlanID: plan, CreatedAt: now, UpdatedAt: now}
	if _, err := h.DB.NewInsert().Model(&org).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	w := world{Org: org, People: map[domain.Role]person{}}
	for _, r := range domain.Roles {
		w.People[r] = addPerson(t, h, org.ID, r)
	}
	return w
}

// addPerson adds a user with a membership of the role and a session.
func addPerson(t testing.TB, h *harness.Harness, orgID string, role domain.Role) person {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	u := store.User{ID: domain.NewID(domain.PrefixUser), Email: string(role) + "-" + uniq() + "@example.test", Name: string(role), PasswordHash: passwordHash(t), CreatedAt: now, UpdatedAt: now}
	if _, err := h.DB.NewInsert().Model(&u).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	m := store.Member{ID: domain.NewID(domain.PrefixMember), OrgID: orgID, UserID: u.ID, Role: string(role), CreatedAt: now, UpdatedAt: now}
	if _, err := h.DB.NewInsert().Model(&m).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	return person{UserID: u.ID, MemberID: m.ID, Email: u.Email, Token: session(t, h, u.ID, time.Hour), Role: role}
}

// session creates a session for the user (a negative ttl: already expired).
func session(t testing.TB, h *harness.Harness, userID string, ttl time.Duration) string {
	t.Helper()
	tok, _, err := store.CreateSession(context.Background(), h.DB, userID, ttl, "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// identityAPI is an API server for identity tests, shared by the package.
var (
	apiOnce sync.Once
	apiSrv  *api.Server
)

// sharedAPI is an API with a worker on its own task queue, for the
// package's lifetime.
func sharedAPI(t *testing.T) *api.Server {
	h := harness.Get(t)
	apiOnce.Do(func() {
		tq := "shared-api"
		w := worker.New(h.Temporal, tq, worker.Options{})
		w.RegisterWorkflow(workflows.TenantWorkflow)
		// Streams' workflows start and wait: no worker delivers them here.
		w.RegisterWorkflowWithOptions(workflows.StreamWorkflow, workflow.RegisterOptions{Name: workflows.StreamWorkflowType})
		dp := &dataplane.Postgres{DB: h.DB, Keys: testKeys()}
		if err := dp.Init(context.Background()); err != nil {
			t.Fatal(err)
		}
		w.RegisterActivity(&activities.Activities{DB: h.DB, DataPlane: dp})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		// The authorisation tests make a dozen refused tokens per route,
		// from one client address: more routes than the budget of refused
		// tokens per minute allows. Its own tests use APIs of their own.
		apiSrv = api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, TaskQueue: tq, Keys: h.Keys, PublicRequestsPerMinute: 1_000_000})
	})
	return apiSrv
}

// response is a parsed API answer.
type response struct {
	Status int
	Header http.Header
	Env    envelope
	Raw    string
}

// req calls the API in process with an optional bearer token and JSON body.
func req(t *testing.T, srv *api.Server, method, path, token string, body any) response {
	t.Helper()
	return httpReq(t, srv, method, path, token, body, "")
}

// httpReq is req with an Idempotency-Key (empty: none).
func httpReq(t testing.TB, srv *api.Server, method, path, token string, body any, key string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	r := httptest.NewRequest(method, path, rd)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		r.Header.Set("Idempotency-Key", key)
	}
	resp := testApp(t, srv, r, 30_000)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.Env); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, path, raw)
		}
	}
	return out
}

func (r response) code() string {
	if r.Env.Error == nil {
		return ""
	}
	return r.Env.Error.Code
}

// data decodes the envelope's data into v.
func (r response) data(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Env.Data, v); err != nil {
		t.Fatalf("data: %v in %s", err, r.Raw)
	}
}

// addInvitation creates a pending invitation directly and returns its id
// and secret.
func addInvitation(t *testing.T, h *harness.Harness, orgID, invitedBy string, role domain.Role) (string, string) {
	t.Helper()
	var secret string
	inv, err := store.Invite(context.Background(), h.DB, store.InviteInput{OrgID: orgID, Email: "inv-" + uniq() + "@example.test", Role: role, InvitedBy: invitedBy, TTL: time.Hour},
		func(inv store.Invitation, s string) store.OutboxMessage {
			secret = s
			return store.OutboxMessage{Recipient: inv.Email, Subject: "test", Body: "test"}
		}, store.EventBase{OrgID: orgID, ActorType: "system", ActorID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return inv.ID, secret
}

func decodeJSON(t *testing.T, raw string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
}

// walkPages GETs path (which has a query) page by page, following
// meta.cursor until has_more is false, and hands each page to page. It
// returns how many pages there were and the last cursor it followed.
func walkPages(t *testing.T, srv *api.Server, token, path string, page func(response)) (pages int, cursor string) {
	t.Helper()
	for {
		p := path
		if cursor != "" {
			p += "&cursor=" + cursor
		}
		r := req(t, srv, "GET", p, token, nil)
		if r.Status != 200 {
			t.Fatalf("page %d: %d %s", pages, r.Status, r.Raw)
		}
		page(r)
		pages++
		var meta struct {
			Meta struct {
				Cursor  string `json:"cursor"`
				HasMore bool   `json:"has_more"`
			} `json:"meta"`
		}
		decodeJSON(t, r.Raw, &meta)
		if !meta.Meta.HasMore {
			return pages, cursor
		}
		cursor = meta.Meta.Cursor
	}
}
