package integration

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// The events benchmarks (issue 6) share one organisation with a year of
// audit events, seeded by the first of them in the harness's database and
// found by the others (or a rerun with -count) by its slug. Only benchmarks
// seed it: a plain `go test ./...` never writes a million rows.
//
//	go test -run '^$' -bench Events -benchtime 1x ./integration
const (
	trailSlug   = "bench-events"
	trailEvents = 1_000_000
	// trailDepth is the deep page: the one after 900,000 newer
	// events.
	trailDepth = 900_000
	// trailPage is the API's largest page, used to walk and to measure.
	trailPage = 200
)

// benchTrail is the seeded organisation and what the benchmarks need of it.
type benchTrail struct {
	Org   store.Organization
	Admin person
	// Count is the organisation's number of events, read from the table.
	Count int
	// Actor is the member with the most events, and ActorCount its count,
	// for the actor_id filter.
	Actor      string
	ActorCount int
	// Seeded says how the events came to be, for the benchmarks' logs.
	Seeded string
}

var (
	trailMu   sync.Mutex
	trailDone *benchTrail
	// deepCursors are the cursors walked to, by query: a rerun (-count, or
	// the benchmark framework asking for more iterations) does not walk again.
	deepCursors = map[string]string{}
)

// benchPlan is the plan of benchmark organisations: its requests_per_minute
// is far above any plan's, so the per-organisation rate limit never answers
// 429 in a benchmark (the same row BenchmarkTenantCreation inserts).
func benchPlan(b *testing.B, h *harness.Harness) string {
	b.Helper()
	if _, err := h.DB.ExecContext(context.Background(), "INSERT INTO plans (id, name, max_tenants, max_members, requests_per_minute) VALUES ('bench', 'Bench', 100000, 100, 100000) ON CONFLICT DO NOTHING"); err != nil {
		b.Fatal(err)
	}
	return "bench"
}

// auditTrail returns the benchmark organisation with its trailEvents events,
// seeding them when the organisation holds none yet.
func auditTrail(b *testing.B, h *harness.Harness) benchTrail {
	b.Helper()
	trailMu.Lock()
	defer trailMu.Unlock()
	if trailDone != nil {
		return *trailDone
	}
	ctx := context.Background()
	plan := benchPlan(b, h)
	var tr benchTrail
	err := h.DB.NewSelect().Model(&tr.Org).Where("slug = ?", trailSlug).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		created := time.Now().UTC().AddDate(-1, 0, 0).Add(-2 * time.Hour).Truncate(time.Second)
		tr.Org = store.Organization{ID: newIDAt(domain.PrefixOrganization, created, cryptoEntropy), Slug: trailSlug,
			Name: "Bench Events", PlanID: plan, CreatedAt: created, UpdatedAt: created}
		_, err = h.DB.NewInsert().Model(&tr.Org).Exec(ctx)
	}
	if err != nil {
		b.Fatal(err)
	}
	count := func() int {
		var n int
		if err := h.DB.NewRaw("SELECT count(*) FROM audit_events WHERE org_id = ?", tr.Org.ID).Scan(ctx, &n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	tr.Seeded = "found in the database, not seeded again"
	if count() == 0 {
		end := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		t0 := time.Now()
		seedTrail(b, h, tr.Org.ID, trailEvents, end.AddDate(-1, 0, 0), end)
		tr.Seeded = fmt.Sprintf("seeded by this run in %v (COPY, then VACUUM ANALYZE)", time.Since(t0).Round(100*time.Millisecond))
	}
	if tr.Count = count(); tr.Count != trailEvents {
		b.Fatalf("organisation %s holds %d audit events, want %d (drop it or use a fresh database)", trailSlug, tr.Count, trailEvents)
	}
	if err := h.DB.NewRaw(`SELECT actor_id, count(*) FROM audit_events WHERE org_id = ? AND actor_type = 'member'
		GROUP BY actor_id ORDER BY count(*) DESC, actor_id LIMIT 1`, tr.Org.ID).Scan(ctx, &tr.Actor, &tr.ActorCount); err != nil {
		b.Fatal(err)
	}
	tr.Admin = addPerson(b, h, tr.Org.ID, domain.RoleAdmin)
	trailDone = &tr
	return tr
}

// seedTrail writes n events of the organisation, oldest at start and newest
// near end, in one COPY. COPY is one statement: it writes all of them or
// none, so an interrupted seeding leaves nothing half done. The table is
// then vacuumed and analysed, as autovacuum would do soon after on a real
// database; doing it now keeps autovacuum out of the measurements.
func seedTrail(b *testing.B, h *harness.Harness, orgID string, n int, start, end time.Time) {
	b.Helper()
	ctx := context.Background()
	var tenants []trailTenant
	db := copyTrail(b, h, "events-bench-seed", n, func(w *bufio.Writer) error {
		return writeTrail(w, orgID, n, start, end, &tenants)
	})
	// The tenants the events are about, so what a service account limited
	// to an environment reads is what it would read in production.
	creator := store.User{ID: newIDAt(domain.PrefixUser, start, cryptoEntropy), Email: "creator@bench-events.test", PasswordHash: "x", CreatedAt: start, UpdatedAt: start}
	if _, err := db.NewInsert().Model(&creator).Exec(ctx); err != nil {
		b.Fatal(err)
	}
	rows := make([]store.Tenant, len(tenants))
	for i, t := range tenants {
		rows[i] = store.Tenant{ID: t.id, OrgID: orgID, Name: t.name, Environment: t.env, State: "active",
			Hostname: t.name + "-" + trailSlug + ".bench.test", WorkflowID: t.workflow, CreatedBy: creator.ID, CreatedAt: start, UpdatedAt: start}
	}
	if _, err := db.NewInsert().Model(&rows).Exec(ctx); err != nil {
		b.Fatal(err)
	}
	// Chained as `migrate up` chains a trail written before the chain, so
	// the first event the benchmarks write (a service account's creation)
	// does not chain a million first.
	if _, err := store.ChainBacklogs(ctx, db); err != nil {
		b.Fatal(err)
	}
	for _, table := range []string{"audit_events", "tenants"} {
		if _, err := db.ExecContext(ctx, "VACUUM (ANALYZE) "+table); err != nil {
			b.Fatal(err)
		}
	}
}

// copyTrail copies the events write writes into audit_events over a
// connection of its own (the store's 5 s read timeout is for requests, not
// for a statement that writes a million rows), fails b unless want were
// copied, and answers that connection's pool, closed when b ends.
func copyTrail(b *testing.B, h *harness.Harness, name string, want int, write func(*bufio.Writer) error) *bun.DB {
	b.Helper()
	ctx := context.Background()
	db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(h.DatabaseURL),
		pgdriver.WithTimeout(30*time.Minute), pgdriver.WithApplicationName(name))), pgdialect.New())
	b.Cleanup(func() { db.Close() })
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 1<<20)
		err := write(w)
		if err == nil {
			err = w.Flush()
		}
		pw.CloseWithError(err)
	}()
	res, err := pgdriver.CopyFrom(ctx, conn, pr, "COPY audit_events ("+strings.Join(trailColumns, ", ")+") FROM STDIN")
	if err != nil {
		pr.CloseWithError(err)
		b.Fatalf("copy audit events: %v", err)
	}
	if got, _ := res.RowsAffected(); got != int64(want) {
		b.Fatalf("copied %d audit events, want %d", got, want)
	}
	return db
}

