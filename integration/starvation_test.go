package integration

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/workflows"
)

// TestADataPlaneStepHoldingEveryActivitySlotDoesNotDelayACreation sizes a
// worker as production does for a pool of two connections (one activity
// slot), holds the first tenant's schema step, and creates a
// second tenant while that step holds the slot: the second creation is
// still answered 202 at once, because the writes a request waits for do not
// queue behind data-plane steps.
func TestADataPlaneStepHoldingEveryActivitySlotDoesNotDelayACreation(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	dp := &dataplane.Postgres{DB: h.DB, Keys: testKeys()}
	if err := dp.Init(ctx); err != nil {
		t.Fatal(err)
	}
	plane := &holdFirstSchema{Plane: dp, started: make(chan struct{}), release: make(chan struct{})}
	tq := harness.TaskQueue(t)
	opts := workflows.WorkerOptions(2)
	if opts.MaxConcurrentActivityExecutionSize != 1 {
		t.Fatalf("a pool of 2 gives %d activity slots, want 1", opts.MaxConcurrentActivityExecutionSize)
	}
	wk := worker.New(h.Temporal, tq, opts)
	wk.RegisterWorkflow(workflows.TenantWorkflow)
	wk.RegisterActivity(&activities.Activities{DB: h.DB, DataPlane: plane})
	if err := wk.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wk.Stop)
	// Released before the worker stops (cleanups run last first), or the
	// stop would wait out the held step.
	t.Cleanup(func() { close(plane.release) })
	srv := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, TaskQueue: tq, Saga: testSaga(time.Second), WorkerBound: 3 * time.Second})
	w := newWorld(t, h, "team")
	l := lifecycle{srv: srv}

	if r := l.create(t, w, "first", "first-key"); r.Status != 202 {
		t.Fatalf("first creation: %d %s", r.Status, r.Raw)
	}
	select {
	case <-plane.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the first tenant's schema step never started")
	}
	r := l.create(t, w, "second", "second-key")
	if r.Status != 202 {
		t.Fatalf("second creation while a step holds every activity slot: %d %s", r.Status, r.Raw)
	}
	var second lifecycleData
	r.data(t, &second)
	if second.Tenant.Name != "second" || second.Tenant.State != string(domain.StateProvisioning) {
		t.Fatalf("second creation answered %+v", second.Tenant)
	}
}

// holdFirstSchema holds the first schema step until release is closed.
type holdFirstSchema struct {
	dataplane.Plane
	once             sync.Once
	started, release chan struct{}
}

func (p *holdFirstSchema) CreateSchema(ctx context.Context, t dataplane.Ref) error {
	first := false
	p.once.Do(func() { first = true })
	if first {
		close(p.started)
		select {
		case <-p.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return p.Plane.CreateSchema(ctx, t)
}
