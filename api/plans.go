package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/store"
)

// planView is a plan and its quotas.
type planView struct {
	ID                 string `json:"id"`
	Name               string `json:"name"`
	MaxTenants         int    `json:"max_tenants" doc:"Tenants an organisation may have that are not failed or decommissioned."`
	MaxMembers         int    `json:"max_members" doc:"Members an organisation may have, its pending invitations included."`
	RequestsPerMinute  int    `json:"requests_per_minute" doc:"The organisation's API budget per minute, shared by its members and service accounts; service accounts together may spend at most half of it."`
	MaxServiceAccounts int    `json:"max_service_accounts" doc:"Service accounts an organisation may have (deleted ones do not count)."`
	AuditRetentionDays int    `json:"audit_retention_days" doc:"How long an organisation's audit events are kept; older ones are purged."`
}

func newPlanView(p store.Plan) planView {
	return planView{ID: p.ID, Name: p.Name, MaxTenants: p.MaxTenants, MaxMembers: p.MaxMembers, RequestsPerMinute: p.RequestsPerMinute,
		MaxServiceAccounts: p.MaxServiceAccounts, AuditRetentionDays: p.AuditRetentionDays}
}

// listPlans answers every plan in one page: there are a handful, and a
// client choosing one needs them all.
func (s *Server) listPlans(c *fiber.Ctx, _ *caller) error {
	rows, err := store.Plans(c.UserContext(), s.db)
	if err != nil {
		return err
	}
	views := make([]planView, len(rows))
	for i, p := range rows {
		views[i] = newPlanView(p)
	}
	return writeList(c, views, "", false)
}

// tenantUsage is the tenant quota's use.
type tenantUsage struct {
	Used  int `json:"used" doc:"Tenants that are not failed or decommissioned, as the quota counts them."`
	Limit int `json:"limit"`
}

// memberUsage is the member quota's use.
type memberUsage struct {
	Used               int `json:"used" doc:"Members plus pending invitations that have not expired: the quota counts both, so an invitation holds a seat until it is accepted, revoked or expires."`
	PendingInvitations int `json:"pending_invitations" doc:"How many of used are pending invitations."`
	Limit              int `json:"limit"`
}

// serviceAccountUsage is the service-account quota's use.
type serviceAccountUsage struct {
	Used  int `json:"used" doc:"Service accounts that are not deleted, as the quota counts them."`
	Limit int `json:"limit"`
}

// usageView is an organisation's plan and what its quotas count now.
type usageView struct {
	Plan              planView            `json:"plan"`
	Tenants           tenantUsage         `json:"tenants"`
	Members           memberUsage         `json:"members"`
	ServiceAccounts   serviceAccountUsage `json:"service_accounts"`
	RequestsPerMinute int                 `json:"requests_per_minute" doc:"The organisation's API budget per minute (its plan's)."`
}

// getUsage reads the counts from the queries the quota checks run, so a
// client that sees room is not then refused for a quota (but for a
// concurrent request).
func (s *Server) getUsage(c *fiber.Ctx, who *caller) error {
	u, err := store.OrgUsage(c.UserContext(), s.db, who.OrgID)
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, usageView{
		Plan:              newPlanView(u.Plan),
		Tenants:           tenantUsage{Used: u.Tenants, Limit: u.Plan.MaxTenants},
		Members:           memberUsage{Used: u.Members + u.PendingInvitations, PendingInvitations: u.PendingInvitations, Limit: u.Plan.MaxMembers},
		ServiceAccounts:   serviceAccountUsage{Used: u.ServiceAccounts, Limit: u.Plan.MaxServiceAccounts},
		RequestsPerMinute: u.Plan.RequestsPerMinute,
	})
}
