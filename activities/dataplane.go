package activities

import (
	"context"
	"errors"
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
	// Heartbeats let Temporal see a dead worker within the heartbeat
	// timeout, not the step's whole time limit.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
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
	dp := a.DataPlane
	return map[domain.Step]func(context.Context, TenantRef) error{
		domain.StepSchema: dp.CreateSchema, domain.StepKeys: dp.CreateKeys, domain.StepRoute: dp.CreateRoute,
		domain.StepDropSchema: dp.DropSchema, domain.StepDeleteKeys: dp.DeleteKeys, domain.StepDeleteRoute: dp.DeleteRoute,
		domain.StepSuspendRoute: dp.SuspendRoute, domain.StepResumeRoute: dp.ResumeRoute,
	}
}