var trailColumns = []string{"id", "org_id", "action", "actor_type", "actor_id", "actor_email", "on_behalf_of",
	"target_type", "target_id", "request_id", "workflow_id", "client_addr", "user_agent", "data", "dedup_key", "occurred_at",
	"environment"}

// What an event is about, which decides its actor, target and data.
const (
	kindRequested    = iota // a member's request on a tenant (written by the saga's first activity)
	kindSaga                // a saga step, the system on the member's behalf
	kindOperator            // an operator's repair of a stuck saga
	kindSignIn              // user.signed_in
	kindMember              // a change to a membership
	kindInvitation          // an invitation
	kindOrganization        // a change to the organisation
)

// trailActions are the actions with their weight in 1000; tenant.* are 910
// of them, so a tenant.* filter still has more than 900,000 matches.
var trailActions = []struct {
	name   string
	weight int
	kind   int
	before string // the tenant's state before a saga step, after it in after
	after  string
}{
	{"tenant.create_requested", 90, kindRequested, "", ""},
	{"tenant.provisioned", 88, kindSaga, "provisioning", "active"},
	{"tenant.provisioning_failed", 2, kindSaga, "provisioning", "failed"},
	{"tenant.suspended", 260, kindSaga, "active", "suspended"},
	{"tenant.resumed", 260, kindSaga, "suspended", "active"},
	{"tenant.decommissioning", 80, kindSaga, "suspended", "decommissioning"},
	{"tenant.decommissioned", 70, kindSaga, "decommissioning", "decommissioned"},
	{"tenant.restore_requested", 20, kindRequested, "", ""},
	{"tenant.restored", 20, kindSaga, "decommissioning", "suspended"},
	{"tenant.saga_stuck", 12, kindSaga, "", ""},
	{"tenant.saga_resolved", 8, kindOperator, "", ""},
	{"user.signed_in", 50, kindSignIn, "", ""},
	{"member.role_changed", 10, kindMember, "", ""},
	{"invitation.created", 15, kindInvitation, "", ""},
	{"invitation.accepted", 10, kindInvitation, "", ""},
	{"organization.updated", 5, kindOrganization, "", ""},
}

