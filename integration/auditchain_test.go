package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/auditchain"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/internal/store"
)

// chainedWorld is a world whose organisation has n events written through
// the API (renames, organization.updated), with the chain's events by
// seq.
func chainedWorld(t *testing.T, h *harness.Harness, srv *api.Server, n int) (world, map[int64]string) {
	t.Helper()
	w := newWorld(t, h, "team")
	for i := range n {
		if r := req(t, srv, "PATCH", orgPath(w, ""), w.People[domain.RoleOwner].Token, map[string]any{"name": fmt.Sprintf("Renamed %d ü \"%s\"", i, uniq())}); r.Status != 200 {
			t.Fatalf("rename: %d %s", r.Status, r.Raw)
		}
	}
	ids := map[int64]string{}
	evs, err := store.ChainEvents(context.Background(), h.DB, w.Org.ID, 0, 1000)
	if err != nil || len(evs) != n {
		t.Fatalf("%d events in the chain, want %d (%v)", len(evs), n, err)
	}
	for _, e := range evs {
		ids[e.Seq] = e.ID
	}
	return w, ids
}

// tamper runs sql as a superuser would, with the immutability trigger off
// in its transaction only.
func tamper(t *testing.T, h *harness.Harness, sqls ...string) {
	t.Helper()
	err := h.DB.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
			return err
		}
		for _, q := range sqls {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// exportLines is the organisation's NDJSON export, as a customer saves it.
func exportLines(t *testing.T, srv *api.Server, w world) []byte {
	t.Helper()
	r := httptest.NewRequest("GET", orgPath(w, "/events"), nil)
	r.Header.Set("Authorization", "Bearer "+w.People[domain.RoleOwner].Token)
	r.Header.Set("Accept", "application/x-ndjson")
	resp := testApp(t, srv, r, 60_000)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("export: %d %v", resp.StatusCode, err)
	}
	return body
}

