package integration

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/drift"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

// orgLifecycle is a lifecycle whose worker also runs organisations'
// deletions, acting on tenants through the tenants' sagas.
type orgLifecycle struct {
	lifecycle
	register func(worker.Registry)
}

func newOrgLifecycle(t *testing.T, faults map[domain.Step]dataplane.Fault, saga config.Saga) orgLifecycle {
	t.Helper()
	h := harness.Get(t)
	dp := &dataplane.Postgres{DB: h.DB, Keys: testKeys()}
	if err := dp.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	var plane dataplane.Plane = dp
	if faults != nil {
		plane = &dataplane.Faulty{Inner: dp, Faults: faults}
	}
	tq := harness.TaskQueue(t)
	register := func(r worker.Registry) {
		r.RegisterWorkflow(workflows.TenantWorkflow)
		r.RegisterWorkflowWithOptions(workflows.OrganizationWorkflow, workflow.RegisterOptions{Name: workflows.OrganizationWorkflowType})
		r.RegisterActivity(&activities.Activities{DB: h.DB, DataPlane: plane,
			Tenants: workflows.NewClient(h.Temporal, harness.Namespace, tq, saga)})
	}
	deps := api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, TaskQueue: tq, Saga: saga, WorkerBound: 5 * time.Second}
	return orgLifecycle{lifecycle: lifecycle{srv: api.New(deps), dp: dp, deps: deps}, register: register}
}

// orgSaga is the test saga settings with an organisation's grace period.
func orgSaga(grace time.Duration) config.Saga {
	s := testSaga(time.Hour)
	s.OrgDeletionGrace = grace
	return s
}

type orgLifecycleData struct {
	Organization struct {
		ID            string     `json:"id"`
		Slug          string     `json:"slug"`
		State         string     `json:"state"`
		DeletionDueAt *time.Time `json:"deletion_due_at"`
	} `json:"organization"`
	Operation struct {
		ID     string     `json:"id"`
		Kind   string     `json:"kind"`
		Status string     `json:"status"`
		DueAt  *time.Time `json:"due_at"`
	} `json:"operation"`
}

func (l orgLifecycle) deleteOrg(t *testing.T, w world, who domain.Role, confirm, key string) response {
	t.Helper()
	return httpReq(t, l.srv, "DELETE", orgPath(w, ""), w.People[who].Token, map[string]any{"confirm": confirm}, key)
}

