package integration

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// withLinks is a tenant or an operation with the link the API may add.
type withLinks struct {
	ID          string `json:"id"`
	WorkflowID  string `json:"workflow_id"`
	WorkflowURL string `json:"workflow_url"`
}

func TestTenantsAndOperationsLinkToTheirSagaOnlyWhenTheTemporalUIIsConfigured(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	deps := l.deps
	deps.TemporalUIURL = "https://temporal.example.test/ui/"
	linked := api.New(deps)
	w := newWorld(t, h, "team")
	dev := w.People[domain.RoleDeveloper]
	want := func(workflowID string) string {
		return "https://temporal.example.test/ui/namespaces/" + harness.Namespace + "/workflows/" + url.PathEscape(workflowID)
	}

	r := httpReq(t, linked, "POST", orgPath(w, "/tenants"), dev.Token, map[string]any{"name": "linked", "environment": "prod"}, "")
	if r.Status != 202 {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	var created struct {
		Tenant    withLinks `json:"tenant"`
		Operation withLinks `json:"operation"`
	}
	r.data(t, &created)
	link := want(created.Tenant.WorkflowID)
	if !strings.Contains(link, "/workflows/tenant%2F") {
		t.Fatalf("the workflow id is not one escaped segment: %s", link)
	}
	if created.Tenant.WorkflowURL != link || created.Operation.WorkflowURL != link {
		t.Fatalf("the creation's answer links to %q and %q, want %q", created.Tenant.WorkflowURL, created.Operation.WorkflowURL, link)
	}
	id := created.Tenant.ID
	l.waitState(t, w, id, domain.StateActive)

	var tn withLinks
	req(t, linked, "GET", orgPath(w, "/tenants/"+id), dev.Token, nil).data(t, &tn)
	var tenants, ops []withLinks
	req(t, linked, "GET", orgPath(w, "/tenants"), dev.Token, nil).data(t, &tenants)
	req(t, linked, "GET", orgPath(w, "/tenants/"+id+"/operations"), dev.Token, nil).data(t, &ops)
	if tn.WorkflowURL != link || len(tenants) != 1 || tenants[0].WorkflowURL != link || len(ops) != 1 || ops[0].WorkflowURL != link {
		t.Fatalf("links: tenant %q, list %+v, operations %+v; want %q", tn.WorkflowURL, tenants, ops, link)
	}

	// A server without the UI's address writes no link at all.
	for _, path := range []string{"/tenants/" + id, "/tenants", "/tenants/" + id + "/operations"} {
		if r := req(t, l.srv, "GET", orgPath(w, path), dev.Token, nil); r.Status != 200 || strings.Contains(r.Raw, "workflow_url") {
			t.Errorf("%s without CP_TEMPORAL_UI_URL: %d %s", path, r.Status, r.Raw)
		}
	}
	if r := l.transition(t, w, domain.RoleDeveloper, id, "suspend", ""); r.Status != 202 || strings.Contains(r.Raw, "workflow_url") {
		t.Errorf("a transition's answer without CP_TEMPORAL_UI_URL: %d %s", r.Status, r.Raw)
	}
}

func TestTheInvitationMailLinksToTheConfiguredConsole(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	for _, tt := range []struct {
		name    string
		console string // api.Deps.ConsoleURL
		link    string
	}{
		{"by default, the console under the domain", "", "https://manage.intelliauth.localhost/invitations/accept#token="},
		{"a configured console, its trailing slash dropped", "https://console.example.test/manage/", "https://console.example.test/manage/invitations/accept#token="},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, ConsoleURL: tt.console})
			email := "linked-" + uniq() + "@example.test"
			r := req(t, srv, "POST", orgPath(w, "/invitations"), w.People[domain.RoleOwner].Token, map[string]any{"email": email, "role": "viewer"})
			if r.Status != 201 {
				t.Fatalf("invite: %d %s", r.Status, r.Raw)
			}
			var msg store.OutboxMessage
			if err := h.DB.NewSelect().Model(&msg).Where("recipient = ?", email).Scan(context.Background()); err != nil {
				t.Fatal(err)
			}
			secret := secretRe.FindString(msg.Body)
			if secret == "" || !strings.Contains(msg.Body, "Accept the invitation: "+tt.link+secret+"\r\n") {
				t.Fatalf("the mail does not link to %s<secret>:\n%s", tt.link, msg.Body)
			}
			if !strings.Contains(msg.BodyRedacted, tt.link+store.InvitationPrefix+"(redacted)") || strings.Contains(msg.BodyRedacted, secret) {
				t.Fatalf("the redacted body:\n%s", msg.BodyRedacted)
			}
		})
	}
}
