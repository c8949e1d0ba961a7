package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// TenantRef is the tenant a data-plane step acts on, as StepInput carries
// it: the data plane's own Ref, named here so that workflows build their
// activity inputs from this package alone.
type TenantRef = dataplane.Ref

// StepInput is one data-plane step of an operation.
type StepInput struct {
	OperationID string
	Tenant      TenantRef
	Step        string
	// Region is the tenant's region, for a step a region's worker runs
	// (ApplyStep); empty for the installation's own data plane.
	Region string `json:",omitempty"`
}

// RunStep runs one data-plane step and records the attempt on the
// operation, so the status view shows attempts and the last error.
func (a *Activities) RunStep(ctx context.Context, in StepInput) error {
	fn, ok := a.steps()[domain.Step(in.Step)]
	if !ok {
		return temporal.NewNonRetryableApplicationError("unknown step "+in.Step, "UNKNOWN_STEP", nil)
	}
	// Only outcomes are written (an attempt's start is in Temporal's
	// history): one write per attempt keeps provisioning throughput up.
	attempt := int(activity.GetInfo(ctx).Attempt)
	stop := heartbeat(ctx)
	defer stop()
	if err := untilAvailable(ctx, in, func() error { return fn(ctx, in.Tenant) }); err != nil {
		public := dataplane.PublicError(err)
		activity.GetLogger(ctx).Warn("step failed", "operation_id", in.OperationID, "step", in.Step, "attempt", attempt, "error", err)
		if rerr := store.UpdateStep(context.WithoutCancel(ctx), a.DB, in.OperationID, in.Step, "failed", attempt, public); rerr != nil {
			return errors.Join(err, rerr)
		}
		// The message is what members see (the operation, the audit
		// event); the cause stays in the worker log and the history.
		return temporal.NewApplicationErrorWithCause(public, "STEP_FAILED", err)
	}
	return untilAvailable(ctx, in, func() error { return store.UpdateStep(ctx, a.DB, in.OperationID, in.Step, "done", attempt, "") })
}

// heartbeat beats for the activity every second until stopped: Temporal
// sees a dead worker within the heartbeat timeout, not the step's whole
// time limit.
func heartbeat(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}

// Region is the activities of a region's worker (`controlplane worker
// --region`): the data-plane steps of the region's tenants, on the
// region's data plane. It holds that data plane only: no control-plane
// database, no other region's credentials.
type Region struct {
	Name      string
	DataPlane dataplane.Plane
}

// ErrOtherRegion is the code of a step sent to a region's worker for a
// tenant of another region: refused for good, never applied to this
// region's data plane.
const ErrOtherRegion = "OTHER_REGION"

// ApplyStep runs one data-plane step of a tenant of the worker's region
// and returns the attempt that succeeded; the saga records the outcome.
// A failure's message is what members see; its cause stays in this
// worker's log and the history.
func (r *Region) ApplyStep(ctx context.Context, in StepInput) (int, error) {
	if in.Region != r.Name {
		return 0, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("a step of a tenant of region %q reached the worker of region %q", in.Region, r.Name), ErrOtherRegion, nil)
	}
	fn, ok := planeSteps(r.DataPlane)[domain.Step(in.Step)]
	if !ok {
		return 0, temporal.NewNonRetryableApplicationError("unknown step "+in.Step, "UNKNOWN_STEP", nil)
	}
	stop := heartbeat(ctx)
	defer stop()
	attempt := int(activity.GetInfo(ctx).Attempt)
	if err := untilAvailable(ctx, in, func() error { return fn(ctx, in.Tenant) }); err != nil {
		activity.GetLogger(ctx).Warn("step failed", "region", r.Name, "operation_id", in.OperationID, "step", in.Step, "attempt", attempt, "error", err)
		return 0, temporal.NewApplicationErrorWithCause(dataplane.PublicError(err), "STEP_FAILED", err)
	}
	return attempt, nil
}

// StepOutcome is the outcome of a region's step, as the saga records it.
type StepOutcome struct {
	OperationID string
	Step        string
	Status      string // done or failed
	Attempt     int
	Error       string `json:",omitempty"`
}

// RecordStep records the outcome of a step a region's worker ran on the
// operation, as RunStep records its own.
func (a *Activities) RecordStep(ctx context.Context, in StepOutcome) error {
	return store.UpdateStep(ctx, a.DB, in.OperationID, in.Step, in.Status, in.Attempt, in.Error)
}

// untilAvailable runs do, and runs it again while it fails because the
// database cannot be reached: an outage of the control plane's own
// database (a restart, a failover) is not the step failing, and must not
// spend the attempts that decide when a saga is stuck. Steps are
// idempotent. The wait ends with the attempt's time limit, which then
// counts as a failed attempt.
func untilAvailable(ctx context.Context, in StepInput, do func() error) error {
	err := do()
	for waited := false; store.Unavailable(err) && ctx.Err() == nil; waited = true {
		if !waited {
			activity.GetLogger(ctx).Warn("step waits for the database", "operation_id", in.OperationID, "step", in.Step, "error", err)
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
		err = do()
	}
	return err
}

func (a *Activities) steps() map[domain.Step]func(context.Context, TenantRef) error {
	return planeSteps(a.DataPlane)
}

// planeSteps are a data plane's methods by the step they carry out.
func planeSteps(dp dataplane.Plane) map[domain.Step]func(context.Context, TenantRef) error {
	return map[domain.Step]func(context.Context, TenantRef) error{
		domain.StepSchema: dp.CreateSchema, domain.StepKeys: dp.CreateKeys, domain.StepRoute: dp.CreateRoute,
		domain.StepDropSchema: dp.DropSchema, domain.StepDeleteKeys: dp.DeleteKeys, domain.StepDeleteRoute: dp.DeleteRoute,
		domain.StepSuspendRoute: dp.SuspendRoute, domain.StepResumeRoute: dp.ResumeRoute,
	}
}
