package store_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/store"
)

const day = 24 * time.Hour

// agedEvents writes one event per age, in order, each occurred that long
// before now, through InsertEvent (the chain's one writer).
func agedEvents(t *testing.T, orgID string, now time.Time, ages ...time.Duration) []*store.AuditEvent {
	t.Helper()
	var out []*store.AuditEvent
	for _, age := range ages {
		ev := event(orgID, "tenant.created", `{"after":{"name":"t"}}`)
		ev.OccurredAt = now.Add(-age)
		if _, err := store.InsertEvent(context.Background(), testDB, ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func purge(t *testing.T, in store.PurgeInput) store.PurgeResult {
	t.Helper()
	res, err := store.PurgeAuditTrail(context.Background(), testDB, in)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// verified checks the organisation's chain from the database (from its
// checkpoint) and returns how many events it checked.
func verified(t *testing.T, orgID string) store.ChainReport {
	t.Helper()
	rep, err := store.VerifyChain(context.Background(), testDB, orgID)
	if err != nil || rep.Problem != nil {
		t.Fatalf("chain of %s: %v %v", orgID, rep.Problem, err)
	}
	return rep
}

func remaining(t *testing.T, orgID string) []int64 {
	t.Helper()
	var seqs []int64
	if err := testDB.NewRaw("SELECT seq FROM audit_events WHERE org_id = ? ORDER BY seq", orgID).Scan(context.Background(), &seqs); err != nil {
		t.Fatal(err)
	}
	return seqs
}

func TestAPurgeTakesThePrefixOfTheChainPastThePlansWindowAndTheChainVerifiesFromItsCheckpoint(t *testing.T) {
	now := time.Now().UTC()
	org := newOrg(t) // team: 365 days
	// The fifth is past the window too, but comes after one that is not:
	// a purge takes a prefix of the chain, so it waits.
	evs := agedEvents(t, org.ID, now, 400*day, 380*day, 366*day, 364*day, 390*day, 10*day)

	res := purge(t, store.PurgeInput{OrgID: org.ID, At: now})
	if res.Deleted != 3 || res.More || res.HeldByStreams || res.Checkpoint.Seq != 3 || !bytes.Equal(res.Checkpoint.Hash, evs[2].Hash) ||
		!res.Checkpoint.OccurredAt.Equal(evs[2].OccurredAt) {
		t.Fatalf("purge: %+v", res)
	}
	if got := remaining(t, org.ID); len(got) != 3 || got[0] != 4 {
		t.Fatalf("events left: %v, want seqs 4–6", got)
	}
	rep := verified(t, org.ID)
	if rep.Checked != 3 || rep.Checkpoint.Seq != 3 || rep.Length != 6 {
		t.Fatalf("verified %+v", rep)
	}
	head, err := store.ReadChainHead(context.Background(), testDB, org.ID)
	if err != nil || head.RetentionDays != 365 || head.StartsAt == nil || !head.StartsAt.Equal(evs[3].OccurredAt) || head.Checkpoint.Seq != 3 {
		t.Fatalf("head %+v %v", head, err)
	}
	// Nothing more is past the window at its start: a second purge does
	// nothing, and the chain goes on from the head.
	if res := purge(t, store.PurgeInput{OrgID: org.ID, At: now}); res.Deleted != 0 || res.Checkpoint.Seq != 3 {
		t.Fatalf("again: %+v", res)
	}
	agedEvents(t, org.ID, now, 0)
	if rep := verified(t, org.ID); rep.Checked != 4 {
		t.Fatalf("after a new event: %+v", rep)
	}
	// Almost a year later everything but the new event is past the window.
	if res := purge(t, store.PurgeInput{OrgID: org.ID, At: now.Add(360 * day)}); res.Deleted != 3 || res.Checkpoint.Seq != 6 {
		t.Fatalf("360 days later: %+v", res)
	}
	verified(t, org.ID)
}

func TestAPurgeGoesInBatchesAndTheOrganisationsToLookAtAreThoseWithAnEventPastTheWindow(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	org, young := newOrg(t), newOrg(t)
	agedEvents(t, org.ID, now, 500*day, 499*day, 498*day, 497*day, 496*day)
	agedEvents(t, young.ID, now, 300*day)

	orgs, err := store.PurgeableOrgs(ctx, testDB, now, "", 100000)
	if err != nil || !contains(orgs, org.ID) || contains(orgs, young.ID) {
		t.Fatalf("purgeable %v %v: want %s and not %s", orgs, err, org.ID, young.ID)
	}
	var steps []int
	for {
		res := purge(t, store.PurgeInput{OrgID: org.ID, At: now, Limit: 2})
		steps = append(steps, res.Deleted)
		if !res.More {
			break
		}
	}
	if len(steps) != 3 || steps[0] != 2 || steps[1] != 2 || steps[2] != 1 {
		t.Fatalf("batches %v, want 2, 2, 1", steps)
	}
	if rep := verified(t, org.ID); rep.Checkpoint.Seq != 5 || rep.Checked != 0 {
		t.Fatalf("every event purged: %+v", rep)
	}
	if orgs, _ := store.PurgeableOrgs(ctx, testDB, now, "", 100000); contains(orgs, org.ID) {
		t.Fatalf("%s is still listed once purged", org.ID)
	}
	// A plan of 30 days makes the young one's event past its window.
	if _, err := testDB.NewRaw("UPDATE organizations SET plan_id = 'free' WHERE id = ?", young.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if res := purge(t, store.PurgeInput{OrgID: young.ID, At: now}); res.Deleted != 1 {
		t.Fatalf("free plan: %+v", res)
	}
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func TestAStreamsCursorHoldsThePurgeBackForAtMostSevenDaysPastTheWindow(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	org := newOrg(t)
	agedEvents(t, org.ID, now, 380*day, 370*day, 369*day, 10*day)
	s := newStream(t, org, ring(t, mustKey(t, "k1")))
	paused := newStream(t, org, ring(t, mustKey(t, "k2")))
	setCursor := func(id string, seq int64) {
		if _, err := testDB.NewRaw("UPDATE audit_streams SET cursor_seq = ? WHERE id = ?", seq, id).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The stream delivered seq 1 only; the paused one nothing, and it
	// holds nothing back.
	setCursor(s.ID, 1)
	setCursor(paused.ID, 0)
	if _, err := testDB.NewRaw("UPDATE audit_streams SET status = 'paused' WHERE id = ?", paused.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}

	// Seq 1 is past the window and delivered; seq 2 is past the window
	// by 5 days, within the streams' 7, and not delivered.
	res := purge(t, store.PurgeInput{OrgID: org.ID, At: now})
	if res.Deleted != 1 || !res.HeldByStreams || res.Checkpoint.Seq != 1 || len(res.Overtaken) != 0 {
		t.Fatalf("held by the stream: %+v", res)
	}
	// Delivered: purged.
	setCursor(s.ID, 2)
	if res := purge(t, store.PurgeInput{OrgID: org.ID, At: now}); res.Deleted != 1 || !res.HeldByStreams || res.Checkpoint.Seq != 2 {
		t.Fatalf("after the stream delivered seq 2: %+v", res)
	}
	// Three days on, seq 3 is past the window by 7 days and 1: purged
	// though the stream has not delivered it, and the stream is named.
	res = purge(t, store.PurgeInput{OrgID: org.ID, At: now.Add(3 * day)})
	if res.Deleted != 1 || res.HeldByStreams || res.Checkpoint.Seq != 3 || len(res.Overtaken) != 1 || res.Overtaken[0] != s.ID {
		t.Fatalf("past the streams' bound: %+v", res)
	}
	verified(t, org.ID)
}

// inTx runs sqls in one transaction and returns the first error,
// commit's included.
func inTx(sqls ...string) error {
	return testDB.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		for _, q := range sqls {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestOnlyThePurgeOfAnOrganisationDeletesItsEventsAndOnlyUpToItsCheckpoint(t *testing.T) {
	now := time.Now().UTC()
	org, other := newOrg(t), newOrg(t)
	evs := agedEvents(t, org.ID, now, 400*day, 399*day, 398*day, 397*day)
	agedEvents(t, other.ID, now, 400*day)
	purge(t, store.PurgeInput{OrgID: org.ID, At: now, Limit: 1})
	allow := "SELECT set_config('controlplane.purge', '" + org.ID + "', true)"
	q := func(f string) string {
		r := strings.NewReplacer("$org", "'"+org.ID+"'", "$other", "'"+other.ID+"'")
		return r.Replace(f)
	}
	for _, tc := range []struct {
		name string
		sqls []string
		want string
	}{
		{"a delete outside a purge", []string{q("DELETE FROM audit_events WHERE org_id = $org AND seq = 2")}, "deleted by retention only"},
		{"a delete past the checkpoint", []string{allow, q("DELETE FROM audit_events WHERE org_id = $org AND seq = 2")}, "deleted by retention only"},
		{"another organisation's events", []string{allow, q("DELETE FROM audit_events WHERE org_id = $other")}, "deleted by retention only"},
		{"a checkpoint outside a purge", []string{q("UPDATE audit_chain_checkpoints SET seq = 2 WHERE org_id = $org")}, "moved by its organisation's purge only"},
		{"a checkpoint moved back", []string{allow, q("UPDATE audit_chain_checkpoints SET seq = 0 WHERE org_id = $org")}, "only moves forward"},
		{"a checkpoint that is not an event", []string{allow,
			q("UPDATE audit_chain_checkpoints SET seq = 2, hash = decode(repeat('ab', 32), 'hex') WHERE org_id = $org")}, "is an event of the chain"},
		{"a checkpoint moved over events left", []string{allow,
			q("UPDATE audit_chain_checkpoints k SET seq = e.seq, hash = e.hash, occurred_at = e.occurred_at FROM audit_events e WHERE e.org_id = $org AND e.seq = 3 AND k.org_id = $org")},
			"events at or before the audit chain checkpoint"},
		{"a checkpoint removed", []string{allow, q("DELETE FROM audit_chain_checkpoints WHERE org_id = $org")}, "never removed"},
		{"an organisation removed with its trail", []string{q("DELETE FROM organizations WHERE id = $other")}, "deleted by retention only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := inTx(tc.sqls...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
		})
	}
	if got := remaining(t, org.ID); len(got) != 3 || got[0] != 2 {
		t.Fatalf("events left: %v", got)
	}
	// What the purge does by hand passes: the checkpoint moved to an
	// event, then the events up to it deleted.
	if err := inTx(allow,
		q("UPDATE audit_chain_checkpoints SET seq = 2, hash = decode('"+hex.EncodeToString(evs[1].Hash)+"', 'hex'), occurred_at = '"+evs[1].OccurredAt.Format(time.RFC3339Nano)+"' WHERE org_id = $org"),
		q("DELETE FROM audit_events WHERE org_id = $org AND seq = 2")); err != nil {
		t.Fatal(err)
	}
	verified(t, org.ID)
}

// TestAnEventIsWrittenWhileAPurgeOfItsOrganisationIsInFlight holds a
// purge's transaction open after its delete (what PurgeAuditTrail does,
// its locks included) and writes an event of the organisation meanwhile:
// the writer appends at the head, which the purge does not lock, so it
// does not wait for the purge to end.
func TestAnEventIsWrittenWhileAPurgeOfItsOrganisationIsInFlight(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	org := newOrg(t)
	evs := agedEvents(t, org.ID, now, 400*day, 399*day)
	tx, err := testDB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // committed below
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", []any{"audit_retention/" + org.ID}},
		{"SELECT set_config('controlplane.purge', ?, true)", []any{org.ID}},
		{"INSERT INTO audit_chain_checkpoints (org_id, seq, hash, occurred_at) VALUES (?, 1, ?, ?)", []any{org.ID, evs[0].Hash, evs[0].OccurredAt}},
		{"DELETE FROM audit_events WHERE org_id = ? AND seq <= 1", []any{org.ID}},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := store.InsertEvent(wctx, testDB, event(org.ID, "member.added", "")); err != nil {
		t.Fatalf("an event written during a purge: %v (it waited for the purge)", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if rep := verified(t, org.ID); rep.Checkpoint.Seq != 1 || rep.Checked != 2 || rep.Length != 3 {
		t.Fatalf("after the purge and the write: %+v", rep)
	}
}

// TestTheErasureOfAPurgedTrailComputesItsChainAgainFromTheCheckpoint:
// the pseudonyms change what the events say, and the chain is computed
// again over it from the checkpoint, which stays what it was.
func TestTheErasureOfAPurgedTrailComputesItsChainAgainFromTheCheckpoint(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	org := newOrg(t)
	for _, age := range []time.Duration{400 * day, 399 * day, 10 * day, 9 * day} {
		ev := &store.AuditEvent{OrgID: org.ID, Action: "member.added", ActorType: "member", ActorID: "mem_ada", ActorEmail: "ada@example.test",
			Data: []byte(`{"after":{"email":"bob@example.test"}}`), OccurredAt: now.Add(-age)}
		if _, err := store.InsertEvent(ctx, testDB, ev); err != nil {
			t.Fatal(err)
		}
	}
	before := purge(t, store.PurgeInput{OrgID: org.ID, At: now}).Checkpoint
	if _, err := testDB.NewRaw("UPDATE organizations SET state = 'deleting', deletion_due_at = now() WHERE id = ?", org.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.EraseOrganization(ctx, testDB, store.EraseRequest{OrgID: org.ID, OperationID: "op_none", WorkflowID: "organization/" + org.ID}); err != nil {
		t.Fatal(err)
	}
	var emails []string
	if err := testDB.NewRaw("SELECT actor_email FROM audit_events WHERE org_id = ? AND actor_email LIKE '%example.test'", org.ID).Scan(ctx, &emails); err != nil || len(emails) != 0 {
		t.Fatalf("emails left: %v %v", emails, err)
	}
	rep := verified(t, org.ID)
	if rep.Checkpoint.Seq != before.Seq || !bytes.Equal(rep.Checkpoint.Hash, before.Hash) || rep.Checked != 3 {
		t.Fatalf("after the erasure: %+v, checkpoint before %+v", rep, before)
	}
}
