package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/auditchain"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// awkward is event data whose JSON text Postgres's jsonb does not give
// back as written: keys out of order and nested, escapes, unicode beyond
// the BMP, numbers written 1.0, 1e3, 1.50 and -0, a key given twice.
const awkward = `{"z":{"b":[1.0,1e3,1.50,-0,0.1,12345678901234567890],"a":"\u00e9\ud83d\ude00\t\"\\\/<>&\u2028"},` +
	`"a":null,"m":{"\u00e9":1,"e":2,"E":3},"k":1,"k":2,"nul":"a\\u0000b"}`

// verifyChain recomputes the organisation's chain from the database, as
// `controlplane audit verify` does, and fails on its first problem or a
// head that is not its last event.
func verifyChain(t *testing.T, db bun.IDB, orgID string) int64 {
	t.Helper()
	ctx := context.Background()
	v := auditchain.NewVerifier()
	for after := int64(0); ; {
		evs, err := store.ChainEvents(ctx, db, orgID, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			b, err := json.Marshal(e.View())
			if err != nil {
				t.Fatal(err)
			}
			r, err := auditchain.RecordOf(b)
			if err != nil {
				t.Fatal(err)
			}
			if p, err := v.Feed(r); err != nil || p != nil {
				t.Fatalf("chain of %s: %v %v", orgID, p, err)
			}
			after = e.Seq
		}
		if len(evs) < 100 {
			break
		}
	}
	if p, err := v.Close(); err != nil || p != nil {
		t.Fatalf("chain of %s: %v %v", orgID, p, err)
	}
	head, err := store.ReadChainHead(ctx, db, orgID)
	if err != nil {
		t.Fatal(err)
	}
	if p := v.CheckHead(head.Length, head.Head); p != nil {
		t.Fatalf("chain of %s: %s", orgID, p.Message)
	}
	return head.Length
}

func event(orgID, action string, data string) *store.AuditEvent {
	ev := &store.AuditEvent{OrgID: orgID, Action: action, ActorType: "system", ActorID: "test"}
	if data != "" {
		ev.Data = json.RawMessage(data)
	}
	return ev
}

func TestWhatAnEventsHashCoversIsWhatPostgresGivesBack(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	behalf := json.RawMessage(`{"type":"member","id":"mem_1","email":"\u00e9@example.test","name":"Zoë"}`)
	ev := event(org.ID, "test.awkward", awkward)
	ev.OnBehalfOf, ev.ActorName, ev.UserAgent = behalf, "Ünïcödé 😀", "agent \"quoted\" \\ <b>"
	ev.OccurredAt = time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	if ok, err := store.InsertEvent(ctx, testDB, ev); err != nil || !ok {
		t.Fatalf("InsertEvent = %v, %v", ok, err)
	}
	var got store.AuditEvent
	if err := testDB.NewSelect().Model(&got).Where("id = ?", ev.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	written, _ := json.Marshal(ev.View())
	read, _ := json.Marshal(got.View())
	cw, err := auditchain.Canonical(written)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := auditchain.Canonical(read)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cw, cr) {
		t.Fatalf("canonical form written\n%s\nread back\n%s", cw, cr)
	}
	if !bytes.Equal(got.Hash, auditchain.Link(auditchain.Genesis, cr)) || got.Seq != 1 {
		t.Fatalf("the first event has seq %d and hash %x", got.Seq, got.Hash)
	}
	if want := "2026-12-03T09:00:00.123456Z"; got.View().OccurredAt.Format(time.RFC3339Nano) != want {
		t.Fatalf("occurred_at = %s, want %s (microseconds, UTC)", got.View().OccurredAt.Format(time.RFC3339Nano), want)
	}
	// The number jsonb would keep to the digit is stored as the double the
	// hash covers, and the key given twice as its last value.
	sameJSON(t, "data", got.Data, `{"z":{"b":[1,1000,1.5,0,0.1,12345678901234567000],"a":"é😀\t\"\\/<>&\u2028"},"a":null,"m":{"é":1,"e":2,"E":3},"k":2,"nul":"a\\u0000b"}`)
	verifyChain(t, testDB, org.ID)
}