func signedHead(t *testing.T, srv *api.Server, w world, token string) auditchain.Head {
	t.Helper()
	r := req(t, srv, "GET", orgPath(w, "/audit-chain"), token, nil)
	if r.Status != 200 {
		t.Fatalf("audit-chain: %d %s", r.Status, r.Raw)
	}
	var h auditchain.Head
	if err := json.Unmarshal(r.Env.Data, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func publishedKeys(t *testing.T, srv *api.Server) []auditchain.PublicKey {
	t.Helper()
	r := req(t, srv, "GET", "/api/v1/audit-chain/keys", "", nil)
	var keys struct {
		Keys []auditchain.PublicKey `json:"keys"`
	}
	if r.Status != 200 || json.Unmarshal(r.Env.Data, &keys) != nil {
		t.Fatalf("keys: %d %s", r.Status, r.Raw)
	}
	return keys.Keys
}

// TestAuditVerifyNamesEachTamperOfATrailWrittenThroughTheAPI writes events
// through the API, tampers with one of them (one kind of tamper per fresh
// trail) as a superuser with the immutability trigger off, and asserts
// that verification from the database and from the NDJSON export names
// the event and what was done.
func TestAuditVerifyNamesEachTamperOfATrailWrittenThroughTheAPI(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	for _, tc := range []struct {
		name   string
		sql    func(orgID string) []string
		want   func(ids map[int64]string) string
		export bool // the export shows it too (a deleted last event needs the head)
	}{
		{"untouched", func(string) []string { return nil }, func(map[int64]string) string { return "" }, true},
		{"edited", func(org string) []string {
			return []string{fmt.Sprintf(`UPDATE audit_events SET data = jsonb_set(data, '{after,name}', '"Innocent"') WHERE org_id = '%s' AND seq = 4`, org)}
		}, func(ids map[int64]string) string {
			return fmt.Sprintf("event %s (seq 4): hash does not match its content (edited)", ids[4])
		}, true},
		{"deleted", func(org string) []string {
			return []string{fmt.Sprintf(`DELETE FROM audit_events WHERE org_id = '%s' AND seq = 5`, org)}
		}, func(ids map[int64]string) string {
			return fmt.Sprintf("event 5 missing (deleted): the chain goes from seq 4 to event %s (seq 6)", ids[6])
		}, true},
		{"swapped", func(org string) []string {
			return []string{
				fmt.Sprintf(`UPDATE audit_events SET seq = 1000003 WHERE org_id = '%s' AND seq = 3`, org),
				fmt.Sprintf(`UPDATE audit_events SET seq = 3 WHERE org_id = '%s' AND seq = 4`, org),
				fmt.Sprintf(`UPDATE audit_events SET seq = 4 WHERE org_id = '%s' AND seq = 1000003`, org),
			}
		}, func(ids map[int64]string) string {
			return fmt.Sprintf("event %s (seq 3): its hash says it was seq 4 (reordered)", ids[4])
		}, true},
		{"the last deleted", func(org string) []string {
			return []string{fmt.Sprintf(`DELETE FROM audit_events WHERE org_id = '%s' AND seq = 7`, org)}
		}, func(map[int64]string) string {
			return "event 7 missing (deleted): the head counts 7 events, the trail ends at seq 6"
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, ids := chainedWorld(t, h, srv, 7)
			head, keys := signedHead(t, srv, w, w.People[domain.RoleOwner].Token), publishedKeys(t, srv)
			if err := head.Verify(keys); err != nil || head.Length != 7 {
				t.Fatalf("the signed head (length %d) with the published keys: %v", head.Length, err)
			}
			tamper(t, h, tc.sql(w.Org.ID)...)
			want := tc.want(ids)

			rep, err := store.VerifyChain(context.Background(), h.DB, w.Org.ID)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case want == "" && (rep.Problem != nil || rep.Checked != 7):
				t.Fatalf("an untouched trail: %+v", rep)
			case want != "" && (rep.Problem == nil || !strings.Contains(rep.Problem.Message, want)):
				t.Fatalf("from the database: %v, want %q", rep.Problem, want)
			}

			if !tc.export {
				return
			}
			exp, err := auditchain.VerifyExport(bytes.NewReader(exportLines(t, srv, w)), w.Org.ID, &head)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case want == "" && (exp.Problem != nil || exp.Checked != 7):
				t.Fatalf("an untouched export against its signed head: %+v", exp)
			case want != "" && (exp.Problem == nil || !strings.Contains(exp.Problem.Message, want)):
				t.Fatalf("from the export: %v, want %q", exp.Problem, want)
			}
		})
	}
}

// TestAHeadSignedBeforeARotationStillVerifiesWithThePublishedKeys: the
// head is signed by the ring's current key; after a rotation the new key
// signs, and both public keys are published, the current first.
func TestAHeadSignedBeforeARotationStillVerifiesWithThePublishedKeys(t *testing.T) {
	h := harness.Get(t)
	oldKey, _ := seal.NewKey("chain-old")
	newKey, _ := seal.NewKey("chain-new")
	oldRing, _ := seal.ParseRing(oldKey)
	rotated, _ := seal.ParseRing(newKey + "," + oldKey)
	before := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, Keys: oldRing})
	after := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, Keys: rotated})
	w, _ := chainedWorld(t, h, before, 3)

	old := signedHead(t, before, w, w.People[domain.RoleAdmin].Token)
	keys := publishedKeys(t, after)
	if len(keys) != 2 || keys[0].KeyID != "chain-new" || keys[1].KeyID != "chain-old" {
		t.Fatalf("published keys %+v, want the new then the old", keys)
	}
	if err := old.Verify(keys); err != nil || old.KeyID != "chain-old" {
		t.Fatalf("the head signed before the rotation (by %s): %v", old.KeyID, err)
	}
	cur := signedHead(t, after, w, w.People[domain.RoleOwner].Token)
	if err := cur.Verify(keys); err != nil || cur.KeyID != "chain-new" || cur.Head != old.Head || cur.Length != 3 {
		t.Fatalf("the head signed after the rotation: %+v, %v", cur, err)
	}
	// A head whose length was changed does not verify.
	cur.Length = 2
	if cur.Verify(keys) == nil {
		t.Fatal("a head with another length verified")
	}
	// The head is the owners', admins' and readers' of the whole trail.
	if r := req(t, after, "GET", orgPath(w, "/audit-chain"), w.People[domain.RoleViewer].Token, nil); r.Status != 403 {
		t.Fatalf("a viewer's head: %d %s", r.Status, r.Raw)
	}
}