var (
	trailUserAgents = []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"intelliauth-cli/1.8.2 (linux; amd64)",
		"terraform-provider-intelliauth/0.9.0",
	}
	trailSteps = []string{"schema", "keys", "route"}
	trailRoles = []string{"viewer", "developer", "admin"}
	trailEnvs  = []string{"prod", "staging", "dev"}
	// trailRareEnv is the environment of one tenant in 50 (8 of the 400,
	// ~2 % of the events), trailSmallEnv of one in 10 (40, ~10 %): a
	// service account limited to one reads a slice of the trail.
	trailRareEnv  = "ci"
	trailSmallEnv = "qa"
	trailOperator = []string{"ops-ana", "ops-raj"}
)

// trailTenant is a tenant the trail's events are about.
type trailTenant struct{ id, name, env, workflow string }

// writeTrail writes n events as COPY text rows: fixed seeds, so two
// seedings differ only in the times (and so the ids' time part). The
// tenants the events are about are left in tenantsOut.
func writeTrail(w *bufio.Writer, orgID string, n int, start, end time.Time, tenantsOut *[]trailTenant) error {
	src := rand.NewChaCha8([32]byte{'e', 'v', 'e', 'n', 't', 's'})
	r := rand.New(src)
	type member struct{ id, email, user, addr string }
	members := make([]member, 12)
	for i := range members {
		members[i] = member{id: newIDAt(domain.PrefixMember, start, src), email: fmt.Sprintf("person%02d@bench-events.test", i),
			user: newIDAt(domain.PrefixUser, start, src), addr: fmt.Sprintf("203.0.113.%d", 10+i)}
	}
	// Some members act far more than others (member k's weight is 1/(k+1)),
	// as an automation account does.
	pickMember := func() member {
		for {
			k := r.IntN(len(members))
			if r.IntN(k+1) == 0 {
				return members[k]
			}
		}
	}
	tenants := make([]trailTenant, 400)
	for i := range tenants {
		var key [16]byte
		_, _ = src.Read(key[:])
		env := trailEnvs[i%len(trailEnvs)]
		switch {
		case i%50 == 49:
			env = trailRareEnv
		case i%10 == 4:
			env = trailSmallEnv
		}
		tenants[i] = trailTenant{id: newIDAt(domain.PrefixTenant, start, src), name: fmt.Sprintf("app-%03d", i),
			env: env, workflow: "tenant/" + orgID + "/" + hex.EncodeToString(key[:])}
	}
	*tenantsOut = tenants
	runID := func() string {
		var b [16]byte
		_, _ = src.Read(b[:])
		return hex.EncodeToString(b[:])
	}
	total := 0
	for _, a := range trailActions {
		total += a.weight
	}
	step := end.Sub(start) / time.Duration(n)
	row := make([]string, len(trailColumns))
	var line []byte
	for i := range n {
		at := start.Add(time.Duration(i)*step + time.Duration(r.Int64N(int64(step/2)))).Truncate(time.Microsecond)
		pick := r.IntN(total)
		a := trailActions[0]
		for _, c := range trailActions {
			if pick < c.weight {
				a = c
				break
			}
			pick -= c.weight
		}
		m, t := pickMember(), tenants[r.IntN(len(tenants))]
		opID := newIDAt(domain.PrefixOperation, at, src)
		reqID := newIDAt(domain.PrefixRequest, at, src)
		clear(row)
		row[0], row[1], row[2], row[15] = newIDAt(domain.PrefixEvent, at, src), orgID, a.name, at.Format(time.RFC3339Nano)
		member := func() {
			row[3], row[4], row[5] = "member", m.id, m.email
			row[9], row[11], row[12] = reqID, m.addr, trailUserAgents[r.IntN(len(trailUserAgents))]
		}
		switch a.kind {
		case kindRequested:
			member()
			row[7], row[8], row[10], row[16] = "tenant", t.id, t.workflow, t.env
			row[14] = t.workflow + "/" + runID() + "/1"
			if a.name == "tenant.create_requested" {
				row[13] = fmt.Sprintf(`{"name": %q, "environment": %q}`, t.name, t.env)
			} else {
				row[13] = fmt.Sprintf(`{"operation_id": %q}`, opID)
			}
		case kindSaga, kindOperator:
			row[3], row[4] = "system", "saga"
			if a.kind == kindOperator {
				row[3], row[4] = "operator", trailOperator[r.IntN(len(trailOperator))]
			} else {
				row[6] = fmt.Sprintf(`{"type": "member", "id": %q, "email": %q}`, m.id, m.email)
			}
			row[7], row[8], row[9], row[10], row[16] = "tenant", t.id, reqID, t.workflow, t.env
			row[14] = fmt.Sprintf("%s/%s/%d", t.workflow, runID(), 2+r.IntN(9))
			switch {
			case a.before != "":
				row[13] = fmt.Sprintf(`{"operation_id": %q, "before": {"state": %q}, "after": {"state": %q}}`, opID, a.before, a.after)
			case a.kind == kindOperator:
				row[13] = fmt.Sprintf(`{"step": %q, "signal": "retry"}`, trailSteps[r.IntN(len(trailSteps))])
			default:
				row[13] = fmt.Sprintf(`{"operation_id": %q, "step": %q, "attempts": %d, "error": "dial tcp 10.0.0.7:5432: connect: connection refused"}`,
					opID, trailSteps[r.IntN(len(trailSteps))], 5)
			}
		case kindSignIn:
			member()
			row[7], row[8] = "user", m.user
		case kindMember:
			member()
			other := members[r.IntN(len(members))]
			row[7], row[8] = "member", other.id
			row[13] = fmt.Sprintf(`{"before": {"role": %q}, "after": {"role": %q}}`, trailRoles[r.IntN(3)], trailRoles[r.IntN(3)])
		case kindInvitation:
			member()
			row[7], row[8] = "invitation", newIDAt(domain.PrefixInvitation, at, src)
			row[13] = fmt.Sprintf(`{"email": "invitee%d@example.test", "role": %q}`, r.IntN(10_000), trailRoles[r.IntN(3)])
		case kindOrganization:
			member()
			row[7], row[8] = "organization", orgID
			row[13] = `{"before": {"name": "Bench Events"}, "after": {"name": "Bench Events GmbH"}}`
		}
		line = appendCopyRow(line[:0], row)
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return nil
}

// appendCopyRow appends a row in COPY's text format; an empty field of a
// nullable column (on_behalf_of, data, dedup_key, environment) is NULL.
func appendCopyRow(dst []byte, row []string) []byte {
	for i, v := range row {
		if i > 0 {
			dst = append(dst, '\t')
		}
		if v == "" && (i == 6 || i == 13 || i == 14 || i == 16) {
			dst = append(dst, `\N`...)
			continue
		}
		for j := 0; j < len(v); j++ {
			switch c := v[j]; c {
			case '\\':
				dst = append(dst, `\\`...)
			case '\t':
				dst = append(dst, `\t`...)
			case '\n':
				dst = append(dst, `\n`...)
			case '\r':
				dst = append(dst, `\r`...)
			default:
				dst = append(dst, c)
			}
		}
	}
	return append(dst, '\n')
}

// newIDAt is an id as domain.NewID makes it (the prefix and a ULID), for a
// time in the past.
func newIDAt(prefix string, at time.Time, entropy io.Reader) string {
	return prefix + ulid.MustNew(ulid.Timestamp(at), entropy).String()
}

var cryptoEntropy = ulid.DefaultEntropy()

// eventsClient reads an organisation's events over HTTP.
type eventsClient struct {
	base, token string
	http        *http.Client
}

type eventsPage struct {
	Data []struct {
		ID         string    `json:"id"`
		OccurredAt time.Time `json:"occurred_at"`
	} `json:"data"`
	Meta struct {
		Cursor  string `json:"cursor"`
		HasMore bool   `json:"has_more"`
	} `json:"meta"`
}

// get reads one page and returns its raw body and the time to read it whole.
func (c eventsClient) get(b *testing.B, query, cursor string) ([]byte, time.Duration) {
	u := c.base + "?limit=" + strconv.Itoa(trailPage)
	if query != "" {
		u += "&" + query
	}
	if cursor != "" {
		u += "&cursor=" + url.QueryEscape(cursor)
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	t0 := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	el := time.Since(t0)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("GET %s: %d %v %.300s", u, resp.StatusCode, err, body)
	}
	return body, el
}

func (c eventsClient) page(b *testing.B, query, cursor string) (eventsPage, time.Duration) {
	body, el := c.get(b, query, cursor)
	var p eventsPage
	if err := json.Unmarshal(body, &p); err != nil {
		b.Fatal(err)
	}
	return p, el
}

// walk follows the API's own cursors, trailPage events at a time, past
// depth events, checking they come newest first and none twice, and returns
// the cursor of the page that starts after them.
func (c eventsClient) walk(b *testing.B, query string, depth int) string {
	b.Helper()
	trailMu.Lock()
	defer trailMu.Unlock()
	key := c.token + "/" + query + "@" + strconv.Itoa(depth)
	if cursor, ok := deepCursors[key]; ok {
		return cursor
	}
	t0 := time.Now()
	cursor, seen, pages := "", 0, 0
	var lastAt time.Time
	lastID := ""
	for seen < depth {
		p, _ := c.page(b, query, cursor)
		pages++
		for _, e := range p.Data {
			if lastID != "" && !(e.OccurredAt.Before(lastAt) || e.OccurredAt.Equal(lastAt) && e.ID < lastID) {
				b.Fatalf("page %d: %s (%v) is not older than %s (%v)", pages, e.ID, e.OccurredAt, lastID, lastAt)
			}
			lastAt, lastID = e.OccurredAt, e.ID
		}
		seen += len(p.Data)
		if !p.Meta.HasMore {
			b.Fatalf("%q: the trail ended after %d events, before depth %d", query, seen, depth)
		}
		cursor = p.Meta.Cursor
	}
	el := time.Since(t0)
	b.Logf("%q: walked %d pages (%d events) in %v, %.0f pages/s", query, pages, seen, el.Round(time.Millisecond), float64(pages)/el.Seconds())
	deepCursors[key] = cursor
	return cursor
}

// trailAPI serves the API in the test process over the benchmark
// organisation's database, and returns a client of its events as its
// admin.
func trailAPI(b *testing.B) (*harness.Harness, benchTrail, eventsClient) {
	h := harness.Get(b)
	tr := auditTrail(b, h)
	addr := serve(b, api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log}))
	return h, tr, eventsClient{base: "http://" + addr + "/api/v1/organizations/" + tr.Org.ID + "/events",
		token: tr.Admin.Token, http: &http.Client{}}
}