func TestEventsOfAnOrganisationFormAGaplessChainThatVerifiesAndADuplicateTakesNoSeq(t *testing.T) {
	ctx := context.Background()
	org, other := newOrg(t), newOrg(t)
	key := "chain-dedup-" + org.ID
	for i := range 12 {
		ev := event(org.ID, "test.chained", fmt.Sprintf(`{"i":%d,"nested":{"b":%d,"a":"x"}}`, i, i))
		if i == 5 {
			ev.DedupKey = &key
		}
		if _, err := store.InsertEvent(ctx, testDB, ev); err != nil {
			t.Fatal(err)
		}
		if _, err := store.InsertEvent(ctx, testDB, event(other.ID, "test.other", "")); err != nil {
			t.Fatal(err)
		}
	}
	again := event(org.ID, "test.chained", `{"again":true}`)
	again.DedupKey = &key
	if ok, err := store.InsertEvent(ctx, testDB, again); err != nil || ok || again.Seq != 0 {
		t.Fatalf("the event written again: inserted %v, seq %d, %v", ok, again.Seq, err)
	}
	if n := verifyChain(t, testDB, org.ID); n != 12 {
		t.Fatalf("the chain has %d events, want 12", n)
	}
	if n := verifyChain(t, testDB, other.ID); n != 12 {
		t.Fatalf("the other organisation's chain has %d events, want 12", n)
	}
}

// Each writer holds its transaction open a while after its event, so the
// next waits for the head: seq order is commit order, with no gap.
func TestConcurrentWritersOfOneOrganisationMakeOneGaplessChainInCommitOrder(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	var mu sync.Mutex
	var committed []int64
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			err := testDB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				ev := event(org.ID, "test.concurrent", fmt.Sprintf(`{"writer":%d}`, i))
				if _, err := store.InsertEvent(ctx, tx, ev); err != nil {
					return err
				}
				time.Sleep(5 * time.Millisecond)
				mu.Lock() // released after the commit: commits are recorded in order
				committed = append(committed, ev.Seq)
				return nil
			})
			mu.Unlock()
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, seq := range committed {
		if seq != int64(i+1) {
			t.Fatalf("commit %d had seq %d: %v", i+1, seq, committed)
		}
	}
	if n := verifyChain(t, testDB, org.ID); n != 20 {
		t.Fatalf("the chain has %d events, want 20", n)
	}
}

// insertUnchained writes an event as the release before the chain did
// (no seq, no hash).
func insertUnchained(t *testing.T, orgID, action string, at time.Time) string {
	t.Helper()
	ev := store.AuditEvent{ID: domain.NewID(domain.PrefixEvent), OrgID: orgID, Action: action, ActorType: "system",
		Data: json.RawMessage(`{"written":  "before the chain", "n": 1.0}`), OccurredAt: at}
	if _, err := testDB.NewInsert().Model(&ev).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ev.ID
}

func TestEventsWrittenBeforeTheChainAreChainedOldestFirstBeforeAnyNewOne(t *testing.T) {
	ctx := context.Background()
	org, other := newOrg(t), newOrg(t)
	now := time.Now().UTC()
	second := insertUnchained(t, org.ID, "test.old", now.Add(-time.Hour))
	first := insertUnchained(t, org.ID, "test.old", now.Add(-2*time.Hour))
	for range 3 {
		insertUnchained(t, other.ID, "test.old", now.Add(-time.Minute))
	}
	// The next event of the organisation chains its backlog first.
	ev := event(org.ID, "test.new", "")
	if _, err := store.InsertEvent(ctx, testDB, ev); err != nil {
		t.Fatal(err)
	}
	var seqs []struct {
		ID  string `bun:"id"`
		Seq int64  `bun:"seq"`
	}
	if err := testDB.NewSelect().Table("audit_events").Column("id", "seq").Where("org_id = ?", org.ID).OrderExpr("seq").Scan(ctx, &seqs); err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 3 || seqs[0].ID != first || seqs[1].ID != second || seqs[2].ID != ev.ID || seqs[2].Seq != 3 {
		t.Fatalf("chain order %+v, want the two old events oldest first, then the new one", seqs)
	}
	verifyChain(t, testDB, org.ID)
	// What no event came to chain, the sweep does.
	if _, err := store.ChainBacklogs(ctx, testDB); err != nil {
		t.Fatal(err)
	}
	if n := verifyChain(t, testDB, other.ID); n != 3 {
		t.Fatalf("the swept chain has %d events, want 3", n)
	}
}

