package api

import (
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
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
	From              string              `json:"from" doc:"The first day of days (YYYY-MM-DD, UTC)."`
	To                string              `json:"to" doc:"The last day of days (YYYY-MM-DD, UTC)."`
	Days              []usageDayView      `json:"days" doc:"The metered figures of each UTC day from from to to, in order (docs/billing.md, What is metered, and how)."`
}

// usageDayView is one UTC day's metered figures.
type usageDayView struct {
	Day                string             `json:"day" doc:"The UTC day, YYYY-MM-DD."`
	Partial            bool               `json:"partial" doc:"The day is not closed yet (today, or a day the daily close has not reached): its figures are computed now and may still grow."`
	TenantHours        map[string]float64 `json:"tenant_hours" doc:"Hours the organisation's tenants were active that day, per environment: tenant_seconds / 3600, rounded to 2 decimals (halves up)."`
	TenantSeconds      map[string]int64   `json:"tenant_seconds" doc:"Seconds the organisation's tenants were active that day, per environment (the exact figure tenant_hours is rounded from)."`
	TenantHoursTotal   float64            `json:"tenant_hours_total" doc:"tenant_seconds_total / 3600, rounded to 2 decimals (halves up): what the day is billed."`
	TenantSecondsTotal int64              `json:"tenant_seconds_total" doc:"The sum of tenant_seconds."`
	PeakMembers        int                `json:"peak_members" doc:"The most members the organisation had at any moment of the day (pending invitations not counted)."`
	APIRequests        int64              `json:"api_requests" doc:"Requests of the organisation's members and service accounts admitted by its rate limit that day; a partial day's lag up to 30 s behind."`
	Operations         int                `json:"operations" doc:"Tenant operations (provision, suspend, resume, decommission, restore) started that day."`
}

// Usage days: by default the last 30 (today included); at most a year
// and a day, so a leap year fits.
const (
	defaultUsageDays = 30
	maxUsageDays     = 366
)

// usageRange reads ?from= and ?to= (UTC dates) against today.
func usageRange(c *fiber.Ctx, today time.Time) (from, to time.Time, err error) {
	var fe fields
	to, from = today, today.AddDate(0, 0, -(defaultUsageDays-1))
	parse := func(name string, dst *time.Time) {
		raw := c.Query(name)
		if raw == "" {
			return
		}
		d, err := time.Parse(store.DayLayout, raw)
		if err != nil {
			fe.add(name, "a UTC date, YYYY-MM-DD")
			return
		}
		if d.After(today) {
			fe.add(name, "must not be after today (UTC): "+today.Format(store.DayLayout))
			return
		}
		*dst = d
	}
	parse("to", &to)
	if c.Query("to") != "" && c.Query("from") == "" && len(fe) == 0 {
		from = to.AddDate(0, 0, -(defaultUsageDays - 1))
	}
	parse("from", &from)
	if len(fe) == 0 {
		switch {
		case from.After(to):
			fe.add("from", "must not be after to")
		case int(to.Sub(from)/(24*time.Hour))+1 > maxUsageDays:
			fe.add("from", fmt.Sprintf("at most %d days from from to to", maxUsageDays))
		}
	}
	if len(fe) > 0 {
		return from, to, &domain.Error{Code: domain.CodeBadRequest, Message: "invalid query parameters", FieldErrors: fe}
	}
	return from, to, nil
}

// hours is seconds in hours, rounded to 2 decimals, halves up, in
// integers so no float rounding can differ from the invoice's.
func hours(seconds int64) float64 {
	return float64(store.TenantHundredths(seconds)) / 100
}

func newUsageDayView(u store.UsageDay, sees func(string) bool) usageDayView {
	v := usageDayView{Day: u.Day.Format(store.DayLayout), Partial: u.ClosedAt == nil, TenantHours: map[string]float64{}, TenantSeconds: map[string]int64{},
		PeakMembers: u.PeakMembers, APIRequests: u.APIRequests, Operations: u.Operations}
	for env, secs := range u.TenantSeconds {
		if !sees(env) {
			continue
		}
		v.TenantSeconds[env], v.TenantHours[env] = secs, hours(secs)
		v.TenantSecondsTotal += secs
	}
	v.TenantHoursTotal = hours(v.TenantSecondsTotal)
	return v
}

// getUsage reads the counts from the queries the quota checks run, so a
// client that sees room is not then refused for a quota (but for a
// concurrent request), and the metered days from..to. A service account
// limited to environments sees the tenant hours of those only.
func (s *Server) getUsage(c *fiber.Ctx, who *caller) error {
	from, to, err := usageRange(c, store.UTCDay(time.Now()))
	if err != nil {
		return err
	}
	u, err := store.OrgUsage(c.UserContext(), s.db, who.OrgID)
	if err != nil {
		return err
	}
	days, err := store.UsageDays(c.UserContext(), s.db, who.OrgID, from, to)
	if err != nil {
		return err
	}
	views := make([]usageDayView, len(days))
	for i, d := range days {
		views[i] = newUsageDayView(d, who.sees)
	}
	return writeData(c, fiber.StatusOK, usageView{
		Plan:              newPlanView(u.Plan),
		Tenants:           tenantUsage{Used: u.Tenants, Limit: u.Plan.MaxTenants},
		Members:           memberUsage{Used: u.Members + u.PendingInvitations, PendingInvitations: u.PendingInvitations, Limit: u.Plan.MaxMembers},
		ServiceAccounts:   serviceAccountUsage{Used: u.ServiceAccounts, Limit: u.Plan.MaxServiceAccounts},
		RequestsPerMinute: u.Plan.RequestsPerMinute,
		From:              from.Format(store.DayLayout),
		To:                to.Format(store.DayLayout),
		Days:              views,
	})
}