// TestConcurrentEventWritesInOneOrganisationMakeAGaplessChain: 20 renames
// at once through the API; the chain has every one, seq 1 to 20, and
// verifies.
func TestConcurrentEventWritesInOneOrganisationMakeAGaplessChain(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "team")
	var wg sync.WaitGroup
	statuses := make(chan string, 20)
	for i := range 20 {
		wg.Go(func() {
			r := req(t, srv, "PATCH", orgPath(w, ""), w.People[domain.RoleOwner].Token, map[string]any{"name": fmt.Sprintf("Concurrent %d", i)})
			if r.Status != 200 {
				statuses <- fmt.Sprintf("%d %s", r.Status, r.Raw)
			}
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		t.Fatalf("a rename: %s", s)
	}
	rep, err := store.VerifyChain(context.Background(), h.DB, w.Org.ID)
	if err != nil || rep.Problem != nil || rep.Length != 20 || rep.Checked != 20 {
		t.Fatalf("the chain after 20 concurrent writes: %+v, %v", rep, err)
	}
}

// TestTheAuditVerifyCommandExitsOneAndNamesTheEvent runs the binary on a
// trail with an edited event, from the database and from an export
// checked against its signed head.
func TestTheAuditVerifyCommandExitsOneAndNamesTheEvent(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w, ids := chainedWorld(t, h, srv, 5)
	dir := t.TempDir()
	head := req(t, srv, "GET", orgPath(w, "/audit-chain"), w.People[domain.RoleOwner].Token, nil)
	keys := req(t, srv, "GET", "/api/v1/audit-chain/keys", "", nil)
	for name, b := range map[string][]byte{"head.json": []byte(head.Raw), "keys.json": []byte(keys.Raw), "good.ndjson": exportLines(t, srv, w)} {
		if err := os.WriteFile(dir+"/"+name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tamper(t, h, fmt.Sprintf(`UPDATE audit_events SET actor_email = 'someone@else.test' WHERE org_id = '%s' AND seq = 2`, w.Org.ID))
	if err := os.WriteFile(dir+"/bad.ndjson", exportLines(t, srv, w), 0o600); err != nil {
		t.Fatal(err)
	}
	edited := fmt.Sprintf("event %s (seq 2): hash does not match its content (edited)", ids[2])
	for _, tc := range []struct {
		args []string
		exit int
		want string
	}{
		{[]string{"-org", w.Org.ID}, 1, edited},
		{[]string{"-org", w.Org.ID, "-export", dir + "/good.ndjson", "-head", dir + "/head.json", "-keys", dir + "/keys.json"}, 0, "5 events verified (seq 1 to 5); it reaches the head signed at"},
		{[]string{"-org", w.Org.ID, "-export", dir + "/bad.ndjson", "-head", dir + "/head.json", "-keys", dir + "/keys.json"}, 1, edited},
		{[]string{"-org", w.Org.ID, "-head", dir + "/head.json"}, 2, "usage"},
	} {
		cmd := exec.Command(binary(t), append([]string{"audit", "verify"}, tc.args...)...)
		cmd.Env = append(os.Environ(), "CP_DATABASE_URL="+h.DatabaseURL, "CP_LOG_FORMAT=json")
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != tc.exit || !strings.Contains(string(out), tc.want) {
			t.Errorf("audit verify %v: exit %d, want %d with %q:\n%s", tc.args, cmd.ProcessState.ExitCode(), tc.exit, tc.want, out)
		}
	}
}