// orgStatus is the organisation's deletion as its saga says it is.
func orgStatus(t *testing.T, h *harness.Harness, orgID string) workflows.OrganizationStatus {
	t.Helper()
	v, err := h.Temporal.QueryWorkflow(context.Background(), workflows.OrganizationWorkflowID(orgID), "", workflows.QueryStatus)
	if err != nil {
		t.Fatal(err)
	}
	var st workflows.OrganizationStatus
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// orgRow reads the organisation as Postgres holds it.
func orgRow(t *testing.T, h *harness.Harness, id string) store.Organization {
	t.Helper()
	o, err := store.OrgByID(context.Background(), h.DB, id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// waitOrgState polls the organisation's row until it is in the state.
func waitOrgState(t *testing.T, h *harness.Harness, id string, state domain.OrgState, within time.Duration) store.Organization {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		o := orgRow(t, h, id)
		if o.State == string(state) {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("organisation %s is %s after %s, want %s", id, o.State, within, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tenantRow reads a tenant as Postgres holds it.
func tenantRow(t *testing.T, h *harness.Harness, id string) store.Tenant {
	t.Helper()
	var tn store.Tenant
	if err := h.DB.NewSelect().Model(&tn).Where("id = ?", id).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tn
}

func waitTenantRow(t *testing.T, h *harness.Harness, id string, state domain.State) store.Tenant {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		tn := tenantRow(t, h, id)
		if tn.State == string(state) {
			return tn
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenant %s is %s, want %s", id, tn.State, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createRepaired creates a tenant whose provisioning sticks on keys (the
// fault drill's first attempts fail) and repairs it: active.
func (l orgLifecycle) createRepaired(t *testing.T, h *harness.Harness, w world, name string) store.Tenant {
	t.Helper()
	tn := l.accepted(t, w, name, "").Tenant
	st := waitStuck(t, h, tn.WorkflowID, domain.StepKeys)
	if _, err := repair(h, tn.WorkflowID, workflows.RepairRetry, workflows.RepairRequest{Operator: "dora", OperationID: st.Operation.ID, Step: string(domain.StepKeys)}); err != nil {
		t.Fatal(err)
	}
	return l.waitState(t, w, tn.ID, domain.StateActive)
}

// TestAnOrganizationIsDeletedThroughItsSagaAndItsTenantsThroughTheirs: an
// organisation with an active tenant, a suspended one and one whose saga
// is stuck is deleted: at once it is deleting, its tenants suspended
// through their sagas, its service-account tokens and invitations dead,
// every change but a restore refused; when due, its tenants are ended
// through their sagas, the stuck one holds the deletion (stuck too) until
// an operator repairs it, and then nothing is left: no tenant, no
// data-plane resource, no membership, no account of a person who belonged
// nowhere else, and an audit trail whose names and emails are pseudonyms.
// A member who belongs to another organisation keeps their account there.
func TestAnOrganizationIsDeletedThroughItsSagaAndItsTenantsThroughTheirs(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	l := newOrgLifecycle(t, map[domain.Step]dataplane.Fault{domain.StepKeys: {Fail: true, Count: 2}}, orgSaga(4*time.Second))
	h.StartWorker(t, l.deps.TaskQueue, l.register)
	w := newWorld(t, h, "enterprise")
	other := newWorld(t, h, "team")
	owner, admin := w.People[domain.RoleOwner], w.People[domain.RoleAdmin]
	// The admin also belongs to another organisation.
	if _, err := h.DB.NewInsert().Model(&store.Member{ID: domain.NewID(domain.PrefixMember), OrgID: other.Org.ID, UserID: admin.UserID,
		Role: "developer", CreatedAt: time.Now(), UpdatedAt: time.Now()}).Exec(ctx); err != nil {
		t.Fatal(err)
	}

	active := l.createRepaired(t, h, w, "alpha")
	suspended := l.createRepaired(t, h, w, "bravo")
	if r := l.transition(t, w, domain.RoleAdmin, suspended.ID, "suspend", ""); r.Status != 202 {
		t.Fatalf("suspend: %d %s", r.Status, r.Raw)
	}
	l.waitState(t, w, suspended.ID, domain.StateSuspended)
	// A fourth waits out its own decommission's grace period (an hour):
	// the organisation's end does not wait for it.
	graced := l.createRepaired(t, h, w, "delta")
	if r := l.transition(t, w, domain.RoleAdmin, graced.ID, "decommission", ""); r.Status != 202 {
		t.Fatalf("decommission: %d %s", r.Status, r.Raw)
	}
	l.waitState(t, w, graced.ID, domain.StateDecommissioning)
	stuck := l.accepted(t, w, "charlie", "").Tenant
	stuckAt := waitStuck(t, h, stuck.WorkflowID, domain.StepKeys)

	// A service account with a token, and a pending invitation.
	created := httpReq(t, l.srv, "POST", orgPath(w, "/service-accounts"), admin.Token, map[string]any{
		"name": "ci-bot", "role": "developer", "environments": []string{"prod"}, "token_expires_in": 3600, "scopes": []string{"tenants:read"}}, "")
	if created.Status != 201 {
		t.Fatalf("service account: %d %s", created.Status, created.Raw)
	}
	var sa struct {
		Token string `json:"token"`
	}
	created.data(t, &sa)
	invitee := "invitee-" + uniq() + "@example.test"
	if r := req(t, l.srv, "POST", orgPath(w, "/invitations"), admin.Token, map[string]any{"email": invitee, "role": "viewer"}); r.Status != 201 {
		t.Fatalf("invite: %d %s", r.Status, r.Raw)
	}
	secret := inviteEmail(t, h, w, "second-"+invitee)

	// Refusals: the slug typed wrong, a role that may not, no recent
	// authentication.
	if r := l.deleteOrg(t, w, domain.RoleOwner, strings.ToUpper(w.Org.Slug), ""); r.Status != 400 || !strings.Contains(r.Raw, `"confirm"`) {
		t.Fatalf("a wrong slug: %d %s", r.Status, r.Raw)
	}
	if r := l.deleteOrg(t, w, domain.RoleAdmin, w.Org.Slug, ""); r.Status != 403 {
		t.Fatalf("an admin: %d %s", r.Status, r.Raw)
	}
	old := session(t, h, owner.UserID, time.Hour)
	stale(t, h, old)
	if r := httpReq(t, l.srv, "DELETE", orgPath(w, ""), old, map[string]any{"confirm": w.Org.Slug}, ""); r.Status != 403 || r.code() != "REAUTHENTICATION_REQUIRED" {
		t.Fatalf("without a recent authentication: %d %s", r.Status, r.Raw)
	}

	// The deletion, and its retry: one deletion.
	key := "delete-" + uniq()
	r := l.deleteOrg(t, w, domain.RoleOwner, w.Org.Slug, key)
	if r.Status != 202 {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	var began orgLifecycleData
	r.data(t, &began)
	if began.Organization.State != "deleting" || began.Organization.DeletionDueAt == nil || began.Operation.Kind != "deletion" || began.Operation.Status != "running" {
		t.Fatalf("deletion answer: %s", r.Raw)
	}
	again := l.deleteOrg(t, w, domain.RoleOwner, w.Org.Slug, key)
	var replayed orgLifecycleData
	again.data(t, &replayed)
	if again.Status != 202 || replayed.Operation.ID != began.Operation.ID || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %s", again.Status, again.Raw)
	}
	if r := l.deleteOrg(t, w, domain.RoleOwner, w.Org.Slug, ""); r.Status != 409 || !strings.Contains(r.Raw, "being deleted") {
		t.Fatalf("another deletion: %d %s", r.Status, r.Raw)
	}

	// Deleting: read, not changed; no token or invitation works.
	if r := req(t, l.srv, "GET", orgPath(w, ""), w.People[domain.RoleViewer].Token, nil); r.Status != 200 || !strings.Contains(r.Raw, `"state":"deleting"`) {
		t.Fatalf("read while deleting: %d %s", r.Status, r.Raw)
	}
	var seen struct {
		Permissions []domain.Action `json:"permissions"`
	}
	req(t, l.srv, "GET", orgPath(w, ""), owner.Token, nil).data(t, &seen)
	if !slices.Equal(seen.Permissions, []domain.Action{domain.ActionRead, domain.ActionAuditRead, domain.ActionOrganizationDelete}) {
		t.Fatalf("an owner's permissions while deleting: %v", seen.Permissions)
	}
	if r := req(t, l.srv, "GET", orgPath(w, "/tenants/"+suspended.ID), owner.Token, nil); r.Status != 200 || !strings.Contains(r.Raw, `"actions":[]`) {
		t.Fatalf("a tenant's actions while deleting: %d %s", r.Status, r.Raw)
	}
	if r := req(t, l.srv, "PATCH", orgPath(w, ""), owner.Token, map[string]any{"name": "Renamed"}); r.Status != 409 || !strings.Contains(r.Raw, "the organization is being deleted") {
		t.Fatalf("rename while deleting: %d %s", r.Status, r.Raw)
	}
	if r := l.create(t, w, "echo", ""); r.Status != 409 {
		t.Fatalf("create a tenant while deleting: %d %s", r.Status, r.Raw)
	}
	if r := req(t, l.srv, "GET", orgPath(w, "/tenants"), sa.Token, nil); r.Status != 401 {
		t.Fatalf("a service-account token while deleting: %d %s", r.Status, r.Raw)
	}
	if r := req(t, l.srv, "POST", "/api/v1/invitations/accept", "", map[string]any{"token": secret, "name": "In", "password": "a long password 123"}); r.Status != 409 {
		t.Fatalf("an invitation while deleting: %d %s", r.Status, r.Raw)
	}
	ops := req(t, l.srv, "GET", orgPath(w, "/operations"), w.People[domain.RoleViewer].Token, nil)
	if ops.Status != 200 || !strings.Contains(ops.Raw, began.Operation.ID) {
		t.Fatalf("operations: %d %s", ops.Status, ops.Raw)
	}
	// The active tenant is suspended through its own saga.
	waitTenantRow(t, h, active.ID, domain.StateSuspended)

	// When due, the stuck tenant holds the deletion, which is stuck too.
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := orgStatus(t, h, w.Org.ID)
		if st.Saga == workflows.SagaStuck && len(st.StuckTenants) == 1 && st.StuckTenants[0] == stuck.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deletion is not stuck on %s: %+v", stuck.ID, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, id := range []string{active.ID, suspended.ID, graced.ID} {
		waitTenantRow(t, h, id, domain.StateDecommissioned)
	}
	// Members see the deletion stuck among the organisation's operations.
	if ops := req(t, l.srv, "GET", orgPath(w, "/operations"), w.People[domain.RoleViewer].Token, nil); ops.Status != 200 || !strings.Contains(ops.Raw, `"status":"stuck"`) {
		t.Fatalf("operations while stuck: %d %s", ops.Status, ops.Raw)
	}
	if r := req(t, l.srv, "POST", orgPath(w, "/restore"), owner.Token, nil); r.Status != 409 {
		t.Fatalf("restore once due: %d %s", r.Status, r.Raw)
	}
	// The operator repairs the tenant; the deletion goes on by itself.
	if _, err := repair(h, stuck.WorkflowID, workflows.RepairRetry, workflows.RepairRequest{Operator: "dora", OperationID: stuckAt.Operation.ID, Step: string(domain.StepKeys)}); err != nil {
		t.Fatal(err)
	}
	gone := waitOrgState(t, h, w.Org.ID, domain.OrgDeleted, 60*time.Second)
	if gone.Slug == w.Org.Slug || gone.DeletedAt == nil {
		t.Fatalf("deleted organisation: %+v", gone)
	}
	recordHistoryAs(t, h, workflows.OrganizationWorkflowID(w.Org.ID), "", workflows.OrgHistoryPrefix()+"-deletion")

	for _, id := range []string{active.ID, suspended.ID, stuck.ID, graced.ID} {
		tn := tenantRow(t, h, id)
		if tn.State != string(domain.StateDecommissioned) {
			t.Errorf("tenant %s is %s", id, tn.State)
		}
		if res := l.resources(t, tn); res.Any() {
			t.Errorf("tenant %s keeps data-plane resources: %+v", id, res)
		}
	}
	// The drift check finds nothing of it left.
	snap, err := drift.Collect(ctx, drift.Sources{DB: h.DB, Temporal: h.Temporal, Namespace: harness.Namespace, TaskQueue: l.deps.TaskQueue,
		WorkflowType: workflows.TenantWorkflowType, Plane: l.dp})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(snap.Organizations, func(o drift.Organization) bool { return o.ID == w.Org.ID && o.State == "deleted" }) {
		t.Errorf("the drift check does not see the deleted organisation")
	}
	for _, f := range drift.Compare(snap, 0) {
		if f.OrgID == w.Org.ID {
			t.Errorf("drift: %+v", f)
		}
	}
	for what, n := range map[string]int{
		"memberships":       count(t, h, "SELECT count(*) FROM members WHERE org_id = ?", w.Org.ID),
		"invitations":       count(t, h, "SELECT count(*) FROM invitations WHERE org_id = ?", w.Org.ID),
		"service accounts":  count(t, h, "SELECT count(*) FROM service_accounts WHERE org_id = ?", w.Org.ID),
		"running deletions": count(t, h, "SELECT count(*) FROM organization_operations WHERE org_id = ? AND status IN ('running', 'stuck')", w.Org.ID),
		"deletions":         count(t, h, "SELECT count(*) FROM organization_operations WHERE org_id = ? AND kind = 'deletion'", w.Org.ID) - 1,
		"deleted events":    count(t, h, "SELECT count(*) FROM audit_events WHERE org_id = ? AND action = 'organization.deleted'", w.Org.ID) - 1,
		// The saga's own events name the person it acts for (by id).
		"saga events not for the owner": count(t, h, `SELECT count(*) FROM audit_events WHERE org_id = ? AND action IN ('organization.deleted', 'organization.saga_stuck', 'organization.saga_resolved')
			AND (actor_type <> 'system' OR on_behalf_of->>'id' IS DISTINCT FROM ?)`, w.Org.ID, owner.MemberID),
		"saga stuck events": count(t, h, "SELECT count(*) FROM audit_events WHERE org_id = ? AND action = 'organization.saga_stuck'", w.Org.ID) - 1,
	} {
		if n != 0 {
			t.Errorf("%s: %d left (or too many)", what, n)
		}
	}
	// The pseudonyms changed the events: their chain was computed again
	// in the erasure's transaction, and verifies.
	if rep, err := store.VerifyChain(ctx, h.DB, w.Org.ID); err != nil || rep.Problem != nil || rep.Checked < 10 || rep.Unchained != 0 {
		t.Fatalf("the erased trail's chain: %+v, %v", rep, err)
	}
	// No name or email of the organisation's people is left in its trail;
	// its events stay, and a person's pseudonym is the same in each.
	var trail []store.AuditEvent
	if err := h.DB.NewSelect().Model(&trail).Where("org_id = ?", w.Org.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(trail) < 10 {
		t.Fatalf("the trail has %d events", len(trail))
	}
	pseudonym := map[string]string{}
	for _, ev := range trail {
		b, _ := json.Marshal(ev)
		for _, p := range w.People {
			if strings.Contains(string(b), p.Email) {
				t.Errorf("event %s (%s) still names %s", ev.ID, ev.Action, p.Email)
			}
		}
		if strings.Contains(string(b), "invitee-") {
			t.Errorf("event %s (%s) still names the invitee", ev.ID, ev.Action)
		}
		if ev.ActorType == "member" && ev.ActorEmail != "" {
			if prev, ok := pseudonym[ev.ActorID]; ok && prev != ev.ActorEmail {
				t.Errorf("member %s is %s and %s", ev.ActorID, prev, ev.ActorEmail)
			}
			pseudonym[ev.ActorID] = ev.ActorEmail
			if !strings.HasSuffix(ev.ActorEmail, "@erased.invalid") {
				t.Errorf("event %s: actor email %q", ev.ID, ev.ActorEmail)
			}
		}
	}
	// The owner's account is gone (no email, password, session); the
	// admin, who belongs elsewhere, keeps theirs and the other
	// organisation.
	var ownerRow, adminRow store.User
	if err := h.DB.NewSelect().Model(&ownerRow).Where("id = ?", owner.UserID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if ownerRow.Email == owner.Email || ownerRow.PasswordHash != "" || count(t, h, "SELECT count(*) FROM sessions WHERE user_id = ?", owner.UserID) != 0 {
		t.Errorf("the owner's account was not erased: %+v", ownerRow)
	}
	if err := h.DB.NewSelect().Model(&adminRow).Where("id = ?", admin.UserID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if adminRow.Email != admin.Email {
		t.Errorf("the admin's account changed: %+v", adminRow)
	}
	if r := req(t, l.srv, "GET", "/api/v1/organizations/"+other.Org.ID, admin.Token, nil); r.Status != 200 {
		t.Errorf("the admin's other organisation: %d %s", r.Status, r.Raw)
	}
	if r := req(t, l.srv, "GET", orgPath(w, ""), admin.Token, nil); r.Status != 404 {
		t.Errorf("the deleted organisation: %d %s", r.Status, r.Raw)
	}
}

// TestARestoreInTheGracePeriodBringsTheOrganizationBack: restored, the
// organisation is active again with its tenants suspended, its tokens work
// again, and its operations list the deletion (cancelled) and the
// restore.
func TestARestoreInTheGracePeriodBringsTheOrganizationBack(t *testing.T) {
	h := harness.Get(t)
	l := newOrgLifecycle(t, nil, orgSaga(time.Hour))
	h.StartWorker(t, l.deps.TaskQueue, l.register)
	w := newWorld(t, h, "team")
	owner := w.People[domain.RoleOwner]
	tn := l.createActive(t, w, "alpha")

	r := l.deleteOrg(t, w, domain.RoleOwner, w.Org.Slug, "")
	if r.Status != 202 {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	var began orgLifecycleData
	r.data(t, &began)
	if d := time.Until(*began.Organization.DeletionDueAt); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("due in %s", d)
	}
	waitTenantRow(t, h, tn.ID, domain.StateSuspended)
	if r := req(t, l.srv, "POST", orgPath(w, "/restore"), w.People[domain.RoleAdmin].Token, nil); r.Status != 403 {
		t.Fatalf("an admin's restore: %d %s", r.Status, r.Raw)
	}
	key := "restore-" + uniq()
	r = httpReq(t, l.srv, "POST", orgPath(w, "/restore"), owner.Token, nil, key)
	if r.Status != 202 {
		t.Fatalf("restore: %d %s", r.Status, r.Raw)
	}
	var restored orgLifecycleData
	r.data(t, &restored)
	if restored.Organization.State != "active" || restored.Organization.DeletionDueAt != nil || restored.Operation.Kind != "restore" || restored.Operation.Status != "succeeded" {
		t.Fatalf("restore answer: %s", r.Raw)
	}
	if again := httpReq(t, l.srv, "POST", orgPath(w, "/restore"), owner.Token, nil, key); again.Status != 202 || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("restore retried: %d %s", again.Status, again.Raw)
	}
	var result workflows.OrganizationResult
	if err := h.Temporal.GetWorkflow(context.Background(), workflows.OrganizationWorkflowID(w.Org.ID), "").Get(context.Background(), &result); err != nil || result.State != "active" {
		t.Fatalf("the deletion's run: %+v %v", result, err)
	}
	recordHistoryAs(t, h, workflows.OrganizationWorkflowID(w.Org.ID), "", workflows.OrgHistoryPrefix()+"-restore")
	if got := tenantRow(t, h, tn.ID); got.State != string(domain.StateSuspended) {
		t.Fatalf("the tenant after the restore: %s", got.State)
	}
	if r := req(t, l.srv, "PATCH", orgPath(w, ""), owner.Token, map[string]any{"name": "Back again"}); r.Status != 200 {
		t.Fatalf("rename after the restore: %d %s", r.Status, r.Raw)
	}
	ops := req(t, l.srv, "GET", orgPath(w, "/operations"), owner.Token, nil)
	var list []struct {
		ID, Kind, Status string
	}
	ops.data(t, &list)
	if ops.Status != 200 || len(list) != 2 || list[0].Kind != "deletion" || list[0].Status != "cancelled" || list[1].Kind != "restore" {
		t.Fatalf("operations: %s", ops.Raw)
	}
	if r := req(t, l.srv, "POST", orgPath(w, "/restore"), owner.Token, nil); r.Status != 409 {
		t.Fatalf("a restore of an active organisation: %d %s", r.Status, r.Raw)
	}
	// Deleted again later: another run of the same workflow.
	if r := l.deleteOrg(t, w, domain.RoleOwner, w.Org.Slug, ""); r.Status != 202 {
		t.Fatalf("delete again: %d %s", r.Status, r.Raw)
	}
}

// TestADeletionSurvivesItsWorkerAndCompletesOnce: the worker running a
// deletion stops in its grace period; another takes it over, and the
// organisation is deleted once.
func TestADeletionSurvivesItsWorkerAndCompletesOnce(t *testing.T) {
	h := harness.Get(t)
	l := newOrgLifecycle(t, nil, orgSaga(3*time.Second))
	first := worker.New(h.Temporal, l.deps.TaskQueue, worker.Options{WorkerStopTimeout: time.Second})
	l.register(first)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, h, "team")
	tn := l.createActive(t, w, "alpha")
	// The same request sent twice at once: one deletion.
	key := "delete-" + uniq()
	answers := make(chan response, 2)
	for range 2 {
		go func() { answers <- l.deleteOrg(t, w, domain.RoleOwner, w.Org.Slug, key) }()
	}
	var ids []string
	for range 2 {
		r := <-answers
		if r.Status != 202 {
			t.Fatalf("delete: %d %s", r.Status, r.Raw)
		}
		var d orgLifecycleData
		r.data(t, &d)
		ids = append(ids, d.Operation.ID)
	}
	if ids[0] != ids[1] {
		t.Fatalf("two deletions: %v", ids)
	}
	waitTenantRow(t, h, tn.ID, domain.StateSuspended)
	first.Stop()
	time.Sleep(4 * time.Second) // the deletion falls due while no worker runs
	h.StartWorker(t, l.deps.TaskQueue, l.register)
	waitOrgState(t, h, w.Org.ID, domain.OrgDeleted, 90*time.Second)
	if got := tenantRow(t, h, tn.ID); got.State != string(domain.StateDecommissioned) {
		t.Fatalf("tenant: %s", got.State)
	}
	for what, n := range map[string]int{
		"deletions":      count(t, h, "SELECT count(*) FROM organization_operations WHERE org_id = ?", w.Org.ID),
		"deleted events": count(t, h, "SELECT count(*) FROM audit_events WHERE org_id = ? AND action = 'organization.deleted'", w.Org.ID),
		"requested":      count(t, h, "SELECT count(*) FROM audit_events WHERE org_id = ? AND action = 'organization.deletion_requested'", w.Org.ID),
	} {
		if n != 1 {
			t.Errorf("%s: %d, want 1", what, n)
		}
	}
}
