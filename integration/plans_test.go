package integration

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

type planData struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	MaxTenants        int    `json:"max_tenants"`
	MaxMembers        int    `json:"max_members"`
	RequestsPerMinute int    `json:"requests_per_minute"`
}

type usageData struct {
	Plan    planData `json:"plan"`
	Tenants struct {
		Used  int `json:"used"`
		Limit int `json:"limit"`
	} `json:"tenants"`
	Members struct {
		Used               int `json:"used"`
		PendingInvitations int `json:"pending_invitations"`
		Limit              int `json:"limit"`
	} `json:"members"`
	RequestsPerMinute int `json:"requests_per_minute"`
}

func TestAnySignedInUserListsEveryPlanWithItsQuotasSmallestFirst(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "free")

	r := req(t, srv, "GET", "/api/v1/plans", w.People[domain.RoleViewer].Token, nil)
	if r.Status != 200 {
		t.Fatalf("plans: %d %s", r.Status, r.Raw)
	}
	var plans []planData
	r.data(t, &plans)
	want := []planData{{"free", "Free", 2, 5, 600}, {"team", "Team", 10, 50, 3000}, {"enterprise", "Enterprise", 100, 1000, 30000}}
	var seeded []planData
	for _, p := range plans {
		if slices.ContainsFunc(want, func(w planData) bool { return w.ID == p.ID }) {
			seeded = append(seeded, p)
		}
	}
	if !slices.Equal(seeded, want) {
		t.Fatalf("the seeded plans are %+v, want %+v", seeded, want)
	}
	if !slices.IsSortedFunc(plans, func(a, b planData) int {
		if a.MaxTenants != b.MaxTenants {
			return a.MaxTenants - b.MaxTenants
		}
		return strings.Compare(a.ID, b.ID)
	}) {
		t.Fatalf("plans are not smallest first: %+v", plans)
	}
	if !strings.Contains(r.Raw, `"has_more":false`) {
		t.Errorf("the plans are not one page: %s", r.Raw)
	}
	if r := req(t, srv, "GET", "/api/v1/plans", "", nil); r.Status != 401 {
		t.Fatalf("plans without a token: %d %s", r.Status, r.Raw)
	}
}

func TestUsageCountsWhatTheQuotasCountAndOnlyMembersReadIt(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "free") // 2 tenants, 5 members; newWorld makes 4 members
	viewer, owner := w.People[domain.RoleViewer], w.People[domain.RoleOwner]
	usage := func() usageData {
		t.Helper()
		r := req(t, l.srv, "GET", orgPath(w, "/usage"), viewer.Token, nil)
		if r.Status != 200 {
			t.Fatalf("usage: %d %s", r.Status, r.Raw)
		}
		var u usageData
		r.data(t, &u)
		return u
	}
	show := func(u usageData) string {
		return fmt.Sprintf("tenants %d/%d, members %d (%d pending)/%d", u.Tenants.Used, u.Tenants.Limit, u.Members.Used, u.Members.PendingInvitations, u.Members.Limit)
	}

	u := usage()
	if u.Plan != (planData{"free", "Free", 2, 5, 600}) || u.RequestsPerMinute != 600 {
		t.Fatalf("plan = %+v, requests per minute %d", u.Plan, u.RequestsPerMinute)
	}
	if got := show(u); got != "tenants 0/2, members 4 (0 pending)/5" {
		t.Fatalf("a new organisation: %s", got)
	}

	// A created tenant counts at once (it holds its place while it is
	// provisioned); failed and decommissioned ones do not.
	if r := l.create(t, w, "counted", ""); r.Status != 202 {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	addTenantRow(t, h, w, domain.StateFailed)
	addTenantRow(t, h, w, domain.StateDecommissioned)
	// A pending invitation holds a seat, and is told apart.
	if r := req(t, l.srv, "POST", orgPath(w, "/invitations"), owner.Token, map[string]any{"email": "seat-" + uniq() + "@example.test", "role": "developer"}); r.Status != 201 {
		t.Fatalf("invite: %d %s", r.Status, r.Raw)
	}
	if got := show(usage()); got != "tenants 1/2, members 5 (1 pending)/5" {
		t.Fatalf("with a tenant and an invitation: %s", got)
	}

	// Where used reaches the limit, the quota checks refuse: they count
	// the same rows.
	if r := req(t, l.srv, "POST", orgPath(w, "/invitations"), owner.Token, map[string]any{"email": "over-" + uniq() + "@example.test", "role": "viewer"}); r.Status != 409 || !strings.Contains(r.Raw, "member quota") {
		t.Fatalf("an invitation over the member quota: %d %s", r.Status, r.Raw)
	}
	addTenantRow(t, h, w, domain.StateSuspended)
	if got := show(usage()); got != "tenants 2/2, members 5 (1 pending)/5" {
		t.Fatalf("at the tenant quota: %s", got)
	}
	if r := l.create(t, w, "over", ""); r.Status != 409 || !strings.Contains(r.Raw, "tenant quota") {
		t.Fatalf("a tenant over the quota: %d %s", r.Status, r.Raw)
	}

	// Someone else's organisation looks absent.
	stranger := newWorld(t, h, "team").People[domain.RoleOwner]
	if r := req(t, l.srv, "GET", orgPath(w, "/usage"), stranger.Token, nil); r.Status != 404 || r.code() != "NOT_FOUND" {
		t.Fatalf("usage read by a non-member: %d %s", r.Status, r.Raw)
	}
}
