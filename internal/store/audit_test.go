package store_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

func newOrg(t testing.TB) store.Organization {
	t.Helper()
	now := time.Now().UTC()
	id := domain.NewID(domain.PrefixOrganization)
	org := store.Organization{ID: id, Slug: "o-" + strings.ToLower(id[len(id)-8:]), Name: "Org", PlanID: "team", CreatedAt: now, UpdatedAt: now}
	if _, err := testDB.NewInsert().Model(&org).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return org
}

// TestEveryTextOfAnAuditEventIsStoredWithoutNULOrInvalidUTF8 writes an
// event whose every string, and every string and key of its JSON, holds a
// NUL or a byte that is not UTF-8, as a caller that forgot to clean a
// header would: Postgres refuses both in text and jsonb, and a writer that
// retries would retry for ever. The event is written, NULs removed and
// bad bytes replaced.
func TestEveryTextOfAnAuditEventIsStoredWithoutNULOrInvalidUTF8(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	hostile := func() *store.AuditEvent {
		key := "dedup\x00" + org.ID
		return &store.AuditEvent{OrgID: org.ID, Action: "test.text\x00", ActorType: "member", ActorID: "mem_\x00x",
			ActorEmail: "a\x00@example.test", ActorName: "bot\xff", TargetType: "tenant", TargetID: "tnt_x\x00",
			RequestID: "req\x00", WorkflowID: "wf\xff", ClientAddr: "127.0.0.1\x00", UserAgent: "a\x00b \xff", DedupKey: &key,
			OnBehalfOf: json.RawMessage(`{"type":"member","email":"b\u0000@example.test"}`),
			Data:       json.RawMessage(`{"name":"a\u0000b","list":["\u0000",1.50,{"k\u0000":"x\\u0000 stays: it is a backslash, not a NUL"}],"n":null}`)}
	}
	ev := hostile()
	inserted, err := store.InsertEvent(ctx, testDB, ev)
	if err != nil || !inserted {
		t.Fatalf("InsertEvent = %v, %v", inserted, err)
	}

	var got store.AuditEvent
	if err := testDB.NewSelect().Model(&got).Where("id = ?", ev.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	texts := map[string][2]string{
		"action":      {got.Action, "test.text"},
		"actor_id":    {got.ActorID, "mem_x"},
		"actor_email": {got.ActorEmail, "a@example.test"},
		"actor_name":  {got.ActorName, "bot\uFFFD"},
		"target_id":   {got.TargetID, "tnt_x"},
		"request_id":  {got.RequestID, "req"},
		"workflow_id": {got.WorkflowID, "wf\uFFFD"},
		"client_addr": {got.ClientAddr, "127.0.0.1"},
		"user_agent":  {got.UserAgent, "ab \uFFFD"},
		"dedup_key":   {*got.DedupKey, "dedup" + org.ID},
	}
	for column, v := range texts {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", column, v[0], v[1])
		}
	}
	sameJSON(t, "on_behalf_of", got.OnBehalfOf, `{"type":"member","email":"b@example.test"}`)
	sameJSON(t, "data", got.Data, `{"name":"ab","list":["",1.50,{"k":"x\\u0000 stays: it is a backslash, not a NUL"}],"n":null}`)

	// The key was cleaned before the conflict check: a retry finds it.
	if inserted, err := store.InsertEvent(ctx, testDB, hostile()); err != nil || inserted {
		t.Fatalf("a retry of the event: InsertEvent = %v, %v; want it found", inserted, err)
	}
}

func TestASessionsUserAgentAndAddressAreStoredWithoutNULOrInvalidUTF8(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	u := store.User{ID: domain.NewID(domain.PrefixUser), Email: "s-" + strings.ToLower(domain.NewID("")[14:]) + "@example.test", Name: "S", CreatedAt: now, UpdatedAt: now}
	if _, err := testDB.NewInsert().Model(&u).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	_, s, err := store.CreateSession(ctx, testDB, u.ID, time.Hour, "127.0.0.1\x00", "a\x00b \xff")
	if err != nil {
		t.Fatal(err)
	}
	var got store.Session
	if err := testDB.NewSelect().Model(&got).Where("token_hash = ?", s.TokenHash).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if got.UserAgent != "ab \uFFFD" || got.ClientAddr != "127.0.0.1" {
		t.Fatalf("session's user agent %q and address %q", got.UserAgent, got.ClientAddr)
	}
}

func sameJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}
