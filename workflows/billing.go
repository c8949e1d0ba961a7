package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// BillingWorkflow applies an organisation's Stripe events (SPEC §10), one
// at a time, in the order their signals came: each through
// ApplyBillingEvent, which marks the event applied in the transaction of
// its effect (exactly once) and refuses to let an event older than the
// last one applied regress the state (in order). A failed payment starts
// a durable timer to the end of its grace; when it fires, EndBillingGrace
// moves the organisation to the free plan unless it paid meanwhile, and
// its subscription is cancelled in Stripe. The events themselves are in
// Postgres: the workflow holds their ids until applied, and the grace.
func BillingWorkflow(ctx workflow.Context, p BillingParams) error {
	billingRevisionOf(ctx, p)
	if err := p.validate(); err != nil {
		return err
	}
	b := &billingRun{p: p, log: log.With(workflow.GetLogger(ctx), "org_id", p.OrgID), events: workflow.GetSignalChannel(ctx, SignalStripeEvent)}
	if c := p.Continued; c != nil {
		b.graceEndsAt, b.pending = c.GraceEndsAt, slices.Clone(c.Pending)
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (BillingStatus, error) { return b.status(), nil }); err != nil {
		return err
	}
	for {
		b.take()
		if len(b.pending) > 0 {
			id := b.pending[0]
			b.apply(ctx, id)
			b.pending = b.pending[1:]
			continue
		}
		if b.applied >= billingEventsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			next := p
			next.Revision, next.Continued = BillingRevisionCurrent, &BillingContinued{GraceEndsAt: b.graceEndsAt, Pending: b.pending}
			b.log.Info("billing continues as new", "applied", b.applied)
			return workflow.NewContinueAsNewError(ctx, BillingWorkflowType, next)
		}
		if b.graceEndsAt != nil && !workflow.Now(ctx).Before(*b.graceEndsAt) {
			b.endGrace(ctx)
			continue
		}
		if idle := b.wait(ctx); idle {
			if b.take(); len(b.pending) == 0 {
				b.log.Info("billing idle: its workflow ends until the next event")
				return nil
			}
		}
	}
}

// billingRun is one run's state.
type billingRun struct {
	p           BillingParams
	log         log.Logger
	events      workflow.ReceiveChannel
	pending     []string
	graceEndsAt *time.Time
	applied     int
	last        string
	lastOutcome string
}

// take queues every event signalled so far, each once.
func (b *billingRun) take() {
	var s BillingEventSignal
	for b.events.ReceiveAsync(&s) {
		b.queue(s.EventID)
	}
}

func (b *billingRun) queue(id string) {
	if id != "" && !slices.Contains(b.pending, id) {
		b.pending = append(b.pending, id)
	}
}

// wait waits for an event, or the grace's end, or, with no grace running,
// billingIdle; it reports whether it was the idle wait that ran out.
func (b *billingRun) wait(ctx workflow.Context) (idle bool) {
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	d, isIdle := billingIdle, true
	if b.graceEndsAt != nil {
		d, isIdle = b.graceEndsAt.Sub(workflow.Now(ctx)), false
	}
	fired := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(b.events, func(c workflow.ReceiveChannel, _ bool) {
		var s BillingEventSignal
		c.Receive(ctx, &s)
		b.queue(s.EventID)
	})
	sel.AddFuture(workflow.NewTimer(tctx, d), func(f workflow.Future) { fired = f.Get(ctx, nil) == nil })
	sel.Select(ctx)
	return fired && isIdle
}

// billingActivity is the options of the billing activities: short
// database writes (or a Stripe call), retried for as long as it takes.
func billingActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
}

// apply applies one event. An event that cannot be (it is not stored:
// NOT_FOUND) is logged and passed.
func (b *billingRun) apply(ctx workflow.Context, id string) {
	var a *activities.Billing
	var res activities.BillingEventResult
	err := workflow.ExecuteActivity(billingActivity(ctx), a.ApplyBillingEvent, activities.ApplyBillingEventInput{EventID: id, Grace: b.p.Grace}).Get(ctx, &res)
	if err != nil {
		b.log.Error("a Stripe event could not be applied", "stripe_event_id", id, "error", rootCause(err))
		return
	}
	b.applied++
	b.last, b.lastOutcome = id, res.Outcome
	if res.Status == string(domain.BillingPastDue) && res.GraceEndsAt != nil {
		b.graceEndsAt = res.GraceEndsAt
	} else {
		b.graceEndsAt = nil
	}
	b.log.Info("Stripe event applied", "stripe_event_id", id, "outcome", res.Outcome, "already", res.Already, "status", res.Status)
}

// endGrace ends the grace: the organisation moves to the free plan unless
// it paid, and its subscription is cancelled in Stripe.
func (b *billingRun) endGrace(ctx workflow.Context) {
	var a *activities.Billing
	ends := *b.graceEndsAt
	b.graceEndsAt = nil
	var res activities.GraceEndResult
	err := workflow.ExecuteActivity(billingActivity(ctx), a.EndBillingGrace, activities.EndGraceInput{OrgID: b.p.OrgID, GraceEndsAt: ends,
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID}).Get(ctx, &res)
	if err != nil {
		b.log.Error("the end of the grace could not be written", "error", rootCause(err))
		return
	}
	b.log.Info("billing grace over", "moved_to_free", res.Ended)
	if res.Ended && res.SubscriptionID != "" {
		if err := workflow.ExecuteActivity(billingActivity(ctx), a.CancelBillingSubscription,
			activities.CancelSubscriptionInput{OrgID: b.p.OrgID, SubscriptionID: res.SubscriptionID}).Get(ctx, nil); err != nil {
			b.log.Error("the subscription could not be cancelled in Stripe", "error", rootCause(err))
		}
	}
}

func (b *billingRun) status() BillingStatus {
	return BillingStatus{OrgID: b.p.OrgID, GraceEndsAt: b.graceEndsAt, Applied: b.applied, Pending: slices.Clone(b.pending),
		Last: b.last, LastOutcome: b.lastOutcome}
}
