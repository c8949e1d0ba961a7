package integration

import (
	"context"
	"encoding/hex"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/auditchain"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

const day = 24 * time.Hour

// retentionWorker runs the retention workflow and its activity on a task
// queue of the test's own.
func retentionWorker(t *testing.T, h *harness.Harness) string {
	t.Helper()
	tq := harness.TaskQueue(t)
	h.StartWorker(t, tq, func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(workflows.AuditRetentionWorkflow, workflow.RegisterOptions{Name: workflows.RetentionWorkflowType})
		r.RegisterActivity(&activities.Activities{DB: h.DB})
	})
	return tq
}

// agedEvents writes one event of the organisation per age, in order, each
// occurred that long ago, through the chain's one writer.
func agedEvents(t *testing.T, h *harness.Harness, orgID string, ages ...time.Duration) {
	t.Helper()
	now := time.Now()
	for _, age := range ages {
		ev := &store.AuditEvent{OrgID: orgID, Action: "tenant.created", ActorType: "system", ActorID: "test",
			TargetType: "tenant", TargetID: domain.NewID(domain.PrefixTenant), Data: []byte(`{"after":{"name":"old"}}`), OccurredAt: now.Add(-age)}
		if _, err := store.InsertEvent(context.Background(), h.DB, ev); err != nil {
			t.Fatal(err)
		}
	}
}

func seqsOf(t *testing.T, h *harness.Harness, orgID string) []int64 {
	t.Helper()
	var seqs []int64
	if err := h.DB.NewRaw("SELECT seq FROM audit_events WHERE org_id = ? ORDER BY seq", orgID).Scan(context.Background(), &seqs); err != nil {
		t.Fatal(err)
	}
	return seqs
}

// runRetention starts one retention run directly (as the Schedule does)
// and waits for its result.
func runRetention(t *testing.T, h *harness.Harness, tq string) activities.RetentionProgress {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := h.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "retention-test-" + uniq(), TaskQueue: tq},
		workflows.RetentionWorkflowType, workflows.RetentionParams{Revision: workflows.RetentionRevisionCurrent})
	if err != nil {
		t.Fatal(err)
	}
	var done activities.RetentionProgress
	if err := run.Get(ctx, &done); err != nil {
		t.Fatal(err)
	}
	return done
}

