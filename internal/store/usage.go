package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// Usage metering (docs/billing.md, What is metered, and how): an
// organisation's figures per UTC day, computed from what the control
// plane records in the transactions that change it (tenant_state_intervals
// and member_counts, written by triggers; operations) and from the
// request counts the API processes add (usage_requests). A closed day's
// figures are written once to usage_days and never rewritten; any other
// day is computed when asked.

// DayLayout is how a usage day is written: a UTC date.
const DayLayout = time.DateOnly

// BilledTenantState is the state a tenant is billed for.
const BilledTenantState = "active"

// UsageDay is one organisation's figures for one UTC day.
type UsageDay struct {
	OrgID string
	// Day is the UTC day's midnight.
	Day time.Time
	// TenantSeconds is how long the organisation's tenants were active
	// that day, per environment, in whole seconds (each environment's
	// total rounded to the nearest second, halves up).
	TenantSeconds map[string]int64
	// PeakMembers is the most members the organisation had at any moment
	// of the day.
	PeakMembers int
	// APIRequests is the requests its members and service accounts made
	// (as their organisation's rate limit admitted them).
	APIRequests int64
	// Operations is the tenant operations started that day.
	Operations int
	// ClosedAt is when the daily close wrote the day; nil for a day
	// computed on demand (today, or a day not closed yet).
	ClosedAt *time.Time
}

// TenantSecondsTotal is the day's tenant seconds over every environment.
func (u UsageDay) TenantSecondsTotal() int64 {
	var n int64
	for _, s := range u.TenantSeconds {
		n += s
	}
	return n
}

// UTCDay is the UTC day of t, as its midnight.
func UTCDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

type usageKey struct {
	org string
	day string
}

// UsageDays answers the organisation's days from..to (UTC midnights, from
// ≤ to), in order: the closed ones as they were written, the others
// computed now (today's up to now).
func UsageDays(ctx context.Context, db bun.IDB, orgID string, from, to time.Time) ([]UsageDay, error) {
	from, to = UTCDay(from), UTCDay(to)
	if to.Before(from) {
		return nil, fmt.Errorf("usage days: from %s after to %s", from.Format(DayLayout), to.Format(DayLayout))
	}
	var closed []closedDayRow
	if err := db.NewRaw(`SELECT org_id, to_char(day, 'YYYY-MM-DD') AS day, tenant_seconds, peak_members, api_requests, operations, closed_at
		FROM usage_days WHERE org_id = ? AND day BETWEEN ?::date AND ?::date`,
		orgID, from.Format(DayLayout), to.Format(DayLayout)).Scan(ctx, &closed); err != nil {
		return nil, fmt.Errorf("read closed usage days of %s: %w", orgID, err)
	}
	byDay := map[string]UsageDay{}
	for _, r := range closed {
		u, err := r.day()
		if err != nil {
			return nil, err
		}
		byDay[r.Day] = u
	}
	// The days not closed, computed over the span from the first to the
	// last of them.
	var first, last time.Time
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		if _, ok := byDay[d.Format(DayLayout)]; ok {
			continue
		}
		if first.IsZero() {
			first = d
		}
		last = d
	}
	if !first.IsZero() {
		live, err := computeUsage(ctx, db, []string{orgID}, first, last)
		if err != nil {
			return nil, err
		}
		for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
			k := d.Format(DayLayout)
			if _, ok := byDay[k]; !ok {
				byDay[k] = live[usageKey{orgID, k}]
			}
		}
	}
	out := make([]UsageDay, 0, len(byDay))
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		out = append(out, byDay[d.Format(DayLayout)])
	}
	return out, nil
}

type closedDayRow struct {
	OrgID         string          `bun:"org_id"`
	Day           string          `bun:"day"`
	TenantSeconds json.RawMessage `bun:"tenant_seconds"`
	PeakMembers   int             `bun:"peak_members"`
	APIRequests   int64           `bun:"api_requests"`
	Operations    int             `bun:"operations"`
	ClosedAt      time.Time       `bun:"closed_at"`
}

func (r closedDayRow) day() (UsageDay, error) {
	d, err := time.Parse(DayLayout, r.Day)
	if err != nil {
		return UsageDay{}, fmt.Errorf("usage day %q: %w", r.Day, err)
	}
	u := UsageDay{OrgID: r.OrgID, Day: d, TenantSeconds: map[string]int64{}, PeakMembers: r.PeakMembers,
		APIRequests: r.APIRequests, Operations: r.Operations}
	if err := json.Unmarshal(r.TenantSeconds, &u.TenantSeconds); err != nil {
		return UsageDay{}, fmt.Errorf("usage day %s of %s: tenant seconds: %w", r.Day, r.OrgID, err)
	}
	at := r.ClosedAt
	u.ClosedAt = &at
	return u, nil
}

