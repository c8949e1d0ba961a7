package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// TestUsageConsoleDrawsTheDaysAndTheirTables: an organisation with a
// week of usage (a prod tenant active all week, a staging one for part
// of it, requests every day, the first two days closed) opens its Usage
// page on that week: the tenant-hours chart has a stacked bar per day,
// today's marked partial; the requests chart draws each day and the
// plan's daily limit; the quotas are drawn; every chart has an accessible
// name and a table with the same numbers, shown on request; the page
// passes axe.
func TestUsageConsoleDrawsTheDaysAndTheirTables(t *testing.T) {
	clearOfMidnight(t, 2*time.Minute)
	t.Parallel()
	ctx := context.Background()
	url, db := harness.Get(t).NewDatabase(t, false)
	env := append(devEnv(t), "CP_DATABASE_URL="+url)
	p := startDev(t, env)
	owner := signInDev(t, p.api)

	// A week of usage, written as the history tables would hold it.
	today := store.UTCDay(time.Now())
	first := today.AddDate(0, 0, -6)
	var userID string
	if err := db.NewRaw(`SELECT user_id FROM members WHERE org_id = ? LIMIT 1`, owner.org).Scan(ctx, &userID); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`UPDATE organizations SET created_at = ? WHERE id = ?`, first.AddDate(0, 0, -3), owner.org)
	tenant := func(name, env string, since, until time.Time) {
		id := domain.NewID(domain.PrefixTenant)
		exec(`INSERT INTO tenants (id, org_id, name, environment, state, hostname, workflow_id, created_by) VALUES (?, ?, ?, ?, 'active', ?, ?, ?)`,
			id, owner.org, name, env, name+".usage.test", "wf/"+id, userID)
		exec(`DELETE FROM tenant_state_intervals WHERE tenant_id = ?`, id)
		if until.IsZero() {
			exec(`INSERT INTO tenant_state_intervals (tenant_id, org_id, environment, state, since) VALUES (?, ?, ?, 'active', ?)`, id, owner.org, env, since)
			return
		}
		exec(`INSERT INTO tenant_state_intervals (tenant_id, org_id, environment, state, since, until) VALUES (?, ?, ?, 'active', ?, ?)`, id, owner.org, env, since, until)
		exec(`UPDATE tenants SET state = 'suspended' WHERE id = ?`, id)
		exec(`DELETE FROM tenant_state_intervals WHERE tenant_id = ? AND state = 'suspended'`, id)
	}
	tenant("metered-prod", "prod", first, time.Time{})
	tenant("metered-staging", "staging", first.AddDate(0, 0, 1).Add(6*time.Hour), first.AddDate(0, 0, 4).Add(18*time.Hour))
	requests := []int64{1200, 3400, 800, 5000, 2600, 4100, 900}
	counts := map[string]int64{}
	for i, n := range requests {
		counts[first.AddDate(0, 0, i).Format(time.DateOnly)] = n
	}
	if err := store.AddRequestCounts(ctx, db, map[string]map[string]int64{owner.org: counts}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Time{first, first.AddDate(0, 0, 1)} {
		for after := ""; ; {
			page, err := store.CloseUsagePage(ctx, db, store.CloseUsageInput{Day: d, After: after, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if !page.More {
				break
			}
			after = page.Last
		}
	}

	usagePath := fmt.Sprintf("/orgs/%s/usage?from=%s&to=%s", owner.org, first.Format(time.DateOnly), today.Format(time.DateOnly))
	c := openConsole(t, "http://"+p.api)
	c.navigate("/sign-in?next=" + strings.ReplaceAll(strings.ReplaceAll(usagePath, "?", "%3F"), "&", "%26"))
	c.signIn(devOwnerEmail, devOwnerPassword)
	c.waitPath(`/usage$`)
	c.waitFor("seven days in each chart", `document.querySelectorAll("[data-testid=hours-chart] g.bar").length === 7 &&
		document.querySelectorAll("[data-testid=requests-chart] g.bar").length === 7`)
	c.waitFor("the Usage link in the navigation", `[...document.querySelectorAll("header nav a")].some(a => a.innerText === "Usage" && a.getAttribute("aria-current") === "page")`)

	// The charts are named images, and hold the numbers of their tables.
	for _, chart := range []string{"quota-chart", "hours-chart", "requests-chart"} {
		name := eval[string](c, fmt.Sprintf(`(() => { const s = document.querySelector("[data-testid=%s]"); return s.getAttribute("role") + ":" + s.querySelector("title").textContent })()`, chart))
		if !strings.HasPrefix(name, "img:") || len(name) < 20 {
			t.Errorf("%s is not a named image: %q", chart, name)
		}
	}
	type dayRow struct {
		Day       string `json:"day"`
		Partial   string `json:"partial"`
		Total     string `json:"total"`
		Requests  string `json:"requests"`
		TableHrs  string `json:"tableHours"`
		TableReqs string `json:"tableRequests"`
		Bars      int    `json:"bars"`
	}
	rows := eval[[]dayRow](c, `[...document.querySelectorAll("[data-testid=hours-chart] g.bar")].map(g => {
		const day = g.dataset.day;
		const req = document.querySelector("[data-testid=requests-chart] g.bar[data-day='" + day + "']");
		return {day, partial: g.dataset.partial, total: g.dataset.total, requests: req.dataset.requests,
			bars: g.querySelectorAll("rect:not([fill^=url])").length,
			tableHours: document.querySelector("[data-testid=hours-table] tr[data-day='" + day + "'] [data-total]").textContent,
			tableRequests: document.querySelector("[data-testid=requests-table] tr[data-day='" + day + "'] [data-requests]").textContent};
	})`)
	staging := map[int]bool{1: true, 2: true, 3: true, 4: true}
	for i, r := range rows {
		want := first.AddDate(0, 0, i).Format(time.DateOnly)
		tableHrs, _ := strconv.ParseFloat(strings.ReplaceAll(r.TableHrs, ",", ""), 64)
		total, _ := strconv.ParseFloat(r.Total, 64)
		tableReqs, _ := strconv.ParseInt(strings.ReplaceAll(r.TableReqs, ",", ""), 10, 64)
		if r.Day != want || r.Requests != strconv.FormatInt(requests[i], 10) || tableReqs != requests[i] || tableHrs != total {
			t.Errorf("day %d: %+v (want %s, %d requests)", i, r, want, requests[i])
		}
		if wantPartial := i >= 2; (r.Partial == "true") != wantPartial {
			t.Errorf("day %s partial %s, want %v", r.Day, r.Partial, wantPartial)
		}
		if wantBars := map[bool]int{true: 2, false: 1}[staging[i]]; i < 6 && r.Bars != wantBars {
			t.Errorf("day %s has %d stacked bars, want %d", r.Day, r.Bars, wantBars)
		}
		if i < 6 && !staging[i] && total != 24 {
			t.Errorf("day %s: %v tenant-hours, want 24", r.Day, total)
		}
	}
	if len(rows) == 7 && rows[1].Total != "42" { // 24 prod + 18 staging from 06:00
		t.Errorf("the second day's total %s, want 42", rows[1].Total)
	}
	if !eval[bool](c, `document.querySelector("[data-testid=hours-table] tr[data-day='`+today.Format(time.DateOnly)+`'] th").textContent.includes("(partial)")`) {
		t.Error("today's row is not marked partial")
	}
	_, usage := owner.do("GET", "/organizations/"+owner.org+"/usage", nil)
	data := usage["data"].(map[string]any)
	rpm := int64(data["requests_per_minute"].(float64))
	tenantLimit := int64(data["tenants"].(map[string]any)["limit"].(float64))
	limitText := eval[string](c, `document.querySelector("[data-testid=requests-chart] .limit-label")?.textContent ?? ""`)
	if eval[bool](c, `!document.querySelector("[data-testid=requests-limit]")`) || strings.ReplaceAll(limitText, ",", "") == "" ||
		!strings.Contains(strings.ReplaceAll(limitText, ",", ""), strconv.FormatInt(rpm*1440, 10)) {
		t.Errorf("the requests chart's daily limit reads %q, want %d", limitText, rpm*1440)
	}
	quota := eval[string](c, `[...document.querySelectorAll("[data-testid=quota-table] tbody tr")].map(r => [...r.cells].map(c => c.textContent.trim()).join(" ")).join("; ")`)
	if !strings.Contains(quota, fmt.Sprintf("Tenants 2 %d", tenantLimit)) || !strings.Contains(quota, "Members") || !strings.Contains(quota, "Service accounts") {
		t.Errorf("quota table: %s", quota)
	}

	// The tables, hidden from sight, are shown on request.
	if eval[bool](c, `document.querySelector("[data-testid=hours-table]").parentElement.offsetHeight > 2`) {
		t.Error("the hours table is shown before it is asked for")
	}
	c.accessible("usage")
	c.press("[data-testid=usage-range]", "Show the numbers as tables")
	c.waitFor("the tables shown", `document.querySelector("[data-testid=hours-table]").parentElement.offsetHeight > 50`)
	c.accessible("usage-tables")

	// A range picked in the form is the page's address.
	c.navigate(fmt.Sprintf("/orgs/%s/usage?from=%s", owner.org, today.AddDate(0, 0, -1).Format(time.DateOnly)))
	c.waitFor("two days", `document.querySelectorAll("[data-testid=hours-chart] g.bar").length === 2`)
	c.navigate(fmt.Sprintf("/orgs/%s/usage?from=2026-13-01", owner.org))
	c.waitFor("the refusal naming from", `document.querySelector("[data-testid=error]")?.innerText.includes("from")`)
	c.navigate(usagePath)
	c.waitFor("seven days again", `document.querySelectorAll("[data-testid=hours-chart] g.bar").length === 7`)
	c.screenshot("usage-final")
}
