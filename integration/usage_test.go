package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

// usageDayData is one day of GET /usage.
type usageDayData struct {
	Day                string             `json:"day"`
	Partial            bool               `json:"partial"`
	TenantHours        map[string]float64 `json:"tenant_hours"`
	TenantSeconds      map[string]int64   `json:"tenant_seconds"`
	TenantHoursTotal   float64            `json:"tenant_hours_total"`
	TenantSecondsTotal int64              `json:"tenant_seconds_total"`
	PeakMembers        int                `json:"peak_members"`
	APIRequests        int64              `json:"api_requests"`
	Operations         int                `json:"operations"`
}

type usageDaysData struct {
	From string         `json:"from"`
	To   string         `json:"to"`
	Days []usageDayData `json:"days"`
}

func utcDay(offset int) string {
	return time.Now().UTC().AddDate(0, 0, offset).Format(time.DateOnly)
}

// clearOfMidnight waits out the last minutes of a UTC day, so that a test
// that meters "today" runs in one day from its first request to its last.
// The usage days are UTC days; a run that straddled midnight would split
// its activity between two of them.
func clearOfMidnight(t *testing.T, need time.Duration) {
	t.Helper()
	now := time.Now().UTC()
	if left := now.Truncate(24 * time.Hour).Add(24 * time.Hour).Sub(now); left < need {
		t.Logf("waiting %v for the UTC day to turn", left.Round(time.Second))
		time.Sleep(left + time.Second)
	}
}

func requestsToday(t *testing.T, h *harness.Harness, orgID string) int64 {
	t.Helper()
	var n []int64
	if err := h.DB.NewRaw(`SELECT requests FROM usage_requests WHERE org_id = ? AND day = ?::date`, orgID, utcDay(0)).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	if len(n) == 0 {
		return 0
	}
	return n[0]
}