// computeUsage computes the figures of the organisations for every day
// from..to (UTC midnights) from the history tables, in four indexed
// queries: every (organisation, day) has an entry.
func computeUsage(ctx context.Context, db bun.IDB, orgIDs []string, from, to time.Time) (map[usageKey]UsageDay, error) {
	end := to.Add(24 * time.Hour)
	out := make(map[usageKey]UsageDay, len(orgIDs)*(int(to.Sub(from)/(24*time.Hour))+1))
	for _, org := range orgIDs {
		for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
			out[usageKey{org, d.Format(DayLayout)}] = UsageDay{OrgID: org, Day: d, TenantSeconds: map[string]int64{}}
		}
	}
	orgs := bun.In(orgIDs)
	// Days are 24-hour spans from UTC midnight, whatever the session's
	// time zone; an open interval counts up to now.
	var secs []struct {
		OrgID       string `bun:"org_id"`
		Day         string `bun:"day"`
		Environment string `bun:"environment"`
		Seconds     int64  `bun:"seconds"`
	}
	if err := db.NewRaw(`
		SELECT i.org_id, to_char(d.day AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, i.environment,
			round(sum(greatest(0, extract(epoch FROM
				least(i.until, d.day + interval '24 hours', now()) - greatest(i.since, d.day))))) ::bigint AS seconds
		FROM tenant_state_intervals i
		JOIN generate_series(?::timestamptz, ?::timestamptz, interval '24 hours') AS d(day)
			ON i.since < d.day + interval '24 hours' AND i.until > d.day
		WHERE i.org_id IN (?) AND i.state = ? AND i.until > ? AND i.since < ?
		GROUP BY 1, 2, 3`,
		from, to, orgs, BilledTenantState, from, end).Scan(ctx, &secs); err != nil {
		return nil, fmt.Errorf("compute tenant seconds: %w", err)
	}
	for _, s := range secs {
		if u, ok := out[usageKey{s.OrgID, s.Day}]; ok && s.Seconds > 0 {
			u.TenantSeconds[s.Environment] = s.Seconds
		}
	}
	var peaks []struct {
		OrgID string `bun:"org_id"`
		Day   string `bun:"day"`
		Peak  int    `bun:"peak"`
	}
	if err := db.NewRaw(`
		SELECT o.org_id, to_char(d.day AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, greatest(
			coalesce((SELECT c.members FROM member_counts c WHERE c.org_id = o.org_id AND c.at < d.day ORDER BY c.at DESC LIMIT 1), 0),
			coalesce((SELECT max(c.members) FROM member_counts c
				WHERE c.org_id = o.org_id AND c.at >= d.day AND c.at < d.day + interval '24 hours' AND c.at <= now()), 0)) AS peak
		FROM unnest(?::text[]) AS o(org_id)
		CROSS JOIN generate_series(?::timestamptz, ?::timestamptz, interval '24 hours') AS d(day)`,
		pgdialect.Array(orgIDs), from, to).Scan(ctx, &peaks); err != nil {
		return nil, fmt.Errorf("compute peak members: %w", err)
	}
	for _, p := range peaks {
		if u, ok := out[usageKey{p.OrgID, p.Day}]; ok {
			u.PeakMembers = p.Peak
			out[usageKey{p.OrgID, p.Day}] = u
		}
	}
	var reqs []struct {
		OrgID    string `bun:"org_id"`
		Day      string `bun:"day"`
		Requests int64  `bun:"requests"`
	}
	if err := db.NewRaw(`SELECT org_id, to_char(day, 'YYYY-MM-DD') AS day, requests FROM usage_requests
		WHERE org_id IN (?) AND day BETWEEN ?::date AND ?::date`,
		orgs, from.Format(DayLayout), to.Format(DayLayout)).Scan(ctx, &reqs); err != nil {
		return nil, fmt.Errorf("read request counts: %w", err)
	}
	for _, r := range reqs {
		if u, ok := out[usageKey{r.OrgID, r.Day}]; ok {
			u.APIRequests = r.Requests
			out[usageKey{r.OrgID, r.Day}] = u
		}
	}
	var ops []struct {
		OrgID string `bun:"org_id"`
		Day   string `bun:"day"`
		N     int    `bun:"n"`
	}
	if err := db.NewRaw(`SELECT org_id, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, count(*) AS n FROM operations
		WHERE org_id IN (?) AND started_at >= ? AND started_at < ?
		GROUP BY 1, 2`,
		orgs, from, end).Scan(ctx, &ops); err != nil {
		return nil, fmt.Errorf("count operations: %w", err)
	}
	for _, o := range ops {
		if u, ok := out[usageKey{o.OrgID, o.Day}]; ok {
			u.Operations = o.N
			out[usageKey{o.OrgID, o.Day}] = u
		}
	}
	return out, nil
}

