package dataplane

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
)

// Fault is what a fault drill does to every attempt of one data-plane step
// (CP_FAULTS, dev only): fail always (Count 0), fail the first Count
// attempts of each tenant, or sleep Delay first.
type Fault struct {
	Fail  bool
	Count int
	Delay time.Duration
}

// Faulty wraps a Plane with fault drills, keyed by step (domain.Steps).
// Attempts are counted per tenant and step for the life of the process,
// across operator retries.
type Faulty struct {
	Inner  Plane
	Faults map[domain.Step]Fault

	mu       sync.Mutex
	attempts map[string]int
}

// ErrInjected is the error of an attempt a fault drill failed.
type ErrInjected struct{ Step domain.Step }

func (e ErrInjected) Error() string {
	return fmt.Sprintf("fault drill: step %s failed (CP_FAULTS)", e.Step)
}

func (f *Faulty) before(ctx context.Context, step domain.Step, t Ref) error {
	fault, ok := f.Faults[step]
	if !ok {
		return nil
	}
	if fault.Delay > 0 {
		select {
		case <-time.After(fault.Delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if !fault.Fail {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.attempts == nil {
		f.attempts = map[string]int{}
	}
	key := t.TenantID + "/" + string(step)
	f.attempts[key]++
	if fault.Count == 0 || f.attempts[key] <= fault.Count {
		return ErrInjected{Step: step}
	}
	return nil
}

func (f *Faulty) run(ctx context.Context, step domain.Step, t Ref, fn func(context.Context, Ref) error) error {
	if err := f.before(ctx, step, t); err != nil {
		return err
	}
	return fn(ctx, t)
}

// CreateSchema is the "schema" step.
func (f *Faulty) CreateSchema(ctx context.Context, t Ref) error {
	return f.run(ctx, domain.StepSchema, t, f.Inner.CreateSchema)
}

// DropSchema is the "drop_schema" step.
func (f *Faulty) DropSchema(ctx context.Context, t Ref) error {
	return f.run(ctx, domain.StepDropSchema, t, f.Inner.DropSchema)
}

// CreateKeys is the "keys" step.
func (f *Faulty) CreateKeys(ctx context.Context, t Ref) error {
	return f.run(ctx, domain.StepKeys, t, f.Inner.CreateKeys)
}

// DeleteKeys is the "delete_keys" step.
func (f *Faulty) DeleteKeys(ctx context.Context, t Ref) error {
	return f.run(ctx, domain.StepDeleteKeys, t, f.Inner.DeleteKeys)
}

// CreateRoute is the "route" step.
func (f *Faulty) CreateRoute(ctx context.Context, t Ref) error {
	return f.run(ctx, domain.StepRoute, t, f.Inner.CreateRoute)
}

// DeleteRoute is the "delete_route" step.
func (f *Faulty) DeleteRoute(ctx context.Context, t Ref) error {
	return f.run(ctx, domain.StepDeleteRoute, t, f.Inner.DeleteRoute)
}

// SuspendRoute is the "suspend_route" step.
func (f *Faulty) SuspendRoute(ctx context.Context, t Ref) error {
	return f.run(ctx, domain.StepSuspendRoute, t, f.Inner.SuspendRoute)
}

// ResumeRoute is the "resume_route" step.
func (f *Faulty) ResumeRoute(ctx context.Context, t Ref) error {
	return f.run(ctx, domain.StepResumeRoute, t, f.Inner.ResumeRoute)
}

// Inspect is never faulted: it is how tests and operators look.
func (f *Faulty) Inspect(ctx context.Context, t Ref) (Resources, error) {
	return f.Inner.Inspect(ctx, t)
}