// BenchmarkEventsPage measures GET …/events over loopback in the
// organisation of a million events: the first page and the page after
// 900,000 newer events (reached by walking the API's own cursors), 200
// events a page, without a filter and with two. First and deep pages are
// asked in turn, 500 of each after a warm-up, so the machine's noise falls
// on both alike. The deep page should cost what the first does (within
// 1.5×).
func BenchmarkEventsPage(b *testing.B) {
	h, tr, c := trailAPI(b)

	// The actor filter matches a few percent of the trail: its deep page is
	// at the same point in time, 90% of the way back.
	actorDepth := tr.ActorCount * 9 / 10 / trailPage * trailPage
	// A family of rare actions (2.5 % of the trail), 90 % of the way back.
	var rare int
	if err := h.DB.NewRaw("SELECT count(*) FROM audit_events WHERE org_id = ? AND action LIKE 'invitation.%'", tr.Org.ID).Scan(b.Context(), &rare); err != nil {
		b.Fatal(err)
	}
	rareDepth := rare * 9 / 10 / trailPage * trailPage
	// Service accounts limited to environments (issue 23, finding 5): one
	// to ci (8 of the 400 tenants, ~2 % of the trail), one to ci and
	// staging; their deep pages 90 % of the way back.
	ci, qa, ciStaging := c.as(benchServiceAccount(b, c, trailRareEnv)), c.as(benchServiceAccount(b, c, trailSmallEnv)),
		c.as(benchServiceAccount(b, c, trailRareEnv, "staging"))
	cases := []struct {
		name, query string
		depth       int
		client      eventsClient
	}{
		{"unfiltered", "", trailDepth, c},
		{"action=tenant.*", "action=tenant.*", trailDepth, c},
		{"actor_id", "actor_id=" + tr.Actor, actorDepth, c},
		{"action=invitation.*", "action=invitation.*", rareDepth, c},
		{"environments=ci", "", envDepth(b, h, tr, trailRareEnv), ci},
		{"environments=qa", "", envDepth(b, h, tr, trailSmallEnv), qa},
		{"environments=ci,staging", "", envDepth(b, h, tr, trailRareEnv, "staging"), ciStaging},
	}
	const rounds, warmup = 500, 20
	for i, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			if i == 0 {
				b.Logf("%d events in organisation %s, %s", tr.Count, tr.Org.ID, tr.Seeded)
			}
			c := tc.client
			deep := c.walk(b, tc.query, tc.depth)
			if envs := strings.TrimPrefix(tc.name, "environments="); envs != tc.name {
				explainEnvironmentPage(b, h, tr, strings.Split(envs, ","))
			}
			b.ResetTimer()
			var first, deeper []time.Duration
			for round := range rounds + warmup {
				var f, d time.Duration
				if round%2 == 0 {
					_, f = c.get(b, tc.query, "")
					_, d = c.get(b, tc.query, deep)
				} else {
					_, d = c.get(b, tc.query, deep)
					_, f = c.get(b, tc.query, "")
				}
				if round >= warmup {
					first, deeper = append(first, f), append(deeper, d)
				}
			}
			b.StopTimer()
			// Both pages are full pages.
			for _, cur := range []string{"", deep} {
				if p, _ := c.page(b, tc.query, cur); len(p.Data) != trailPage {
					b.Fatalf("a page of %d events, want %d", len(p.Data), trailPage)
				}
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			f50, f99, d50, d99 := percentile(first, 50), percentile(first, 99), percentile(deeper, 50), percentile(deeper, 99)
			b.Logf("%-16s depth %7d  first p50 %6.2f ms p99 %6.2f ms | deep p50 %6.2f ms p99 %6.2f ms | deep/first p50 %.2f× p99 %.2f× (target ≤ 1.5×)",
				tc.name, tc.depth, ms(f50), ms(f99), ms(d50), ms(d99), float64(d50)/float64(f50), float64(d99)/float64(f99))
			b.ReportMetric(ms(f50), "first-p50-ms")
			b.ReportMetric(ms(f99), "first-p99-ms")
			b.ReportMetric(ms(d50), "deep-p50-ms")
			b.ReportMetric(ms(d99), "deep-p99-ms")
			b.ReportMetric(float64(d50)/float64(f50), "deep/first-p50")
			b.ReportMetric(float64(d99)/float64(f99), "deep/first-p99")
		})
	}
}

