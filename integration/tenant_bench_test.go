package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/workflows"
)

// The raw baseline: a workflow with an update that runs one no-op activity
// (as provision runs ReserveTenant), then three no-op activities.
func rawWorkflow(ctx workflow.Context) error {
	return rawSaga(ctx, func(ctx workflow.Context) error {
		// An update handler's context does not carry the workflow's
		// activity options.
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
		return workflow.ExecuteActivity(actx, rawNoop).Get(ctx, nil)
	})
}

// rawSaga is a raw workflow whose "go" update runs update, after which it
// runs three regular no-op activities.
func rawSaga(ctx workflow.Context, update func(workflow.Context) error) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	done := false
	if err := workflow.SetUpdateHandler(ctx, "go", func(ctx workflow.Context) error {
		err := update(ctx)
		done = true
		return err
	}); err != nil {
		return err
	}
	if err := workflow.Await(ctx, func() bool { return done }); err != nil {
		return err
	}
	for range 3 {
		if err := workflow.ExecuteActivity(ctx, rawNoop).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

func rawNoop(context.Context) error { return nil }

func percentile(d []time.Duration, p int) time.Duration {
	slices.Sort(d)
	return d[(len(d)-1)*p/100]
}

// BenchmarkTenantCreation prints, side by side, (a) the 202 latency of
// POST …/tenants against the raw Update-With-Start of a no-op workflow, 300
// sequential requests each, with the idempotent replay latency; and (b)
// provisioning throughput, 500 tenants with 50 in flight, against raw
// workflows with the same number of no-op activities. Run it with
// go test -run '^$' -bench TenantCreation -benchtime 1x ./integration.
func BenchmarkTenantCreation(b *testing.B) {
	h := harness.Get(b)
	ctx := context.Background()
	if _, err := h.DB.ExecContext(ctx, "INSERT INTO plans (id, name, max_tenants, max_members, requests_per_minute) VALUES ('bench', 'Bench', 100000, 100, 100000) ON CONFLICT DO NOTHING"); err != nil {
		b.Fatal(err)
	}
	w := newWorld(b, h, "bench")
	tq := "bench-" + uniq()
	wk := worker.New(h.Temporal, tq, worker.Options{})
	wk.RegisterWorkflow(workflows.TenantWorkflow)
	wk.RegisterWorkflow(rawWorkflow)
	wk.RegisterActivity(rawNoop)
	dp := &dataplane.Postgres{DB: h.DB, Keys: testKeys()}
	if err := dp.Init(ctx); err != nil {
		b.Fatal(err)
	}
	wk.RegisterActivity(&activities.Activities{DB: h.DB, DataPlane: dp})
	if err := wk.Start(); err != nil {
		b.Fatal(err)
	}
	defer wk.Stop()
	srv := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, TaskQueue: tq})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(ctx)
	base := "http://" + ln.Addr().String() + "/api/v1/organizations/" + w.Org.ID + "/tenants"
	token := w.People[domain.RoleOwner].Token
	var retries atomic.Int64
	// post creates a tenant as a well-behaved client does: a 503 is
	// retried with the same key after its Retry-After.
	post := func(name, key string) time.Duration {
		for {
			req, _ := http.NewRequest("POST", base, strings.NewReader(fmt.Sprintf(`{"name":%q,"environment":"prod"}`, name)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Idempotency-Key", key)
			t0 := time.Now()
			resp, err := http.DefaultClient.Do(req)
			el := time.Since(t0)
			if err != nil {
				b.Error(err)
				return el
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case 202:
				return el
			case 503:
				retries.Add(1)
				time.Sleep(time.Second)
			default:
				b.Errorf("create %s: %d", name, resp.StatusCode)
				return el
			}
		}
	}
	raw := func(id string) time.Duration {
		t0 := time.Now()
		start := h.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{ID: id, TaskQueue: tq,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING}, rawWorkflow)
		hd, err := h.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{StartWorkflowOperation: start,
			UpdateOptions: client.UpdateWorkflowOptions{UpdateID: "go", UpdateName: "go", WaitForStage: client.WorkflowUpdateStageCompleted}})
		if err == nil {
			err = hd.Get(ctx, nil)
		}
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}

	// (a) latency, sequential.
	const n = 300
	var ours, rawLat, replay []time.Duration
	run := uniq()
	for i := range n {
		rawLat = append(rawLat, raw(fmt.Sprintf("raw-%s-%d", run, i)))
		ours = append(ours, post(fmt.Sprintf("a%s%d", run[:6], i), fmt.Sprintf("k-%s-%d", run, i)))
	}
	for i := range n {
		replay = append(replay, post(fmt.Sprintf("a%s%d", run[:6], i), fmt.Sprintf("k-%s-%d", run, i)))
	}
	b.Logf("(a) 202 latency over %d sequential requests:", n)
	b.Logf("    raw Update-With-Start (no-op workflow, one no-op activity): p50 %v  p99 %v", percentile(rawLat, 50), percentile(rawLat, 99))
	b.Logf("    POST /tenants 202:                                          p50 %v  p99 %v  (%.2fx the raw p50)", percentile(ours, 50), percentile(ours, 99), float64(percentile(ours, 50))/float64(percentile(rawLat, 50)))
	b.Logf("    idempotent replay of the same requests:                     p50 %v  p99 %v", percentile(replay, 50), percentile(replay, 99))
	b.ReportMetric(float64(percentile(rawLat, 50).Microseconds())/1000, "raw-p50-ms")
	b.ReportMetric(float64(percentile(ours, 50).Microseconds())/1000, "ours-p50-ms")
	b.ReportMetric(float64(percentile(replay, 99).Microseconds())/1000, "replay-p99-ms")

	// (b) throughput, 50 in flight, until every workflow is done.
	const total, inflight = 500, 50
	through := func(one func(i int)) time.Duration {
		t0 := time.Now()
		sem := make(chan struct{}, inflight)
		var wg sync.WaitGroup
		for i := range total {
			sem <- struct{}{}
			wg.Go(func() { defer func() { <-sem }(); one(i) })
		}
		wg.Wait()
		return time.Since(t0)
	}
	run2 := uniq()
	rawTime := through(func(i int) {
		id := fmt.Sprintf("rawt-%s-%d", run2, i)
		raw(id)
		if err := h.Temporal.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
			b.Error(err)
		}
	})
	oursTime := through(func(i int) {
		name := fmt.Sprintf("t%s%d", run2[:6], i)
		post(name, "t-"+run2+"-"+fmt.Sprint(i))
		for {
			var state string
			if err := h.DB.NewRaw("SELECT state FROM tenants WHERE org_id = ? AND name = ? AND state <> 'failed'", w.Org.ID, name).Scan(ctx, &state); err == nil && state == "active" {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	rawRate, oursRate := total/rawTime.Seconds(), total/oursTime.Seconds()
	b.Logf("(b) %d to completion, %d in flight:", total, inflight)
	b.Logf("    raw workflows (update + 3 no-op activities): %.1f/s", rawRate)
	b.Logf("    tenants reaching active:                     %.1f/s  (%.0f%% of raw; %d creates answered 503 and were retried)", oursRate, 100*oursRate/rawRate, retries.Load())
	b.ReportMetric(rawRate, "raw-wf/s")
	b.ReportMetric(oursRate, "tenants/s")
}