// AddRequestCounts adds API requests counted by an API process, per
// organisation and UTC day, in one statement. Counts of an organisation
// that no longer exists are dropped.
func AddRequestCounts(ctx context.Context, db bun.IDB, counts map[string]map[string]int64) error {
	var orgs, days []string
	var ns []int64
	for _, org := range slices.Sorted(maps.Keys(counts)) {
		for _, day := range slices.Sorted(maps.Keys(counts[org])) {
			if n := counts[org][day]; n > 0 {
				orgs, days, ns = append(orgs, org), append(days, day), append(ns, n)
			}
		}
	}
	if len(orgs) == 0 {
		return nil
	}
	if _, err := db.NewRaw(`
		INSERT INTO usage_requests AS r (org_id, day, requests)
		SELECT u.org_id, u.day, u.n
		FROM unnest(?::text[], ?::date[], ?::bigint[]) AS u(org_id, day, n)
		JOIN organizations o ON o.id = u.org_id
		ON CONFLICT (org_id, day) DO UPDATE SET requests = r.requests + EXCLUDED.requests`,
		pgdialect.Array(orgs), pgdialect.Array(days), pgdialect.Array(ns)).Exec(ctx); err != nil {
		return fmt.Errorf("add request counts: %w", err)
	}
	return nil
}

// UsageCloseDelay is how long after a UTC midnight the day before it may
// be closed: every API process adds its request counts at least once a
// minute, so by then the day's are in.
const UsageCloseDelay = 5 * time.Minute

// UsageDaysToClose answers the days the daily close has to close, oldest
// first, at most limit: every day after the last closed one up to
// yesterday (as of UsageCloseDelay ago); only yesterday when none was
// ever closed.
func UsageDaysToClose(ctx context.Context, db bun.IDB, limit int) ([]time.Time, error) {
	var row struct {
		Last      *string `bun:"last"`
		Yesterday string  `bun:"yesterday"`
	}
	if err := db.NewRaw(`SELECT (SELECT to_char(max(day), 'YYYY-MM-DD') FROM usage_closes) AS last,
		to_char(((now() - ?::interval) AT TIME ZONE 'UTC')::date - 1, 'YYYY-MM-DD') AS yesterday`,
		fmt.Sprintf("%d seconds", int(UsageCloseDelay/time.Second))).Scan(ctx, &row); err != nil {
		return nil, fmt.Errorf("find the usage days to close: %w", err)
	}
	yesterday, err := time.Parse(DayLayout, row.Yesterday)
	if err != nil {
		return nil, err
	}
	first := yesterday
	if row.Last != nil {
		last, err := time.Parse(DayLayout, *row.Last)
		if err != nil {
			return nil, err
		}
		first = last.AddDate(0, 0, 1)
	}
	var days []time.Time
	for d := first; !d.After(yesterday) && len(days) < limit; d = d.AddDate(0, 0, 1) {
		days = append(days, d)
	}
	return days, nil
}

// CloseUsageInput is one page of a day's close.
type CloseUsageInput struct {
	// Day is the UTC day's midnight; it must be over.
	Day time.Time
	// After is the last organisation closed (they go in id order).
	After string
	// Limit is how many organisations this page closes.
	Limit int
}

// CloseUsagePageResult is what one page of a close did.
type CloseUsagePageResult struct {
	// Last is the page's last organisation; Orgs how many it closed (or
	// found closed); More whether there may be more after it.
	Last string
	Orgs int
	More bool
}