// as is the client with another bearer token.
func (c eventsClient) as(token string) eventsClient {
	c.token = token
	return c
}

// benchTokens are the tokens of the benchmark's service accounts, by
// their environments: a rerun (-count) in the same process finds them.
var benchTokens = map[string]string{}

// benchServiceAccount returns the token of a service account of the
// trail's organisation limited to envs with events:read, created through
// the API by c's admin the first time.
func benchServiceAccount(b *testing.B, c eventsClient, envs ...string) string {
	b.Helper()
	trailMu.Lock()
	defer trailMu.Unlock()
	key := strings.Join(envs, ",")
	if tok, ok := benchTokens[key]; ok {
		return tok
	}
	body, _ := json.Marshal(map[string]any{"name": "bench-" + strings.Join(envs, "-"), "role": "admin", "environments": envs,
		"scopes": []string{"events:read"}, "token_expires_in": 24 * 3600})
	u := strings.TrimSuffix(c.base, "/events") + "/service-accounts"
	req, _ := http.NewRequest("POST", u, strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Data struct {
			Token string `json:"token"`
		} `json:"data"`
	}
	if resp.StatusCode != 201 || json.Unmarshal(raw, &out) != nil || out.Data.Token == "" {
		b.Fatalf("create a service account limited to %v: %d %.300s", envs, resp.StatusCode, raw)
	}
	benchTokens[key] = out.Data.Token
	return out.Data.Token
}

