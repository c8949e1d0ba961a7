package store_test

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// usageDay is the day the usage tests meter: long over, so the close may
// close it.
var usageDay = time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)

func at(hours, minutes int) time.Time {
	return usageDay.Add(time.Duration(hours)*time.Hour + time.Duration(minutes)*time.Minute)
}

// meteredTenant inserts a tenant of the organisation in the environment
// and replaces the history its trigger wrote with the intervals given:
// state, since, until (zero: still in it).
func meteredTenant(t *testing.T, org store.Organization, env string, intervals ...any) string {
	t.Helper()
	ctx := context.Background()
	id := domain.NewID(domain.PrefixTenant)
	if _, err := testDB.ExecContext(ctx, `INSERT INTO tenants (id, org_id, name, environment, state, hostname, workflow_id, created_by)
		VALUES (?, ?, ?, ?, 'provisioning', ?, ?, ?)`, id, org.ID, "t"+strings.ToLower(id[len(id)-6:]), env, id+".test", "wf/"+id, requester()); err != nil {
		t.Fatal(err)
	}
	if _, err := testDB.ExecContext(ctx, `DELETE FROM tenant_state_intervals WHERE tenant_id = ?`, id); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(intervals); i += 3 {
		until := intervals[i+2].(time.Time)
		q := `INSERT INTO tenant_state_intervals (tenant_id, org_id, environment, state, since, until) VALUES (?, ?, ?, ?, ?, ?)`
		args := []any{id, org.ID, env, intervals[i], intervals[i+1], until}
		if until.IsZero() {
			q = `INSERT INTO tenant_state_intervals (tenant_id, org_id, environment, state, since) VALUES (?, ?, ?, ?, ?)`
			args = args[:5]
		}
		if _, err := testDB.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func operationAt(t *testing.T, org store.Organization, tenantID string, started time.Time) {
	t.Helper()
	id := domain.NewID(domain.PrefixOperation)
	if _, err := testDB.ExecContext(context.Background(), `INSERT INTO operations (id, org_id, tenant_id, kind, status, requested_by, request_id, workflow_id, started_at)
		VALUES (?, ?, ?, 'suspend', 'succeeded', ?, 'req', 'wf', ?)`, id, org.ID, tenantID, requester(), started); err != nil {
		t.Fatal(err)
	}
}

func usageOf(t *testing.T, orgID string, from, to time.Time) []store.UsageDay {
	t.Helper()
	days, err := store.UsageDays(context.Background(), testDB, orgID, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return days
}

// TestADaysTenantSecondsPeakMembersRequestsAndOperationsAreExact meters a
// day on which a prod tenant, active since the evening before, is
// suspended from 06:00 to 08:00 and decommissioned at 20:00, and a
// staging tenant provisions from 10:00 and is active from 10:05 on; the
// organisation has 3 members before the day, 5 at 09:00 and 2 at 10:00.
// Each figure is exact, midnight splits the intervals, and a day closed
// is answered as written, however the history changes afterwards.
func TestADaysTenantSecondsPeakMembersRequestsAndOperationsAreExact(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	if _, err := testDB.ExecContext(ctx, `UPDATE organizations SET created_at = ? WHERE id = ?`, usageDay.AddDate(0, 0, -3), org.ID); err != nil {
		t.Fatal(err)
	}
	zero := time.Time{}
	prod := meteredTenant(t, org, "prod",
		"active", at(-2, 0), at(6, 0),
		"suspended", at(6, 0), at(8, 0),
		"active", at(8, 0), at(20, 0),
		"decommissioning", at(20, 0), at(20, 1),
		"decommissioned", at(20, 1), zero)
	staging := meteredTenant(t, org, "staging",
		"provisioning", at(10, 0), at(10, 5),
		"active", at(10, 5), zero)
	for _, c := range []struct {
		at time.Time
		n  int
	}{{at(-12, 0), 3}, {at(9, 0), 5}, {at(10, 0), 2}} {
		if _, err := testDB.ExecContext(ctx, `INSERT INTO member_counts (org_id, at, members) VALUES (?, ?, ?)`, org.ID, c.at, c.n); err != nil {
			t.Fatal(err)
		}
	}
	operationAt(t, org, prod, at(-1, 0).Add(59*time.Minute+59*time.Second)) // the day before
	operationAt(t, org, prod, at(6, 0))
	operationAt(t, org, staging, at(10, 0))
	operationAt(t, org, staging, at(24, 0)) // the day after's midnight
	for range 2 {
		if err := store.AddRequestCounts(ctx, testDB, map[string]map[string]int64{org.ID: {"2026-11-10": 700, "2026-11-11": 5}}); err != nil {
			t.Fatal(err)
		}
	}

	days := usageOf(t, org.ID, usageDay.AddDate(0, 0, -2), usageDay.AddDate(0, 0, 1))
	want := []struct {
		secs     map[string]int64
		peak     int
		requests int64
		ops      int
	}{
		{map[string]int64{}, 0, 0, 0},
		{map[string]int64{"prod": 2 * 3600}, 3, 0, 1},
		{map[string]int64{"prod": 18 * 3600, "staging": 13*3600 + 55*60}, 5, 1400, 2},
		{map[string]int64{"staging": 24 * 3600}, 2, 10, 1},
	}
	if len(days) != len(want) {
		t.Fatalf("%d days, want %d", len(days), len(want))
	}
	for i, w := range want {
		d := days[i]
		if !d.Day.Equal(usageDay.AddDate(0, 0, i-2)) || !maps.Equal(d.TenantSeconds, w.secs) || d.PeakMembers != w.peak ||
			d.APIRequests != w.requests || d.Operations != w.ops || d.ClosedAt != nil {
			t.Errorf("day %d: %+v, want %+v", i, d, w)
		}
	}

	// Closed (twice: the second changes nothing), the day is answered as
	// written, even after its history changed.
	closeDay := func() {
		after := ""
		for {
			page, err := store.CloseUsagePage(ctx, testDB, store.CloseUsageInput{Day: usageDay, After: after, Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			if !page.More {
				return
			}
			after = page.Last
		}
	}
	closeDay()
	closed := usageOf(t, org.ID, usageDay, usageDay)[0]
	if closed.ClosedAt == nil || !maps.Equal(closed.TenantSeconds, want[2].secs) || closed.PeakMembers != 5 || closed.APIRequests != 1400 || closed.Operations != 2 {
		t.Fatalf("closed: %+v", closed)
	}
	operationAt(t, org, staging, at(12, 0))
	if err := store.AddRequestCounts(ctx, testDB, map[string]map[string]int64{org.ID: {"2026-11-10": 1}}); err != nil {
		t.Fatal(err)
	}
	closeDay()
	again := usageOf(t, org.ID, usageDay, usageDay)[0]
	if !again.ClosedAt.Equal(*closed.ClosedAt) || again.Operations != 2 || again.APIRequests != 1400 {
		t.Fatalf("a closed day was rewritten: %+v, was %+v", again, closed)
	}
	// The day after is still computed.
	if next := usageOf(t, org.ID, usageDay.AddDate(0, 0, 1), usageDay.AddDate(0, 0, 1))[0]; next.ClosedAt != nil || next.APIRequests != 10 {
		t.Fatalf("the day after: %+v", next)
	}
}

// TestTheTriggersRecordEveryStateChangeAndMemberCount changes a tenant's
// state through plain SQL, as any path could: the history follows, one
// open interval at a time; members inserted and deleted are counted.
func TestTheTriggersRecordEveryStateChangeAndMemberCount(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	id := domain.NewID(domain.PrefixTenant)
	if _, err := testDB.ExecContext(ctx, `INSERT INTO tenants (id, org_id, name, environment, state, hostname, workflow_id, created_by)
		VALUES (?, ?, 'trig', 'dev', 'provisioning', ?, ?, ?)`, id, org.ID, id+".test", "wf/"+id, requester()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"active", "active", "suspended", "active"} {
		if _, err := testDB.ExecContext(ctx, `UPDATE tenants SET state = ?, updated_at = now() WHERE id = ?`, s, id); err != nil {
			t.Fatal(err)
		}
	}
	var states []string
	var open int
	if err := testDB.NewRaw(`SELECT state FROM tenant_state_intervals WHERE tenant_id = ? ORDER BY since, until`, id).Scan(ctx, &states); err != nil {
		t.Fatal(err)
	}
	if err := testDB.NewRaw(`SELECT count(*) FROM tenant_state_intervals WHERE tenant_id = ? AND until = 'infinity' AND state = 'active'`, id).Scan(ctx, &open); err != nil {
		t.Fatal(err)
	}
	if len(states) != 4 || states[0] != "provisioning" || states[3] != "active" || open != 1 {
		t.Fatalf("history %v, open active %d", states, open)
	}

	var users []string
	for i := range 3 {
		u := store.User{ID: domain.NewID(domain.PrefixUser), Email: strings.ToLower(domain.NewID("u")) + "@example.test", Name: "U", PasswordHash: "-"}
		if _, err := testDB.NewInsert().Model(&u).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		users = append(users, u.ID)
		if _, err := testDB.ExecContext(ctx, `INSERT INTO members (id, org_id, user_id, role) VALUES (?, ?, ?, 'viewer')`,
			domain.NewID(domain.PrefixMember), org.ID, u.ID); err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
	}
	if _, err := testDB.ExecContext(ctx, `DELETE FROM members WHERE org_id = ? AND user_id = ?`, org.ID, users[0]); err != nil {
		t.Fatal(err)
	}
	var counts []int
	if err := testDB.NewRaw(`SELECT members FROM member_counts WHERE org_id = ? ORDER BY at`, org.ID).Scan(ctx, &counts); err != nil {
		t.Fatal(err)
	}
	if len(counts) != 4 || counts[0] != 1 || counts[2] != 3 || counts[3] != 2 {
		t.Fatalf("member counts %v", counts)
	}
	today := usageOf(t, org.ID, time.Now(), time.Now())[0]
	if today.PeakMembers != 3 || today.TenantSeconds["dev"] < 0 {
		t.Fatalf("today %+v", today)
	}
}