// TestTheRetentionScheduleLeavesATrailOfItsWindowThatStillVerifies: an
// organisation on the free plan (30 days) has 40 events of 60 to 41 days
// ago, then 3 written through the API now. The Schedule, created and
// then updated as a second worker's start does, is triggered; its run
// purges the 40, and the chain verifies from the database and from an
// export against a head signed after the purge (its checkpoint signed
// with it), with audit verify too.
func TestTheRetentionScheduleLeavesATrailOfItsWindowThatStillVerifies(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	ctx := context.Background()
	w := newWorld(t, h, "free")
	var ages []time.Duration
	for i := range 40 {
		ages = append(ages, 60*day-time.Duration(i)*11*time.Hour)
	}
	agedEvents(t, h, w.Org.ID, ages...)
	owner := w.People[domain.RoleOwner].Token
	for i := range 3 {
		if r := req(t, srv, "PATCH", orgPath(w, ""), owner, map[string]any{"name": "Kept " + string(rune('A'+i))}); r.Status != 200 {
			t.Fatalf("rename: %d %s", r.Status, r.Raw)
		}
	}

	tq := retentionWorker(t, h)
	id := "audit-retention-" + uniq()
	started := ensureAndTriggerSchedule(t, h, id, tq, workflows.RetentionWorkflowType, workflows.EnsureRetentionSchedule)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var done activities.RetentionProgress
	if err := h.Temporal.GetWorkflow(wctx, started.WorkflowID, started.FirstExecutionRunID).Get(wctx, &done); err != nil {
		t.Fatal(err)
	}
	if done.Events < 40 || done.Orgs < 1 {
		t.Fatalf("the run purged %+v", done)
	}
	recordHistoryAs(t, h, started.WorkflowID, started.FirstExecutionRunID, workflows.RetentionHistoryPrefix()+"-pass")

	if got := seqsOf(t, h, w.Org.ID); len(got) != 3 || got[0] != 41 {
		t.Fatalf("events left %v, want seqs 41–43", got)
	}
	rep, err := store.VerifyChain(ctx, h.DB, w.Org.ID)
	if err != nil || rep.Problem != nil || rep.Checkpoint.Seq != 40 || rep.Checked != 3 {
		t.Fatalf("from the database: %+v %v", rep, err)
	}

	// The signed head names the checkpoint, and says how far back the
	// trail goes.
	r := req(t, srv, "GET", orgPath(w, "/audit-chain"), owner, nil)
	var answer struct {
		auditchain.Head
		Retention struct {
			Plan     string     `json:"plan"`
			Days     int        `json:"audit_retention_days"`
			StartsAt *time.Time `json:"trail_starts_at"`
		} `json:"retention"`
	}
	r.data(t, &answer)
	head := answer.Head
	if err := head.Verify(publishedKeys(t, srv)); err != nil || head.Length != 43 || head.Checkpoint == nil || head.Checkpoint.Seq != 40 ||
		head.Checkpoint.Hash != hex.EncodeToString(rep.Checkpoint.Hash) {
		t.Fatalf("signed head %+v: %v", head, err)
	}
	if answer.Retention.Plan != "free" || answer.Retention.Days != 30 || answer.Retention.StartsAt == nil || time.Since(*answer.Retention.StartsAt) > time.Hour {
		t.Fatalf("retention %+v", answer.Retention)
	}

	// The export says where the trail starts, and verifies against the
	// head from its checkpoint.
	hr := httptest.NewRequest("GET", orgPath(w, "/events"), nil)
	hr.Header.Set("Authorization", "Bearer "+owner)
	hr.Header.Set("Accept", "application/x-ndjson")
	resp := testApp(t, srv, hr, 60_000)
	export, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Header.Get("Audit-Trail-Starts-After") != "40" || resp.Header.Get("Audit-Trail-Checkpoint") != head.Checkpoint.Hash {
		t.Fatalf("export headers %v (%v)", resp.Header, err)
	}
	exp, err := auditchain.VerifyExport(strings.NewReader(string(export)), w.Org.ID, &head)
	if err != nil || exp.Problem != nil || exp.First != 41 || exp.Checked != 3 {
		t.Fatalf("the export against the signed head: %+v %v", exp, err)
	}

	dir := t.TempDir()
	keys := req(t, srv, "GET", "/api/v1/audit-chain/keys", "", nil)
	for name, b := range map[string][]byte{"head.json": []byte(r.Raw), "keys.json": []byte(keys.Raw), "export.ndjson": export} {
		if err := os.WriteFile(dir+"/"+name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-org", w.Org.ID}, "3 events verified after its checkpoint (seq 40, hash " + head.Checkpoint.Hash},
		{[]string{"-org", w.Org.ID, "-export", dir + "/export.ndjson", "-head", dir + "/head.json", "-keys", dir + "/keys.json"},
			"3 events verified (seq 41 to 43); it reaches the head signed at"},
	} {
		cmd := exec.Command(binary(t), append([]string{"audit", "verify"}, tc.args...)...)
		cmd.Env = append(os.Environ(), "CP_DATABASE_URL="+h.DatabaseURL, "CP_LOG_FORMAT=json")
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 0 || !strings.Contains(string(out), tc.want) {
			t.Errorf("audit verify %v: exit %d, want 0 with %q:\n%s", tc.args, cmd.ProcessState.ExitCode(), tc.want, out)
		}
	}
}

// TestAStreamsCursorHoldsRetentionBackForAtMostSevenDays: a stream that
// has delivered up to seq 2 keeps the events after it that are past the
// window by less than 7 days; those past it by more go.
func TestAStreamsCursorHoldsRetentionBackForAtMostSevenDays(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	w := newWorld(t, h, "free")
	// Past the 30 days by 20, 9, 5 and 3 days.
	agedEvents(t, h, w.Org.ID, 50*day, 39*day, 35*day, 33*day)
	stream := domain.NewID(domain.PrefixAuditStream)
	secret, err := h.Keys.Seal([]byte("cpw_secret"), store.StreamSealContext(stream, store.SealedSecret))
	if err != nil {
		t.Fatal(err)
	}
	ndjson := "ndjson"
	if _, err := store.CreateStream(ctx, h.DB, store.NewStream{ID: stream, OrgID: w.Org.ID, Name: "SIEM", Kind: "https", Endpoint: "https://siem.example.com/in",
		Format: &ndjson, SecretSealed: secret, CreatedBy: w.People[domain.RoleOwner].UserID},
		store.EventBase{OrgID: w.Org.ID, ActorType: "member", ActorID: w.People[domain.RoleOwner].MemberID}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.DB.NewRaw("UPDATE audit_streams SET cursor_seq = 1 WHERE id = ?", stream).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	tq := retentionWorker(t, h)

	runRetention(t, h, tq)
	// Seq 1 was delivered, seq 2 is past the streams' bound: purged; 3
	// and 4 wait for the stream, and its creation is new.
	if got := seqsOf(t, h, w.Org.ID); len(got) != 3 || got[0] != 3 {
		t.Fatalf("events left %v, want seqs 3–5", got)
	}
	if _, err := h.DB.NewRaw("UPDATE audit_streams SET cursor_seq = 4 WHERE id = ?", stream).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	runRetention(t, h, tq)
	if got := seqsOf(t, h, w.Org.ID); len(got) != 1 || got[0] != 5 {
		t.Fatalf("once delivered: events left %v, want seq 5", got)
	}
	if rep, err := store.VerifyChain(ctx, h.DB, w.Org.ID); err != nil || rep.Problem != nil || rep.Checkpoint.Seq != 4 {
		t.Fatalf("chain %+v %v", rep, err)
	}
}

// TestARetriedRetentionPassResumesAfterTheOrganisationItsHeartbeatNames:
// an attempt given the heartbeat of one that stopped after organisation a
// leaves a alone and purges b.
func TestARetriedRetentionPassResumesAfterTheOrganisationItsHeartbeatNames(t *testing.T) {
	h := harness.Get(t)
	a, b := newWorld(t, h, "free"), newWorld(t, h, "free")
	if a.Org.ID > b.Org.ID {
		a, b = b, a
	}
	agedEvents(t, h, a.Org.ID, 40*day, 39*day)
	agedEvents(t, h, b.Org.ID, 40*day, 39*day)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	acts := &activities.Activities{DB: h.DB}
	env.RegisterActivity(acts)
	env.SetHeartbeatDetails(activities.RetentionProgress{After: a.Org.ID, Orgs: 7, Events: 1000})
	val, err := env.ExecuteActivity(acts.PurgeAuditTrails, activities.RetentionInput{At: time.Now(), BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	var done activities.RetentionProgress
	if err := val.Get(&done); err != nil || done.Orgs < 8 || done.Events < 1002 || done.After < b.Org.ID {
		t.Fatalf("resumed pass: %+v %v", done, err)
	}
	if got := seqsOf(t, h, a.Org.ID); len(got) != 2 {
		t.Fatalf("the organisation before the heartbeat's was purged: %v", got)
	}
	if got := seqsOf(t, h, b.Org.ID); len(got) != 0 {
		t.Fatalf("the organisation after it kept %v", got)
	}
}

// ensureAndTriggerSchedule ensures the Schedule twice (created, then
// updated, as a second worker's start does), checks that it starts
// workflowType on tq daily with overlaps skipped, triggers it and answers
// the run it started.
func ensureAndTriggerSchedule(t *testing.T, h *harness.Harness, id, tq, workflowType string,
	ensure func(ctx context.Context, c client.Client, id, taskQueue string) error) *client.ScheduleWorkflowExecution {
	t.Helper()
	ctx := context.Background()
	for range 2 {
		if err := ensure(ctx, h.Temporal, id, tq); err != nil {
			t.Fatal(err)
		}
	}
	sched := h.Temporal.ScheduleClient().GetHandle(ctx, id)
	t.Cleanup(func() { _ = sched.Delete(context.Background()) })
	desc, err := sched.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction); !ok || a.Workflow != workflowType || a.TaskQueue != tq ||
		desc.Schedule.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || len(desc.Schedule.Spec.Intervals) != 1 || desc.Schedule.Spec.Intervals[0].Every != day {
		t.Fatalf("schedule %+v %+v %+v", desc.Schedule.Action, desc.Schedule.Policy, desc.Schedule.Spec)
	}
	if err := sched.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the triggered schedule started no run within a minute")
		}
		if desc, err = sched.Describe(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(desc.Info.RecentActions); n > 0 {
			return desc.Info.RecentActions[n-1].StartWorkflowResult
		}
	}
}