// envDepth is the deep page of a reader limited to envs: 90 % of the way
// back through the events about their tenants, in whole pages.
func envDepth(b *testing.B, h *harness.Harness, tr benchTrail, envs ...string) int {
	b.Helper()
	var n int
	if err := h.DB.NewRaw(`SELECT count(*) FROM audit_events e JOIN tenants t ON t.id = e.target_id AND t.org_id = e.org_id
		WHERE e.org_id = ? AND e.target_type = 'tenant' AND t.environment IN (?)`, tr.Org.ID, bun.In(envs)).Scan(b.Context(), &n); err != nil {
		b.Fatal(err)
	}
	return n * 9 / 10 / trailPage * trailPage
}

// explainEnvironmentPage logs how Postgres reads the first page of 200
// events of the environments: the statement store.ListEvents runs, under
// EXPLAIN ANALYZE, summed up as the audit_events rows it read (and threw
// away), through which index, the buffers it touched and its time.
func explainEnvironmentPage(b *testing.B, h *harness.Harness, tr benchTrail, envs []string) {
	b.Helper()
	rec := &statementRecorder{}
	db := bun.NewDB(h.DB.DB, pgdialect.New())
	db.AddQueryHook(rec)
	if _, err := store.ListEvents(b.Context(), db, store.EventFilter{OrgID: tr.Org.ID, Environments: envs}, store.Keyset{}, trailPage); err != nil {
		b.Fatal(err)
	}
	var raw string
	if err := h.DB.NewRaw("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+rec.last).Scan(b.Context(), &raw); err != nil {
		b.Fatal(err)
	}
	type node struct {
		Relation string  `json:"Relation Name"`
		Index    string  `json:"Index Name"`
		Rows     float64 `json:"Actual Rows"`
		Loops    float64 `json:"Actual Loops"`
		Removed  float64 `json:"Rows Removed by Filter"`
		Hit      int     `json:"Shared Hit Blocks"`
		Read     int     `json:"Shared Read Blocks"`
		Plans    []node  `json:"Plans"`
	}
	var plans []struct {
		Plan          node    `json:"Plan"`
		ExecutionTime float64 `json:"Execution Time"`
	}
	if err := json.Unmarshal([]byte(raw), &plans); err != nil || len(plans) != 1 {
		b.Fatalf("explain: %v %.300s", err, raw)
	}
	var rows, removed float64
	var indexes []string
	var walk func(node)
	walk = func(n node) {
		if n.Relation == "audit_events" {
			rows += n.Rows * max(n.Loops, 1)
			removed += n.Removed * max(n.Loops, 1)
			indexes = append(indexes, n.Index)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(plans[0].Plan)
	b.Logf("%v: the first page in Postgres reads %.0f audit events (%.0f more thrown away by a filter) through %q, %d buffers, %.2f ms",
		envs, rows, removed, indexes, plans[0].Plan.Hit+plans[0].Plan.Read, plans[0].ExecutionTime)
}

// statementRecorder keeps the last statement run through its handle.
type statementRecorder struct{ last string }

func (r *statementRecorder) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}
func (r *statementRecorder) AfterQuery(_ context.Context, ev *bun.QueryEvent) { r.last = ev.Query }

// BenchmarkEventsPageBesidePollers measures the admin's first unfiltered
// page alone, then while six service accounts limited to ci each ask
// their first page four times a second (the pollers, which made
// the owner's pages 4× slower when each of theirs read the whole trail).
// 500 pages each after a warm-up.
func BenchmarkEventsPageBesidePollers(b *testing.B) {
	_, _, c := trailAPI(b)
	poller := c.as(benchServiceAccount(b, c, trailRareEnv))
	const rounds, warmup, pollers = 500, 20, 6
	measure := func() (p50, p99 time.Duration) {
		var d []time.Duration
		for round := range rounds + warmup {
			if _, el := c.get(b, "", ""); round >= warmup {
				d = append(d, el)
			}
		}
		return percentile(d, 50), percentile(d, 99)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ResetTimer()
	alone50, alone99 := measure()
	stop := make(chan struct{})
	var polled atomic.Int64
	var wg sync.WaitGroup
	for range pollers {
		wg.Go(func() {
			pc := poller
			pc.http = &http.Client{}
			every(250*time.Millisecond, stop, func() {
				pc.get(b, "", "")
				polled.Add(1)
			})
		})
	}
	t0 := time.Now()
	beside50, beside99 := measure()
	el := time.Since(t0)
	close(stop)
	wg.Wait()
	b.StopTimer()
	b.Logf("admin's first page alone p50 %.2f ms p99 %.2f ms | beside %d ci pollers p50 %.2f ms p99 %.2f ms (%.2f× p50); the pollers read %.0f pages/s",
		ms(alone50), ms(alone99), pollers, ms(beside50), ms(beside99), float64(beside50)/float64(alone50), float64(polled.Load())/el.Seconds())
	b.ReportMetric(ms(alone50), "alone-p50-ms")
	b.ReportMetric(ms(alone99), "alone-p99-ms")
	b.ReportMetric(ms(beside50), "beside-pollers-p50-ms")
	b.ReportMetric(ms(beside99), "beside-pollers-p99-ms")
	b.ReportMetric(float64(polled.Load())/el.Seconds(), "poller-pages/s")
}

// every calls f every d until stop is closed.
func every(d time.Duration, stop <-chan struct{}, f func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			f()
		}
	}
}