// TestUsageDaysMeterARealTenantSagaAndRequestsAndRefuseBadRanges runs a
// tenant saga (provisioned, suspended, resumed): its transitions land in
// the state history, and the usage days answer today as partial with its
// operations, members and active time. Requests are counted exactly once
// the process adds them; bad ranges are 400 naming the parameter; a
// non-member gets 404.
func TestUsageDaysMeterARealTenantSagaAndRequestsAndRefuseBadRanges(t *testing.T) {
	clearOfMidnight(t, 3*time.Minute)
	h := harness.Get(t)
	ctx := context.Background()
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "team")
	viewer, dev := w.People[domain.RoleViewer], w.People[domain.RoleDeveloper]

	r := l.create(t, w, "metered", "")
	if r.Status != 202 {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	var created lifecycleData
	r.data(t, &created)
	tn := l.waitState(t, w, created.Tenant.ID, domain.StateActive)
	for _, step := range []struct {
		action string
		state  domain.State
	}{{"suspend", domain.StateSuspended}, {"resume", domain.StateActive}} {
		if r := req(t, l.srv, "POST", orgPath(w, "/tenants/"+tn.ID+"/"+step.action), dev.Token, nil); r.Status != 202 {
			t.Fatalf("%s: %d %s", step.action, r.Status, r.Raw)
		}
		l.waitState(t, w, tn.ID, step.state)
	}
	var history []struct {
		State string     `bun:"state"`
		Since time.Time  `bun:"since"`
		Until *time.Time `bun:"until"`
	}
	if err := h.DB.NewRaw(`SELECT state, since, nullif(until, 'infinity') AS until FROM tenant_state_intervals WHERE tenant_id = ? ORDER BY since, until`, tn.ID).Scan(ctx, &history); err != nil {
		t.Fatal(err)
	}
	var states []string
	for i, iv := range history {
		states = append(states, iv.State)
		if i > 0 && (history[i-1].Until == nil || !iv.Since.Equal(*history[i-1].Until)) {
			t.Errorf("interval %d starts at %v, the one before ends at %v", i, iv.Since, history[i-1].Until)
		}
	}
	if want := []string{"provisioning", "active", "suspended", "active"}; !slices.Equal(states, want) {
		t.Fatalf("state history %v, want %v", states, want)
	}
	// Up to an hour more of activity, as if it had been active since then:
	// no further back than the start of today, which the test meters (in
	// the day's first hour, the hour before would be yesterday's).
	midnight := history[0].Since.UTC().Truncate(24 * time.Hour)
	shift := min(time.Hour, history[0].Since.Sub(midnight)-time.Second).Truncate(time.Second)
	if _, err := h.DB.ExecContext(ctx, `UPDATE tenant_state_intervals SET since = since - ? * interval '1 second', until = until - ? * interval '1 second'
		WHERE tenant_id = ? AND until <> 'infinity'`, shift.Seconds(), shift.Seconds(), tn.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.DB.ExecContext(ctx, `UPDATE tenant_state_intervals SET since = since - ? * interval '1 second'
		WHERE tenant_id = ? AND state = 'active' AND until = 'infinity'`, shift.Seconds(), tn.ID); err != nil {
		t.Fatal(err)
	}

	get := func(token, query string) response {
		t.Helper()
		return req(t, l.srv, "GET", orgPath(w, "/usage"+query), token, nil)
	}
	r = get(viewer.Token, "")
	if r.Status != 200 {
		t.Fatalf("usage: %d %s", r.Status, r.Raw)
	}
	var u usageDaysData
	r.data(t, &u)
	if len(u.Days) != 30 || u.From != utcDay(-29) || u.To != utcDay(0) || u.Days[0].Day != u.From {
		t.Fatalf("the default range: %s..%s, %d days", u.From, u.To, len(u.Days))
	}
	today := u.Days[29]
	if today.Day != utcDay(0) {
		t.Fatalf("the last day %s", today.Day)
	}
	if !today.Partial || today.Operations != 3 || today.PeakMembers != 4 || today.TenantSeconds["prod"] < int64(shift.Seconds()) ||
		today.TenantHours["prod"] != float64((today.TenantSeconds["prod"]*100+1800)/3600)/100 ||
		today.TenantSecondsTotal != today.TenantSeconds["prod"] {
		t.Fatalf("today: %+v", today)
	}
	if want := float64((today.TenantSecondsTotal*100+1800)/3600) / 100; today.TenantHoursTotal != want {
		t.Fatalf("tenant_hours_total %v, want %v from %d s", today.TenantHoursTotal, want, today.TenantSecondsTotal)
	}
	for _, d := range u.Days[:29] {
		if d.TenantSecondsTotal != 0 || d.Operations != 0 || !d.Partial {
			t.Fatalf("a day before the organisation: %+v", d)
		}
	}

	// Requests: exactly those admitted, once the process adds its counts.
	if err := l.srv.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	before := requestsToday(t, h, w.Org.ID)
	for range 7 {
		if r := get(viewer.Token, "?from="+utcDay(-1)); r.Status != 200 {
			t.Fatalf("usage: %d %s", r.Status, r.Raw)
		}
	}
	if after := requestsToday(t, h, w.Org.ID); after != before {
		t.Fatalf("requests added before the flush: %d, then %d", before, after)
	}
	if err := l.srv.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	if after := requestsToday(t, h, w.Org.ID); after != before+7 {
		t.Fatalf("requests today %d, want %d", after, before+7)
	}
	r = get(viewer.Token, "?from="+utcDay(-1)+"&to="+utcDay(0))
	u = usageDaysData{}
	r.data(t, &u)
	if len(u.Days) != 2 || u.Days[1].APIRequests != before+7 {
		t.Fatalf("two days: %+v", u.Days)
	}

	for _, c := range []struct{ query, field string }{
		{"?from=2026-13-01", "from"},
		{"?to=yesterday", "to"},
		{"?from=" + utcDay(0) + "&to=" + utcDay(-1), "from"},
		{"?from=" + utcDay(-400), "from"},
		{"?to=" + utcDay(1), "to"},
		{"?from=%00", "from"},
	} {
		r := get(viewer.Token, c.query)
		if r.Status != 400 || r.code() != "BAD_REQUEST" || r.Env.Error == nil || len(r.Env.Error.FieldErrors) != 1 || r.Env.Error.FieldErrors[0].Field != c.field {
			t.Fatalf("%s: %d %s", c.query, r.Status, r.Raw)
		}
	}
	if r := get(viewer.Token, "?from="+utcDay(-365)); r.Status != 200 {
		t.Fatalf("366 days: %d %s", r.Status, r.Raw)
	}
	// A service account limited to another environment reads the days
	// without the prod tenant's hours.
	ci := addScopedAccount(t, h, w, w.People[domain.RoleOwner], domain.RoleViewer, []string{string(domain.ScopeOrganizationRead)}, []string{"ci"})
	r = get(ci.Token, "")
	if r.Status != 200 {
		t.Fatalf("usage by a ci service account: %d %s", r.Status, r.Raw)
	}
	var forCI usageDaysData
	r.data(t, &forCI)
	if d := forCI.Days[len(forCI.Days)-1]; d.TenantSecondsTotal != 0 || len(d.TenantHours) != 0 || len(d.TenantSeconds) != 0 || d.Operations != 3 {
		t.Fatalf("today for a ci service account: %+v", d)
	}

	stranger := newWorld(t, h, "team").People[domain.RoleOwner]
	if r := get(stranger.Token, ""); r.Status != 404 || r.code() != "NOT_FOUND" {
		t.Fatalf("another organisation's usage: %d %s", r.Status, r.Raw)
	}
}

// reports records the days reported to the billing engine; its first
// report fails, as a billing engine that is down would.
type reports struct {
	mu     sync.Mutex
	days   []string
	failed bool
}

func (r *reports) ReportClosedDay(_ context.Context, day time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.failed {
		r.failed = true
		return fmt.Errorf("the billing engine is down")
	}
	r.days = append(r.days, day.Format(time.DateOnly))
	return nil
}

type closedRow struct {
	OrgID    string    `bun:"org_id"`
	Day      string    `bun:"day"`
	ClosedAt time.Time `bun:"closed_at"`
	Ops      int       `bun:"operations"`
}

func closedRows(t *testing.T, h *harness.Harness) []closedRow {
	t.Helper()
	var rows []closedRow
	if err := h.DB.NewRaw(`SELECT org_id, to_char(day, 'YYYY-MM-DD') AS day, closed_at, operations FROM usage_days ORDER BY day, org_id`).Scan(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestUsageCloseClosesEveryDayMissedOnceAndResumesAnInterruptedClose: the
// last close was four days ago. An attempt closed one page of the first
// day and was lost (as a worker killed mid-run); the Schedule's run
// (created, then updated as a second worker's start does) closes the
// three days for every organisation, leaving the page already written as
// it was, and reports each day once, after a failed report is retried. A
// second run finds nothing to close and changes nothing; the days answer
// as closed, today as partial.
func TestUsageCloseClosesEveryDayMissedOnceAndResumesAnInterruptedClose(t *testing.T) {
	clearOfMidnight(t, 2*time.Minute)
	h := harness.Get(t)
	ctx := context.Background()
	srv := sharedAPI(t)
	w := newWorld(t, h, "free")
	if _, err := h.DB.ExecContext(ctx, `UPDATE organizations SET created_at = now() - interval '5 days' WHERE id = ?`, w.Org.ID); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM usage_closes WHERE day >= ?::date`, `INSERT INTO usage_closes (day, orgs) VALUES (?::date, 0)`} {
		if _, err := h.DB.ExecContext(ctx, q, utcDay(-4)); err != nil {
			t.Fatal(err)
		}
	}
	first, err := time.Parse(time.DateOnly, utcDay(-3))
	if err != nil {
		t.Fatal(err)
	}
	interrupted, err := store.CloseUsagePage(ctx, h.DB, store.CloseUsageInput{Day: first, Limit: 1})
	if err != nil || interrupted.Orgs != 1 {
		t.Fatalf("the interrupted page: %+v %v", interrupted, err)
	}
	written := closedRows(t, h)

	rep := &reports{}
	tq := harness.TaskQueue(t)
	h.StartWorker(t, tq, func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(workflows.UsageCloseWorkflow, workflow.RegisterOptions{Name: workflows.UsageCloseWorkflowType})
		r.RegisterActivity(&activities.Activities{DB: h.DB, UsageReporter: rep})
	})
	id := "usage-close-" + uniq()
	started := ensureAndTriggerSchedule(t, h, id, tq, workflows.UsageCloseWorkflowType, workflows.EnsureUsageSchedule)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var done workflows.UsageCloseResult
	if err := h.Temporal.GetWorkflow(wctx, started.WorkflowID, started.FirstExecutionRunID).Get(wctx, &done); err != nil {
		t.Fatal(err)
	}
	recordHistoryAs(t, h, started.WorkflowID, started.FirstExecutionRunID, workflows.UsageHistoryPrefix()+"-close")
	if len(done.Days) != 3 || done.Days[0].Format(time.DateOnly) != utcDay(-3) || done.Days[2].Format(time.DateOnly) != utcDay(-1) {
		t.Fatalf("closed %+v", done)
	}
	if want := []string{utcDay(-3), utcDay(-2), utcDay(-1)}; !slices.Equal(rep.days, want) {
		t.Fatalf("reported %v, want %v", rep.days, want)
	}
	rows := closedRows(t, h)
	for _, old := range written {
		i := slices.IndexFunc(rows, func(r closedRow) bool { return r.OrgID == old.OrgID && r.Day == old.Day })
		if i < 0 || !rows[i].ClosedAt.Equal(old.ClosedAt) {
			t.Fatalf("the interrupted page's row %+v was rewritten or lost", old)
		}
	}
	var orgs int
	if err := h.DB.NewRaw(`SELECT count(*) FROM organizations WHERE created_at < ?::date`, utcDay(-2)).Scan(ctx, &orgs); err != nil {
		t.Fatal(err)
	}
	perDay := map[string]int{}
	for _, r := range rows {
		perDay[r.Day]++
	}
	if perDay[utcDay(-3)] != orgs || perDay[utcDay(0)] != 0 {
		t.Fatalf("closed per day %v, want %d organisations on %s", perDay, orgs, utcDay(-3))
	}

	// Again: nothing to close, nothing changes.
	run, err := h.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "usage-close-again-" + uniq(), TaskQueue: tq},
		workflows.UsageCloseWorkflowType, workflows.UsageParams{Revision: workflows.UsageRevisionCurrent, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	var again workflows.UsageCloseResult
	if err := run.Get(wctx, &again); err != nil {
		t.Fatal(err)
	}
	if len(again.Days) != 0 || !slices.EqualFunc(closedRows(t, h), rows, func(a, b closedRow) bool {
		return a.OrgID == b.OrgID && a.Day == b.Day && a.ClosedAt.Equal(b.ClosedAt) && a.Ops == b.Ops
	}) {
		t.Fatalf("a second run closed %+v", again)
	}

	r := req(t, srv, "GET", orgPath(w, "/usage?from="+utcDay(-4)), w.People[domain.RoleViewer].Token, nil)
	var u usageDaysData
	r.data(t, &u)
	var partial []string
	for _, d := range u.Days {
		if d.Partial {
			partial = append(partial, d.Day)
		}
	}
	if len(u.Days) != 5 || strings.Join(partial, ",") != utcDay(-4)+","+utcDay(0) {
		t.Fatalf("partial days %v of %+v", partial, u.Days)
	}
}

// TestUsageCloseResumesFromItsHeartbeatAndARerunRewritesNothing: three
// organisations to close on a day; an attempt closed the first and
// heartbeated it before its worker died. The retried attempt, given that
// heartbeat, closes the other two (a page each) and counts the three; the
// activity run again from the start finds every row written and leaves
// each as it was.
func TestUsageCloseResumesFromItsHeartbeatAndARerunRewritesNothing(t *testing.T) {
	clearOfMidnight(t, 2*time.Minute)
	h := harness.Get(t)
	ctx := context.Background()
	var ids []string
	for range 3 {
		w := newWorld(t, h, "free")
		if _, err := h.DB.ExecContext(ctx, `UPDATE organizations SET created_at = now() - interval '12 days' WHERE id = ?`, w.Org.ID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.Org.ID)
	}
	slices.Sort(ids)
	day, err := time.Parse(time.DateOnly, utcDay(-10))
	if err != nil {
		t.Fatal(err)
	}
	rowsOf := func() []closedRow {
		var rows []closedRow
		if err := h.DB.NewRaw(`SELECT org_id, to_char(day, 'YYYY-MM-DD') AS day, closed_at, operations FROM usage_days
			WHERE day = ?::date AND org_id IN (?) ORDER BY org_id`, utcDay(-10), bun.In(ids)).Scan(ctx, &rows); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	// The lost attempt's first page, up to the first of the three.
	var before []string
	if err := h.DB.NewRaw(`SELECT id FROM organizations WHERE id <= ? AND created_at < ?::date + 1 ORDER BY id`, ids[0], utcDay(-10)).Scan(ctx, &before); err != nil {
		t.Fatal(err)
	}
	first, err := store.CloseUsagePage(ctx, h.DB, store.CloseUsageInput{Day: day, Limit: len(before)})
	if err != nil || first.Last != ids[0] {
		t.Fatalf("the lost attempt's page: %+v %v", first, err)
	}
	written := rowsOf()

	var suite testsuite.WorkflowTestSuite
	a := &activities.Activities{DB: h.DB}
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	env.SetHeartbeatDetails(activities.UsageCloseProgress{After: first.Last, Orgs: first.Orgs})
	v, err := env.ExecuteActivity(a.CloseUsageDay, activities.UsageDayInput{Day: day, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	var resumed activities.UsageCloseProgress
	if err := v.Get(&resumed); err != nil {
		t.Fatal(err)
	}
	rows := rowsOf()
	if len(rows) != 3 || resumed.After < ids[2] || resumed.Orgs < 3 || !rows[0].ClosedAt.Equal(written[0].ClosedAt) {
		t.Fatalf("resumed %+v: rows %+v (the lost attempt wrote %+v)", resumed, rows, written)
	}

	env = suite.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	if _, err := env.ExecuteActivity(a.CloseUsageDay, activities.UsageDayInput{Day: day}); err != nil {
		t.Fatal(err)
	}
	if again := rowsOf(); !slices.EqualFunc(again, rows, func(a, b closedRow) bool { return a.OrgID == b.OrgID && a.ClosedAt.Equal(b.ClosedAt) }) {
		t.Fatalf("a rerun rewrote %+v, was %+v", again, rows)
	}
}

// TestUsageCloseSurvivesItsWorkerStoppedMidClose: a close run's worker is
// stopped while its activity waits on the database, as a worker killed in
// the middle of a close; a worker started afterwards takes the run up, the
// day is closed for every organisation once and reported once, and the
// stopped worker reported nothing.
func TestUsageCloseSurvivesItsWorkerStoppedMidClose(t *testing.T) {
	clearOfMidnight(t, 2*time.Minute)
	h := harness.Get(t)
	ctx := context.Background()
	var ids []string
	for range 2 {
		w := newWorld(t, h, "free")
		if _, err := h.DB.ExecContext(ctx, `UPDATE organizations SET created_at = now() - interval '3 days' WHERE id = ?`, w.Org.ID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.Org.ID)
	}
	for _, q := range []string{`DELETE FROM usage_closes WHERE day >= ?::date`, `INSERT INTO usage_closes (day, orgs) VALUES (?::date, 0)`} {
		if _, err := h.DB.ExecContext(ctx, q, utcDay(-2)); err != nil {
			t.Fatal(err)
		}
	}
	// Hold every write to usage_days until the first worker is gone.
	hold, err := h.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback()
	if _, err := hold.ExecContext(ctx, `LOCK TABLE usage_days IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	tq := harness.TaskQueue(t)
	register := func(rep activities.UsageReporter) func(worker.Registry) {
		return func(r worker.Registry) {
			r.RegisterWorkflowWithOptions(workflows.UsageCloseWorkflow, workflow.RegisterOptions{Name: workflows.UsageCloseWorkflowType})
			r.RegisterActivity(&activities.Activities{DB: h.DB, UsageReporter: rep})
		}
	}
	first := &reports{failed: true}
	stop := h.StartStoppableWorker(t, tq, worker.Options{WorkerStopTimeout: time.Second}, register(first))
	run, err := h.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "usage-close-stopped-" + uniq(), TaskQueue: tq},
		workflows.UsageCloseWorkflowType, workflows.UsageParams{Revision: workflows.UsageRevisionCurrent, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		var waiting int
		if err := h.DB.NewRaw(`SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			WHERE c.relname = 'usage_days' AND NOT l.granted`).Scan(ctx, &waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the close never reached usage_days")
		}
	}
	stop()
	second := &reports{failed: true}
	h.StartStoppableWorker(t, tq, worker.Options{}, register(second))
	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var done workflows.UsageCloseResult
	if err := run.Get(wctx, &done); err != nil {
		t.Fatal(err)
	}
	if len(done.Days) != 1 || done.Days[0].Format(time.DateOnly) != utcDay(-1) {
		t.Fatalf("closed %+v, want %s", done, utcDay(-1))
	}
	if len(first.days) != 0 || !slices.Equal(second.days, []string{utcDay(-1)}) {
		t.Fatalf("reported %v by the stopped worker and %v by the next, want only %s by the next", first.days, second.days, utcDay(-1))
	}
	var closed struct {
		Orgs   int `bun:"orgs"`
		Rows   int `bun:"rows"`
		Ours   int `bun:"ours"`
		Marked int `bun:"marked"`
	}
	if err := h.DB.NewRaw(`SELECT
			(SELECT count(*) FROM organizations WHERE created_at < ?::date + 1 AND (deleted_at IS NULL OR deleted_at >= ?::date)) AS orgs,
			(SELECT count(*) FROM usage_days WHERE day = ?::date) AS rows,
			(SELECT count(*) FROM usage_days WHERE day = ?::date AND org_id IN (?)) AS ours,
			(SELECT count(*) FROM usage_closes WHERE day = ?::date) AS marked`,
		utcDay(-1), utcDay(-1), utcDay(-1), utcDay(-1), bun.In(ids), utcDay(-1)).Scan(ctx, &closed); err != nil {
		t.Fatal(err)
	}
	if closed.Rows != closed.Orgs || closed.Ours != len(ids) || closed.Marked != 1 {
		t.Fatalf("after the restart: %+v", closed)
	}
}