func TestAnEventCanBeChainedOnceAndOtherwiseStaysImmutable(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	id := insertUnchained(t, org.ID, "test.old", time.Now())
	hash := bytes.Repeat([]byte{1}, 32)
	for name, sql := range map[string]string{
		"its content changed with its chaining": "UPDATE audit_events SET seq = 1, hash = ?, action = 'test.other' WHERE id = ?",
		"a seq without a hash":                  "UPDATE audit_events SET seq = 1, hash = NULL WHERE octet_length(?::bytea) = 32 AND id = ?",
		"a hash of 31 bytes":                    "UPDATE audit_events SET seq = 1, hash = substring(?::bytea from 2) WHERE id = ?",
	} {
		if res, err := testDB.ExecContext(ctx, sql, hash, id); err == nil {
			n, _ := res.RowsAffected()
			t.Errorf("%s: allowed (%d rows)", name, n)
		}
	}
	if _, err := testDB.ExecContext(ctx, "UPDATE audit_events SET seq = 1, hash = ? WHERE id = ?", hash, id); err != nil {
		t.Fatalf("chaining an unchained event: %v", err)
	}
	for name, sql := range map[string]string{
		"chained again": "UPDATE audit_events SET seq = 2 WHERE id = ?",
		"unchained":     "UPDATE audit_events SET seq = NULL, hash = NULL WHERE id = ?",
		"its hash":      "UPDATE audit_events SET hash = decode(repeat('02', 32), 'hex') WHERE id = ?",
	} {
		if _, err := testDB.ExecContext(ctx, sql, id); err == nil {
			t.Errorf("%s: allowed", name)
		}
	}
}

// A writer that locks the organisation's row (a reservation checking the
// plan's quota) and then writes its event does not deadlock with a writer
// that holds the organisation's chain head while its event's foreign key
// is checked against that row: organisation rows are locked FOR NO KEY
// UPDATE, which a foreign key's check does not wait for.
func TestAnOrganisationLockAndAnEventWriterDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	tx1, err := testDB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback()
	if _, err := store.LockPlan(ctx, tx1, org.ID); err != nil {
		t.Fatal(err)
	}
	// The second writer takes the head, then checks its event's
	// organisation; it must not wait for tx1's lock on that row.
	second := make(chan error, 1)
	go func() {
		second <- testDB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := store.InsertEvent(ctx, tx, event(org.ID, "test.second", ""))
			return err
		})
	}()
	select {
	case err := <-second:
		if err != nil {
			t.Fatalf("the event writer: %v", err)
		}
	case <-time.After(5 * time.Second):
		// Blocked behind tx1: writing tx1's own event now makes the cycle
		// Postgres reports as a deadlock.
		_, err := store.InsertEvent(ctx, tx1, event(org.ID, "test.first", ""))
		t.Fatalf("the event writer waits for the organisation's row lock (tx1's event: %v; the writer: %v)", err, <-second)
	}
	if _, err := store.InsertEvent(ctx, tx1, event(org.ID, "test.first", "")); err != nil {
		t.Fatal(err)
	}
	if err := tx1.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := verifyChain(t, testDB, org.ID); n != 2 {
		t.Fatalf("chain length %d, want 2", n)
	}
}