// procMemory is what /proc/<pid>/status says of a process's memory, in KiB:
// the resident set now and its peak (high-water mark) so far.
type procMemory struct{ RSS, HWM int64 }

func readProcMemory(pid int) (procMemory, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMemory{}, err
	}
	var m procMemory
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return m, fmt.Errorf("%s: %q", k, v)
		}
		if k == "VmRSS" {
			m.RSS = n
		} else {
			m.HWM = n
		}
	}
	return m, nil
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// BenchmarkEventsExport streams the million events as NDJSON
// (Accept: application/x-ndjson) from the real `controlplane api` binary,
// run as a process of its own against the harness's database, so its
// memory is its own: 20 exports of 50,000, each from the Next-Cursor of
// the one before. Every line is checked to be JSON, newest first with
// no event twice, and the count to be exactly the organisation's; it
// reports events/s and the API's peak RSS (VmHWM), after the first 100,000
// events and at the end: a stream that holds nothing has the same peak at
// both.
func BenchmarkEventsExport(b *testing.B) {
	h := harness.Get(b)
	tr := auditTrail(b, h)
	bin := binary(b)

	addr := freeAddr(b)
	cmd := exec.Command(bin, "api")
	cmd.Env = append(os.Environ(), "CP_DATABASE_URL="+h.DatabaseURL, "CP_HTTP_ADDR="+addr,
		"CP_TEMPORAL_ADDRESS="+h.TemporalAddr, "CP_LOG_FORMAT=json", "CP_DATA_DIR="+b.TempDir(), "CP_FAULTS=",
		"CP_KEY_ENCRYPTION_KEYS=bench=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if b.Failed() {
			b.Logf("controlplane api output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("controlplane api did not answer /healthz within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	pid := cmd.Process.Pid
	idle, err := readProcMemory(pid)
	if err != nil {
		b.Fatal(err)
	}

	// Sample the API's RSS during the stream.
	type sample struct {
		at    time.Duration
		lines int64
		mem   procMemory
	}
	var lines atomic.Int64
	var samples []sample
	stop, sampled := make(chan struct{}), make(chan struct{})
	t0 := time.Now()
	go func() {
		defer close(sampled)
		every(200*time.Millisecond, stop, func() {
			if m, err := readProcMemory(pid); err == nil {
				samples = append(samples, sample{time.Since(t0), lines.Load(), m})
			}
		})
	}()

	b.ResetTimer()
	const early = 100_000
	var atEarly procMemory
	var n int64
	var last struct {
		ID         string    `json:"id"`
		OrgID      string    `json:"org_id"`
		OccurredAt time.Time `json:"occurred_at"`
	}
	// An export sends at most 50,000 events; Next-Cursor is where the next
	// one starts.
	requests := exportTrail(b, "http://"+addr+"/api/v1/organizations/"+tr.Org.ID+"/events", tr.Admin.Token, func(line []byte) {
		prev := last
		if err := json.Unmarshal(line, &last); err != nil {
			b.Fatalf("line %d is not JSON: %v: %.200s", n+1, err, line)
		}
		if last.OrgID != tr.Org.ID || n > 0 && !(last.OccurredAt.Before(prev.OccurredAt) || last.OccurredAt.Equal(prev.OccurredAt) && last.ID < prev.ID) {
			b.Fatalf("line %d: %s of %s at %v after %s at %v: not the organisation's, newest first", n+1, last.ID, last.OrgID, last.OccurredAt, prev.ID, prev.OccurredAt)
		}
		n++
		lines.Store(n)
		if n == early {
			var err error
			if atEarly, err = readProcMemory(pid); err != nil {
				b.Fatal(err)
			}
		}
	})
	elapsed := time.Since(t0)
	b.StopTimer()
	atEnd, err := readProcMemory(pid)
	if err != nil {
		b.Fatal(err)
	}
	close(stop)
	<-sampled
	// The organisation's events now: the other benchmarks of the run may
	// have added a few (a service account's creation).
	var count int64
	if err := h.DB.NewRaw("SELECT count(*) FROM audit_events WHERE org_id = ?", tr.Org.ID).Scan(b.Context(), &count); err != nil {
		b.Fatal(err)
	}
	if n != count {
		b.Fatalf("exported %d events, the organisation has %d", n, count)
	}

	var maxAfterEarly int64
	for _, s := range samples {
		if s.lines >= early {
			maxAfterEarly = max(maxAfterEarly, s.mem.RSS)
		}
	}
	b.Logf("%d events in organisation %s, %s", tr.Count, tr.Org.ID, tr.Seeded)
	b.Logf("exported %d events (every line JSON, newest first, none twice) in %d requests in %v: %.0f events/s", n, requests, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	b.Logf("API memory: before the export RSS %.1f MiB, peak so far (VmHWM, start-up) %.1f MiB; peak after %d events %.1f MiB, after %d %.1f MiB; largest RSS sampled after %d events %.1f MiB",
		mib(idle.RSS), mib(idle.HWM), early, mib(atEarly.HWM), n, mib(atEnd.HWM), early, mib(maxAfterEarly))
	step := max(1, len(samples)/10)
	for i := 0; i < len(samples); i += step {
		s := samples[i]
		b.Logf("  %6.1f s  %8d events  RSS %6.1f MiB", s.at.Seconds(), s.lines, mib(s.mem.RSS))
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(mib(idle.RSS), "idle-RSS-MiB")
	b.ReportMetric(mib(idle.HWM), "startup-peak-RSS-MiB")
	b.ReportMetric(mib(atEarly.HWM), "peak-RSS-100k-MiB")
	b.ReportMetric(mib(atEnd.HWM), "peak-RSS-MiB")
}

// exportTrail exports every event of url's organisation as NDJSON,
// following each export's Next-Cursor, and hands each line to line; it
// returns how many requests it took. A stream cut short fails b.
func exportTrail(b *testing.B, u, token string, line func([]byte)) (requests int) {
	b.Helper()
	cursor := ""
	for {
		q := u
		if cursor != "" {
			q += "?cursor=" + url.QueryEscape(cursor)
		}
		req, _ := http.NewRequest("GET", q, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		requests++
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
			b.Fatalf("export %d: %d %s %s", requests, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if _, err := ndjsonLines(resp.Body, line); err != nil {
			b.Fatalf("export %d: %v (a stream cut short)", requests, err)
		}
		resp.Body.Close()
		if cursor = resp.Header.Get("Next-Cursor"); cursor == "" {
			return requests
		}
	}
}

// BenchmarkEventsExportToASlowClient exports to a client that reads 600
// events/s (a slow link or disk): one export of 50,000 events, the most
// one request sends, then takes about 83 s, longer than the server's 60 s
// write timeout. Every event must still arrive, since the timeout bounds a
// stall of the export, not its length. It reports the rate the client got.
func BenchmarkEventsExportToASlowClient(b *testing.B) {
	h := harness.Get(b)
	tr := auditTrail(b, h)
	addr := serve(b, api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log}))
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/organizations/"+tr.Org.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+tr.Admin.Token)
	req.Header.Set("Accept", "application/x-ndjson")
	b.ResetTimer()
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	const perSecond, batch, want = 600, 100, 50_000
	paced := 0
	n, err := ndjsonLines(resp.Body, func(line []byte) {
		if !json.Valid(line) {
			b.Fatalf("line %d is not JSON: %.200s", paced+1, line)
		}
		if paced++; paced%batch == 0 {
			// Pace to perSecond: sleep until this batch is due.
			time.Sleep(time.Until(t0.Add(time.Duration(paced) * time.Second / perSecond)))
		}
	})
	if err != nil {
		b.Fatalf("after %d events and %v: %v (the export was cut off)", n, time.Since(t0).Round(time.Millisecond), err)
	}
	elapsed := time.Since(t0)
	if n != want || resp.Header.Get("Next-Cursor") == "" {
		b.Fatalf("exported %d events (Next-Cursor %q), want %d and where the next export starts", n, resp.Header.Get("Next-Cursor"), want)
	}
	b.Logf("a client reading %d events/s got all %d of an export in %v", perSecond, n, elapsed.Round(time.Millisecond))
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(elapsed.Seconds(), "export-s")
}
