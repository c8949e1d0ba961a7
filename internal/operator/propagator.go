package operator

import (
	"context"

	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/internal/seal"
)

type (
	ringKey      struct{}
	assertionKey struct{}
	trustKey     struct{}
)

// Propagator carries an update's assertion from its Temporal header into
// the context its validator and handler run in, with the ring that
// verifies it. Every client the control plane dials has it (the worker's
// is the one that matters); it writes no header of its own.
func Propagator(ring *seal.Ring) workflow.ContextPropagator { return propagator{ring: ring} }

type propagator struct{ ring *seal.Ring }

func (propagator) Inject(context.Context, workflow.HeaderWriter) error { return nil }

func (propagator) InjectFromWorkflow(workflow.Context, workflow.HeaderWriter) error { return nil }

func (propagator) Extract(ctx context.Context, _ workflow.HeaderReader) (context.Context, error) {
	return ctx, nil
}

// ExtractToWorkflow runs for the workflow's start and for each update and
// signal with their own header: an update without an assertion gets none,
// never one inherited from the context it is derived from.
func (p propagator) ExtractToWorkflow(ctx workflow.Context, r workflow.HeaderReader) (workflow.Context, error) {
	var a Assertion
	if pl, ok := r.Get(Header); ok {
		if got, err := FromPayload(pl); err == nil {
			a = got
		}
	}
	ctx = workflow.WithValue(ctx, ringKey{}, p.ring)
	return workflow.WithValue(ctx, assertionKey{}, a), nil
}

// Verified returns the operator of the update running in ctx (what names
// it: its update name) when its assertion holds: sealed for this workflow,
// this update and its id, and fresh. Call it from an update's validator,
// which Temporal runs only when the update arrives, never on replay.
func Verified(ctx workflow.Context, what string) (string, error) {
	if names, ok := ctx.Value(trustKey{}).(func(string) string); ok {
		if info := workflow.GetCurrentUpdateInfo(ctx); info != nil && names(info.ID) != "" {
			return names(info.ID), nil
		}
		return "", ErrMissing
	}
	ring, _ := ctx.Value(ringKey{}).(*seal.Ring)
	a, _ := ctx.Value(assertionKey{}).(Assertion)
	if ring == nil || (a.Operator == "" && len(a.Proof) == 0) {
		return "", ErrMissing
	}
	info := workflow.GetCurrentUpdateInfo(ctx)
	if info == nil {
		return "", ErrMissing
	}
	subject := Subject(workflow.GetInfo(ctx).WorkflowExecution.ID, what, info.ID)
	if err := a.Verify(ring, subject, workflow.Now(ctx)); err != nil {
		return "", err
	}
	return a.Operator, nil
}

// Named is the operator an accepted update's assertion names, as its
// history holds it: what the handler records once the validator verified
// it (and still reads on replay, when the key that sealed it may be gone).
// It is "" when the update carried none.
func Named(ctx workflow.Context) string {
	if names, ok := ctx.Value(trustKey{}).(func(string) string); ok {
		if info := workflow.GetCurrentUpdateInfo(ctx); info != nil {
			return names(info.ID)
		}
		return ""
	}
	a, _ := ctx.Value(assertionKey{}).(Assertion)
	return a.Operator
}

// TrustedPropagator is for unit tests of workflows, whose test environment
// sends updates without headers: an update is taken as verified from the
// operator names gives its id ("": none). A worker never has it.
func TrustedPropagator(names func(updateID string) string) workflow.ContextPropagator {
	return trusted{names: names}
}

type trusted struct {
	propagator
	names func(string) string
}

func (t trusted) ExtractToWorkflow(ctx workflow.Context, _ workflow.HeaderReader) (workflow.Context, error) {
	return workflow.WithValue(ctx, trustKey{}, t.names), nil
}
