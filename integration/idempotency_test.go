package integration

import (
	"context"
	"sync"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

func TestAMutationRetriedWithItsKeyIsAnsweredOnceFromTheStoredAnswer(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	owner := w.People[domain.RoleOwner].Token
	key := "rename-" + uniq()
	first := httpReq(t, srv, "PATCH", orgPath(w, ""), owner, map[string]any{"name": "Once"}, key)
	again := httpReq(t, srv, "PATCH", orgPath(w, ""), owner, map[string]any{"name": "Once"}, key)
	if first.Status != 200 || again.Status != 200 || first.Raw != again.Raw || again.Header.Get("Idempotent-Replayed") != "true" || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first %d %s\nagain %d %s (%q)", first.Status, first.Raw, again.Status, again.Raw, again.Header.Get("Idempotent-Replayed"))
	}
	if r := httpReq(t, srv, "PATCH", orgPath(w, ""), owner, map[string]any{"name": "Twice"}, key); r.Status != 422 || r.code() != "IDEMPOTENCY_KEY_REUSED" {
		t.Fatalf("reuse: %d %s", r.Status, r.Raw)
	}
	// A refusal is an answer too: replayed, not run again.
	bad := "bad-" + uniq()
	a := httpReq(t, srv, "PATCH", orgPath(w, "/members/"+w.People[domain.RoleOwner].MemberID), owner, map[string]any{"role": "viewer"}, bad)
	b := httpReq(t, srv, "PATCH", orgPath(w, "/members/"+w.People[domain.RoleOwner].MemberID), owner, map[string]any{"role": "viewer"}, bad)
	if a.Status != 409 || a.Raw != b.Raw || b.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("refusal: %d %s / %d %s", a.Status, a.Raw, b.Status, b.Raw)
	}
	// The same key in another organisation is another key.
	other := newWorld(t, h, "team")
	if r := httpReq(t, srv, "PATCH", orgPath(other, ""), other.People[domain.RoleOwner].Token, map[string]any{"name": "Elsewhere"}, key); r.Status != 200 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("another organisation: %d %s", r.Status, r.Raw)
	}
}

func TestConcurrentDuplicateInvitationsAreAnsweredOnce(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	key := "invite-" + uniq()
	body := map[string]any{"email": "dup-" + uniq() + "@example.test", "role": "viewer"}
	const n = 10
	var wg sync.WaitGroup
	results := make([]response, n)
	for i := range n {
		wg.Go(func() {
			results[i] = httpReq(t, srv, "POST", orgPath(w, "/invitations"), w.People[domain.RoleAdmin].Token, body, key)
		})
	}
	wg.Wait()
	for _, r := range results {
		if r.Status != 201 || r.Raw != results[0].Raw {
			t.Fatalf("answers differ: %d %s vs %s", r.Status, r.Raw, results[0].Raw)
		}
	}
	var invitations, events int
	if err := h.DB.NewRaw("SELECT count(*) FROM invitations WHERE org_id = ?", w.Org.ID).Scan(context.Background(), &invitations); err != nil {
		t.Fatal(err)
	}
	if err := h.DB.NewRaw("SELECT count(*) FROM audit_events WHERE org_id = ? AND action = 'invitation.created'", w.Org.ID).Scan(context.Background(), &events); err != nil {
		t.Fatal(err)
	}
	if invitations != 1 || events != 1 {
		t.Fatalf("invitations = %d, events = %d; want 1 and 1", invitations, events)
	}
}
