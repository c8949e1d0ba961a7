package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/internal/store"
)

var streamBase = store.EventBase{ActorType: "member", ActorID: "mem_test", ActorEmail: "owner@example.test"}

// newStream creates an https stream of the organisation, its secret
// sealed under keys, with the actions filter.
func newStream(t *testing.T, org store.Organization, keys *seal.Ring, actions ...string) store.AuditStream {
	t.Helper()
	id := domain.NewID(domain.PrefixAuditStream)
	secret, err := keys.Seal([]byte("cpw_secret"), store.StreamSealContext(id, store.SealedSecret))
	if err != nil {
		t.Fatal(err)
	}
	ndjson := "ndjson"
	b := streamBase
	b.OrgID = org.ID
	s, err := store.CreateStream(context.Background(), testDB, store.NewStream{ID: id, OrgID: org.ID, Name: "SIEM " + id[len(id)-6:],
		Kind: "https", Endpoint: "https://siem.example.com/in", Format: &ndjson, Actions: actions, SecretSealed: secret, CreatedBy: "usr_test"}, b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeEvents(t *testing.T, orgID string, actions ...string) []*store.AuditEvent {
	t.Helper()
	var out []*store.AuditEvent
	for _, a := range actions {
		ev := event(orgID, a, "")
		if _, err := store.InsertEvent(context.Background(), testDB, ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func reread(t *testing.T, id string) store.AuditStream {
	t.Helper()
	s, found, err := store.StreamForDelivery(context.Background(), testDB, id)
	if err != nil || !found {
		t.Fatalf("stream %s: found %v, %v", id, found, err)
	}
	return s
}

func TestAStreamStartsAtItsChainsHeadWithItsOwnCreationNextAndTheQuotaHoldsAgainstConcurrentCreations(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	keys := ring(t, mustKey(t, "k1"))
	writeEvents(t, org.ID, "member.added", "member.added")
	s := newStream(t, org, keys)
	if s.CursorSeq != 2 || s.Status != "active" || s.Version != 1 {
		t.Fatalf("a new stream: cursor %d, status %s, version %d; want 2, active, 1", s.CursorSeq, s.Status, s.Version)
	}
	// Its times are its creation's, as written and as read back (the list
	// pages by created_at).
	read, err := store.StreamByID(ctx, testDB, org.ID, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{s.CreatedAt, s.UpdatedAt, read.CreatedAt, read.UpdatedAt} {
		if time.Since(at) > time.Minute || time.Since(at) < 0 {
			t.Fatalf("a new stream's times: created %s, updated %s; read back %s, %s", s.CreatedAt, s.UpdatedAt, read.CreatedAt, read.UpdatedAt)
		}
	}
	evs, err := store.StreamEvents(ctx, testDB, org.ID, s.CursorSeq, 100, nil, 10)
	if err != nil || len(evs) != 1 || evs[0].Action != domain.ActionStreamCreated || evs[0].TargetID != s.ID {
		t.Fatalf("what the new stream delivers first: %+v, %v", evs, err)
	}

	// MaxStreams at once, beside the one above: one is refused.
	var wg sync.WaitGroup
	errs := make(chan error, store.MaxStreams)
	for range store.MaxStreams {
		wg.Go(func() {
			id := domain.NewID(domain.PrefixAuditStream)
			sealed, _ := keys.Seal([]byte("x"), store.StreamSealContext(id, store.SealedCredential))
			b := streamBase
			b.OrgID = org.ID
			_, err := store.CreateStream(ctx, testDB, store.NewStream{ID: id, OrgID: org.ID, Name: "dd", Kind: "datadog",
				Endpoint: "https://http-intake.logs.datadoghq.com/api/v2/logs", CredentialSealed: sealed, CreatedBy: "usr_test"}, b)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	refused := 0
	for err := range errs {
		if domain.ErrorCode(err) == domain.CodeConflict {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if refused != 1 {
		t.Fatalf("%d creations refused, want 1 (quota %d)", refused, store.MaxStreams)
	}
}

func mustKey(t *testing.T, id string) string {
	t.Helper()
	k, err := seal.NewKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestAStreamReadsTheEventsItsFilterTakesInChainOrderWithinItsRange(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	writeEvents(t, org.ID, "tenant.created", "member.added", "tenant.provisioned", "tenant_x.other", "member.removed", "invitation.created")
	for _, tc := range []struct {
		name        string
		filter      []string
		after, upTo int64
		want        []int64
	}{
		{"no filter takes every event", nil, 0, 6, []int64{1, 2, 3, 4, 5, 6}},
		{"a family takes its own actions, not a family that starts alike", []string{"tenant.*"}, 0, 6, []int64{1, 3}},
		{"exact actions and families mix", []string{"member.removed", "invitation.*"}, 0, 6, []int64{5, 6}},
		{"the range bounds what is read", []string{"tenant.*", "member.*"}, 1, 3, []int64{2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := store.StreamEvents(ctx, testDB, org.ID, tc.after, tc.upTo, tc.filter, 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, e := range evs {
				got = append(got, e.Seq)
				if !domain.StreamMatches(tc.filter, e.Action) {
					t.Errorf("%s is not what domain.StreamMatches takes", e.Action)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("seqs %v, want %v", got, tc.want)
			}
		})
	}
}

func TestADeliveryMovesTheCursorOnlyFromWhereItReadItAndAReplayInBetweenWins(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	s := newStream(t, org, ring(t, mustKey(t, "k1")))
	evs := writeEvents(t, org.ID, "member.added", "member.added", "member.added")
	if ok, err := store.MarkInflight(ctx, testDB, s, s.CursorSeq, evs[1].Seq); err != nil || !ok {
		t.Fatalf("MarkInflight = %v, %v", ok, err)
	}
	if got := reread(t, s.ID); got.InflightSeq == nil || *got.InflightSeq != evs[1].Seq {
		t.Fatalf("in flight: %v", got.InflightSeq)
	}
	d := &store.Delivery{StreamID: s.ID, Outcome: store.DeliveryDelivered, FirstEventID: evs[0].ID, LastEventID: evs[1].ID,
		FirstSeq: evs[0].Seq, LastSeq: evs[1].Seq, EventCount: 2, IdempotencyKey: "k", Status: 200, Attempt: 1}
	m, err := store.MoveCursor(ctx, testDB, s.ID, s.CursorSeq, evs[1].Seq, d)
	if err != nil || !m.Moved || m.Status != domain.StreamActive {
		t.Fatalf("MoveCursor = %+v, %v", m, err)
	}
	got := reread(t, s.ID)
	if got.CursorSeq != evs[1].Seq || got.CursorEventID == nil || *got.CursorEventID != evs[1].ID || got.LastDeliveryAt == nil || got.InflightSeq != nil {
		t.Fatalf("after a delivery: %+v", got)
	}

	// A replay from the first event, then the delivery that had read the
	// cursor before it: the replay's cursor stays, and a batch it had in
	// flight is forgotten.
	if ok, err := store.MarkInflight(ctx, testDB, s, got.CursorSeq, evs[2].Seq); err != nil || !ok {
		t.Fatalf("MarkInflight = %v, %v", ok, err)
	}
	b := streamBase
	b.OrgID = org.ID
	r, err := store.ReplayStream(ctx, testDB, org.ID, s.ID, store.Replay{FromEventID: evs[0].ID}, b)
	if err != nil || r.CursorSeq != evs[0].Seq-1 || r.Version != 2 {
		t.Fatalf("replay: cursor %d version %d, %v; want %d, 2", r.CursorSeq, r.Version, err, evs[0].Seq-1)
	}
	m, err = store.MoveCursor(ctx, testDB, s.ID, got.CursorSeq, evs[2].Seq, nil)
	if err != nil || m.Moved {
		t.Fatalf("a move from a cursor a replay moved: %+v, %v", m, err)
	}
	if got := reread(t, s.ID); got.CursorSeq != evs[0].Seq-1 || got.InflightSeq != nil {
		t.Fatalf("the replay lost: cursor %d, in flight %v", got.CursorSeq, got.InflightSeq)
	}
	if ok, _ := store.MarkInflight(ctx, testDB, r, got.CursorSeq, evs[2].Seq); ok {
		t.Fatal("a batch was marked in flight from a cursor a replay moved")
	}
	// A replay never moves the cursor forward, and a replay by time finds
	// the first event at or after it.
	r, err = store.ReplayStream(ctx, testDB, org.ID, s.ID, store.Replay{Since: time.Now().Add(time.Hour)}, b)
	if err != nil || r.CursorSeq != evs[0].Seq-1 {
		t.Fatalf("a replay from the future: cursor %d, %v", r.CursorSeq, err)
	}
	r, err = store.ReplayStream(ctx, testDB, org.ID, s.ID, store.Replay{Since: evs[0].OccurredAt.Add(-time.Hour)}, b)
	if err != nil || r.CursorSeq != 0 {
		t.Fatalf("a replay from before the first event: cursor %d, %v", r.CursorSeq, err)
	}
	other := newOrg(t)
	foreign := writeEvents(t, other.ID, "member.added")[0]
	if _, err := store.ReplayStream(ctx, testDB, org.ID, s.ID, store.Replay{FromEventID: foreign.ID}, b); domain.ErrorCode(err) != domain.CodeBadRequest {
		t.Fatalf("a replay from another organisation's event: %v", err)
	}
	if n := len(eventsOf(t, s.ID, domain.ActionStreamReplayed)); n != 3 {
		t.Fatalf("%d replayed events, want 3", n)
	}
}

// A delivery reads the stream, then a person pauses it, changes its
// endpoint or filter, or it is suspended: no batch starts from that read,
// so nothing is sent after the change's answer to a receiver or by a
// filter the stream no longer has.
func TestNoBatchStartsFromAReadAPersonsChangeOrASuspensionOvertook(t *testing.T) {
	ctx := context.Background()
	b := streamBase
	for _, tc := range []struct {
		name   string
		change func(s store.AuditStream) error
	}{
		{"paused", func(s store.AuditStream) error {
			_, err := store.ChangeStream(ctx, testDB, s.OrgID, s.ID, store.StreamChange{Paused: new(true)}, b)
			return err
		}},
		{"its endpoint changed", func(s store.AuditStream) error {
			_, err := store.ChangeStream(ctx, testDB, s.OrgID, s.ID, store.StreamChange{Endpoint: new("https://other.example.test/hook")}, b)
			return err
		}},
		{"its filter changed", func(s store.AuditStream) error {
			_, err := store.ChangeStream(ctx, testDB, s.OrgID, s.ID, store.StreamChange{Actions: &[]string{"tenant.*"}}, b)
			return err
		}},
		{"suspended", func(s store.AuditStream) error {
			_, err := testDB.NewUpdate().Model((*store.AuditStream)(nil)).Set("status = 'suspended'").Where("id = ?", s.ID).Exec(ctx)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			org := newOrg(t)
			b.OrgID = org.ID
			s := newStream(t, org, ring(t, mustKey(t, "k1")))
			evs := writeEvents(t, org.ID, "member.added", "member.added")
			read, found, err := store.StreamForDelivery(ctx, testDB, s.ID)
			if err != nil || !found {
				t.Fatalf("StreamForDelivery = %v, %v", found, err)
			}
			if err := tc.change(read); err != nil {
				t.Fatal(err)
			}
			if ok, err := store.MarkInflight(ctx, testDB, read, read.CursorSeq, evs[1].Seq); err != nil || ok {
				t.Fatalf("MarkInflight after the stream was %s = %v, %v; want false", tc.name, ok, err)
			}
			if got := reread(t, s.ID); got.InflightSeq != nil {
				t.Fatalf("in flight: %v", *got.InflightSeq)
			}
		})
	}
}

func TestAFailingStreamKeepsTheStartOfItsFailuresIsSuspendedOnceAndAResumeStartsAfresh(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	s := newStream(t, org, ring(t, mustKey(t, "k1")))
	fail := func(msg string) store.StreamFailure {
		t.Helper()
		f, err := store.RecordFailure(ctx, testDB, &store.Delivery{StreamID: s.ID, Outcome: store.DeliveryFailed, FirstEventID: "evt_a",
			LastEventID: "evt_b", EventCount: 1, IdempotencyKey: "k", Attempt: 1, Error: msg})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	first := fail("connection refused")
	second := fail("receiver answered 503 Service Unavailable")
	if first.Status != domain.StreamFailing || first.Since == nil || second.Since == nil || !second.Since.Equal(*first.Since) {
		t.Fatalf("failures: %+v then %+v", first, second)
	}
	if got := reread(t, s.ID); got.LastError != "receiver answered 503 Service Unavailable" || got.LastErrorAt == nil {
		t.Fatalf("last error: %q", got.LastError)
	}
	if ok, err := store.SuspendStream(ctx, testDB, s.ID, first.Since.Add(time.Second), "wf", "k-other"); err != nil || ok {
		t.Fatalf("a suspension for another run of failures: %v, %v", ok, err)
	}
	for i := range 2 { // the second, a retried write, finds it suspended
		ok, err := store.SuspendStream(ctx, testDB, s.ID, *first.Since, "wf", "audit-stream/"+s.ID+"/suspend/1")
		if err != nil || ok != (i == 0) || reread(t, s.ID).Status != "suspended" {
			t.Fatalf("suspension %d: %v, %v", i, ok, err)
		}
	}
	if n := len(eventsOf(t, s.ID, domain.ActionStreamSuspended)); n != 1 {
		t.Fatalf("%d suspended events, want 1", n)
	}
	// A failure of a suspended (or paused) stream is logged and changes
	// nothing else.
	if f := fail("late"); f.Status != domain.StreamSuspended {
		t.Fatalf("a late failure made it %s", f.Status)
	}
	b := streamBase
	b.OrgID = org.ID
	resumed, err := store.ChangeStream(ctx, testDB, org.ID, s.ID, store.StreamChange{Paused: new(false)}, b)
	if err != nil || resumed.Status != "active" || resumed.FailingSince != nil {
		t.Fatalf("resumed: %+v, %v", resumed, err)
	}
	if ev := eventsOf(t, s.ID, domain.ActionStreamResumed); len(ev) != 1 || !jsonHas(ev[0].Data, `"status_before":"suspended"`) {
		t.Fatalf("resumed events: %+v", ev)
	}
	paused, err := store.ChangeStream(ctx, testDB, org.ID, s.ID, store.StreamChange{Paused: new(true), Name: new("Renamed")}, b)
	if err != nil || paused.Status != "paused" || paused.Name != "Renamed" {
		t.Fatalf("paused: %+v, %v", paused, err)
	}
	if ev := eventsOf(t, s.ID, domain.ActionStreamUpdated); len(ev) != 1 || !jsonHas(ev[0].Data, `"name":"Renamed"`) {
		t.Fatalf("updated events: %+v", ev)
	}
	if f := fail("while paused"); f.Status != domain.StreamPaused {
		t.Fatalf("a failure while paused made it %s", f.Status)
	}
}

func TestADeletedStreamKeepsNoSecretAndItsWorkflowFindsItDeleted(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	s := newStream(t, org, ring(t, mustKey(t, "k1")))
	b := streamBase
	b.OrgID = org.ID
	if _, err := store.DeleteStream(ctx, testDB, org.ID, s.ID, b); err != nil {
		t.Fatal(err)
	}
	got := reread(t, s.ID)
	if got.DeletedAt == nil || got.SecretSealed != nil || got.CredentialSealed != nil {
		t.Fatalf("deleted stream: %+v", got)
	}
	if _, err := store.StreamByID(ctx, testDB, org.ID, s.ID); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("a deleted stream is found: %v", err)
	}
	if _, err := store.DeleteStream(ctx, testDB, org.ID, s.ID, b); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("deleted twice: %v", err)
	}
}

func TestTheNotifierSeesTheActiveStreamsBehindAHeadThatMovedAndRetentionTheirFloor(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	keys := ring(t, mustKey(t, "k1"))
	behind, paused, caughtUp := newStream(t, org, keys), newStream(t, org, keys), newStream(t, org, keys)
	b := streamBase
	b.OrgID = org.ID
	if _, err := store.ChangeStream(ctx, testDB, org.ID, paused.ID, store.StreamChange{Paused: new(true)}, b); err != nil {
		t.Fatal(err)
	}
	writeEvents(t, org.ID, "member.added")
	length, err := store.ChainLength(ctx, testDB, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := store.MoveCursor(ctx, testDB, caughtUp.ID, reread(t, caughtUp.ID).CursorSeq, length, nil); err != nil || !m.Moved {
		t.Fatalf("move: %+v %v", m, err)
	}
	ws, err := store.WakeableStreams(ctx, testDB, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, w := range ws {
		if w.OrgID == org.ID {
			mine = append(mine, w.ID)
			if w.Length != length {
				t.Errorf("length %d, want %d", w.Length, length)
			}
		}
	}
	if fmt.Sprint(mine) != fmt.Sprint([]string{behind.ID}) {
		t.Fatalf("wakeable %v, want only %s", mine, behind.ID)
	}
	time.Sleep(20 * time.Millisecond)
	if ws, _ := store.WakeableStreams(ctx, testDB, 10*time.Millisecond); slices.ContainsFunc(ws, func(w store.WakeableStream) bool { return w.OrgID == org.ID }) {
		t.Fatalf("wakeable though its head has not moved lately: %v", ws)
	}
	floor, ok, err := store.StreamFloor(ctx, testDB, org.ID)
	if err != nil || !ok || floor != behind.CursorSeq {
		t.Fatalf("floor %d %v %v, want %d (the paused stream holds nothing)", floor, ok, err, behind.CursorSeq)
	}
	lags, err := store.StreamLags(ctx, testDB, []store.AuditStream{reread(t, behind.ID), reread(t, caughtUp.ID)})
	if err != nil || lags[behind.ID].Events != length-behind.CursorSeq || lags[behind.ID].Oldest == nil || lags[caughtUp.ID].Events != 0 || lags[caughtUp.ID].Oldest != nil {
		t.Fatalf("lags %+v, %v", lags, err)
	}
}

func TestTheDeliveryLogKeepsItsNewestRowsOfTheLastWeek(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	s := newStream(t, org, ring(t, mustKey(t, "k1")))
	now := time.Now().UTC()
	var rows []store.Delivery
	for i := range store.KeptDeliveries + 5 {
		rows = append(rows, store.Delivery{ID: domain.NewID(domain.PrefixDelivery), StreamID: s.ID, AttemptedAt: now.Add(-time.Duration(i) * time.Minute),
			Outcome: "delivered", FirstEventID: "a", LastEventID: "b", EventCount: 1, IdempotencyKey: "k", Attempt: 1})
	}
	rows = append(rows, store.Delivery{ID: domain.NewID(domain.PrefixDelivery), StreamID: s.ID, AttemptedAt: now.Add(-8 * 24 * time.Hour),
		Outcome: "failed", FirstEventID: "a", LastEventID: "b", EventCount: 1, IdempotencyKey: "k", Attempt: 1})
	if _, err := testDB.NewInsert().Model(&rows).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.PruneStreamDeliveries(ctx, testDB, s.ID); err != nil {
		t.Fatal(err)
	}
	kept, err := store.ListStreamDeliveries(ctx, testDB, s.ID, store.Keyset{}, 2000)
	if err != nil || len(kept) != store.KeptDeliveries || !kept[0].AttemptedAt.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("kept %d rows (newest %v), %v", len(kept), kept[0].AttemptedAt, err)
	}
}

func TestAStreamsSecretAndCredentialAreSealedAgainUnderTheRingsNewKeyEachBoundToItsStream(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	oldKey, newKey := mustKey(t, "old"), mustKey(t, "new")
	before, after := ring(t, oldKey), ring(t, newKey, oldKey)
	s := newStream(t, org, before)
	if _, _, err := store.ResealStreams(ctx, testDB, after); err != nil {
		t.Fatal(err)
	}
	got := reread(t, s.ID)
	if seal.KeyID(got.SecretSealed) != "new" {
		t.Fatalf("sealed under %s", seal.KeyID(got.SecretSealed))
	}
	if plain, err := after.Open(got.SecretSealed, store.StreamSealContext(s.ID, store.SealedSecret)); err != nil || string(plain) != "cpw_secret" {
		t.Fatalf("open: %q, %v", plain, err)
	}
	if _, err := after.Open(got.SecretSealed, store.StreamSealContext(s.ID, store.SealedCredential)); err == nil {
		t.Fatal("the secret opens as the stream's credential")
	}
}

// jsonHas reports whether the JSON holds the fragment, as Postgres gives
// jsonb back (a space after each colon and comma removed).
func jsonHas(raw []byte, fragment string) bool {
	var compact []byte
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '"' && (i == 0 || raw[i-1] != '\\') {
			inString = !inString
		}
		if !inString && c == ' ' {
			continue
		}
		compact = append(compact, c)
	}
	return strings.Contains(string(compact), fragment)
}

// A stream's creation and the organisation's events written at the same
// time never deadlock: the creation's lock on the organisation does not
// hold up an event's foreign key while the event holds the chain's head.
func TestStreamsCreatedWhileTheOrganisationWritesEventsNeverDeadlock(t *testing.T) {
	org := newOrg(t)
	keys := ring(t, mustKey(t, "k1"))
	var wg sync.WaitGroup
	errs := make(chan error, 2*store.MaxStreams)
	for range store.MaxStreams {
		wg.Go(func() {
			id := domain.NewID(domain.PrefixAuditStream)
			sealed, _ := keys.Seal([]byte("x"), store.StreamSealContext(id, store.SealedCredential))
			b := streamBase
			b.OrgID = org.ID
			_, err := store.CreateStream(context.Background(), testDB, store.NewStream{ID: id, OrgID: org.ID, Name: "dd", Kind: "datadog",
				Endpoint: "https://http-intake.logs.datadoghq.com/api/v2/logs", CredentialSealed: sealed, CreatedBy: "usr_test"}, b)
			errs <- err
		})
		wg.Go(func() {
			_, err := store.InsertEvent(context.Background(), testDB, event(org.ID, "member.added", ""))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