// CloseUsagePage closes the day for the next page of organisations (those
// that existed that day, in id order after in.After) in one transaction:
// their figures are computed and written, and a row already written (a
// retried page) is left as it is.
func CloseUsagePage(ctx context.Context, db *bun.DB, in CloseUsageInput) (CloseUsagePageResult, error) {
	var res CloseUsagePageResult
	day := UTCDay(in.Day)
	if !day.Add(24 * time.Hour).Before(time.Now()) {
		return res, fmt.Errorf("close usage of %s: the day is not over", day.Format(DayLayout))
	}
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var orgs []string
		if err := tx.NewRaw(`SELECT id FROM organizations
			WHERE id > ? AND created_at < ? AND (deleted_at IS NULL OR deleted_at >= ?)
			ORDER BY id LIMIT ?`, in.After, day.Add(24*time.Hour), day, in.Limit).Scan(ctx, &orgs); err != nil {
			return fmt.Errorf("list organisations to close %s: %w", day.Format(DayLayout), err)
		}
		if len(orgs) == 0 {
			return nil
		}
		res = CloseUsagePageResult{Last: orgs[len(orgs)-1], Orgs: len(orgs), More: len(orgs) == in.Limit}
		figures, err := computeUsage(ctx, tx, orgs, day, day)
		if err != nil {
			return err
		}
		var ids, seconds []string
		var peaks, ops []int
		var reqs []int64
		for _, org := range orgs {
			u := figures[usageKey{org, day.Format(DayLayout)}]
			b, err := json.Marshal(u.TenantSeconds)
			if err != nil {
				return err
			}
			ids, seconds = append(ids, org), append(seconds, string(b))
			peaks, reqs, ops = append(peaks, u.PeakMembers), append(reqs, u.APIRequests), append(ops, u.Operations)
		}
		if _, err := tx.NewRaw(`
			INSERT INTO usage_days (org_id, day, tenant_seconds, peak_members, api_requests, operations)
			SELECT u.org_id, ?::date, u.secs::jsonb, u.peak, u.reqs, u.ops
			FROM unnest(?::text[], ?::text[], ?::int[], ?::bigint[], ?::int[]) AS u(org_id, secs, peak, reqs, ops)
			ON CONFLICT (org_id, day) DO NOTHING`,
			day.Format(DayLayout), pgdialect.Array(ids), pgdialect.Array(seconds), pgdialect.Array(peaks), pgdialect.Array(reqs), pgdialect.Array(ops)).Exec(ctx); err != nil {
			return fmt.Errorf("write usage of %s: %w", day.Format(DayLayout), err)
		}
		return nil
	})
	if err != nil {
		return CloseUsagePageResult{}, err
	}
	return res, nil
}

// MarkUsageDayClosed records that the day is closed for every
// organisation (after its last page): the next close starts after it.
func MarkUsageDayClosed(ctx context.Context, db bun.IDB, day time.Time, orgs int) error {
	if _, err := db.NewRaw(`INSERT INTO usage_closes (day, orgs) VALUES (?::date, ?) ON CONFLICT (day) DO NOTHING`,
		UTCDay(day).Format(DayLayout), orgs).Exec(ctx); err != nil {
		return fmt.Errorf("mark usage of %s closed: %w", UTCDay(day).Format(DayLayout), err)
	}
	return nil
}

// TenantHundredths is seconds of tenant time in hundredths of an hour,
// rounded halves up: the tenant hours a day shows and is billed.
func TenantHundredths(seconds int64) int64 {
	return (seconds*100 + 1800) / 3600
}

// BilledHours is the day's tenant hours as the invoice charges them
// (tenant_hours_total): a decimal number with two decimals.
func (u UsageDay) BilledHours() string {
	h := TenantHundredths(u.TenantSecondsTotal())
	return fmt.Sprintf("%d.%02d", h/100, h%100)
}

// UsageToReport answers the next page (after the organisation id after)
// of a closed day's figures not yet reported to the billing engine, of
// organisations that have a Stripe customer: the others are billed
// nothing on usage.
func UsageToReport(ctx context.Context, db bun.IDB, day time.Time, after string, limit int) ([]UsageDay, error) {
	var rows []closedDayRow
	if err := db.NewRaw(`SELECT u.org_id, to_char(u.day, 'YYYY-MM-DD') AS day, u.tenant_seconds, u.peak_members, u.api_requests, u.operations, u.closed_at
		FROM usage_days u JOIN billing_accounts b ON b.org_id = u.org_id AND b.stripe_customer_id IS NOT NULL
		WHERE u.day = ?::date AND u.reported_at IS NULL AND u.org_id > ?
		ORDER BY u.org_id LIMIT ?`, UTCDay(day).Format(DayLayout), after, limit).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("usage of %s to report: %w", UTCDay(day).Format(DayLayout), err)
	}
	days := make([]UsageDay, len(rows))
	for i, r := range rows {
		d, err := r.day()
		if err != nil {
			return nil, err
		}
		days[i] = d
	}
	return days, nil
}

// MarkUsageReported records that the billing engine took the
// organisation-day.
func MarkUsageReported(ctx context.Context, db bun.IDB, orgID string, day time.Time) error {
	if _, err := db.NewRaw(`UPDATE usage_days SET reported_at = now() WHERE org_id = ? AND day = ?::date AND reported_at IS NULL`,
		orgID, UTCDay(day).Format(DayLayout)).Exec(ctx); err != nil {
		return fmt.Errorf("mark the usage of %s reported: %w", orgID, err)
	}
	return nil
}
