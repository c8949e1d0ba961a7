package intelliauth

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The statuses of a tenant's operation (Operation.Status). running and
// stuck have not ended; a stuck saga waits for an operator's repair.
const (
	OperationRunning     = "running"
	OperationStuck       = "stuck"
	OperationSucceeded   = "succeeded"
	OperationFailed      = "failed"
	OperationCancelled   = "cancelled"
	OperationCompensated = "compensated"
)

// OperationError is an operation that ended other than succeeded (failed,
// compensated or cancelled) or is stuck, with the step at fault and the
// reason the API gives for it (the step's last error).
type OperationError struct {
	Operation Operation
	// Step is the step that failed or is stuck; empty when no step says.
	Step string
	// Reason is the step's last error, or the operation's status when no
	// step gives one.
	Reason string
}

func (e *OperationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "intelliauth: operation %s (%s of tenant %s) is %s", e.Operation.Id, e.Operation.Kind, e.Operation.TenantId, e.Operation.Status)
	if e.Step != "" {
		b.WriteString(" at step " + e.Step)
	}
	if e.Reason != "" && e.Reason != e.Operation.Status {
		b.WriteString(": " + e.Reason)
	}
	return b.String()
}

// operationError is op's error, or nil when it succeeded or is running.
func operationError(op Operation) *OperationError {
	if op.Status == OperationSucceeded || op.Status == OperationRunning {
		return nil
	}
	e := &OperationError{Operation: op, Reason: op.Status}
	// The step at fault is the last one that failed; a stuck saga's step
	// failed its every attempt.
	for i := len(op.Steps) - 1; i >= 0; i-- {
		if s := op.Steps[i]; s.Status == "failed" || (s.LastError != nil && *s.LastError != "") {
			e.Step = s.Name
			if s.LastError != nil && *s.LastError != "" {
				e.Reason = *s.LastError
			}
			break
		}
	}
	return e
}

// poller paces polls: 250 ms, growing by half each time to 2 s.
type poller struct{ next time.Duration }

func (p *poller) wait(ctx context.Context) error {
	if p.next == 0 {
		p.next = 250 * time.Millisecond
	}
	t := time.NewTimer(p.next)
	defer t.Stop()
	p.next = min(p.next*3/2, 2*time.Second)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// FindOperation returns one of a tenant's operations. The API lists them
// oldest first; a tenant has a handful.
func (c *Client) FindOperation(ctx context.Context, orgID, tenantID, operationID string) (Operation, error) {
	for op, err := range All[Operation](ctx, func(ctx context.Context, cursor string) (*http.Response, error) {
		return c.ListTenantOperations(ctx, orgID, tenantID, &ListTenantOperationsParams{Cursor: Cursor(cursor)})
	}) {
		if err != nil {
			return Operation{}, err
		}
		if op.Id == operationID {
			return op, nil
		}
	}
	return Operation{}, &APIError{StatusCode: http.StatusNotFound, Code: "NOT_FOUND",
		Message: fmt.Sprintf("tenant %s has no operation %s", tenantID, operationID)}
}

// lastOperation is the tenant's latest operation (the list's last: it is
// oldest first); none for a tenant without one.
func (c *Client) lastOperation(ctx context.Context, orgID, tenantID string) (Operation, error) {
	var last Operation
	for op, err := range All[Operation](ctx, func(ctx context.Context, cursor string) (*http.Response, error) {
		return c.ListTenantOperations(ctx, orgID, tenantID, &ListTenantOperationsParams{Cursor: Cursor(cursor)})
	}) {
		if err != nil {
			return Operation{}, err
		}
		last = op
	}
	return last, nil
}

// WaitForOperation polls a tenant's operation until it settles, and
// returns it when it succeeded. An operation that failed, was compensated
// or cancelled, or is stuck (its saga waits for an operator) is an
// *OperationError naming the step and the reason the API gives. ctx bounds
// the wait.
func (c *Client) WaitForOperation(ctx context.Context, orgID, tenantID, operationID string) (Operation, error) {
	var p poller
	for {
		op, err := c.FindOperation(ctx, orgID, tenantID, operationID)
		if err != nil {
			return Operation{}, err
		}
		if op.Status != OperationRunning {
			if e := operationError(op); e != nil {
				return op, e
			}
			return op, nil
		}
		if err := p.wait(ctx); err != nil {
			return op, fmt.Errorf("intelliauth: waiting for operation %s, %s: %w", operationID, op.Status, err)
		}
	}
}

// WaitForTenant polls a tenant until it is in one of states with no
// operation running (current_operation_id null), and returns it. When its
// operation fails or is stuck it returns an *OperationError; when it
// settles in another state, with its last operation succeeded, an error
// saying so. ctx bounds the wait.
func (c *Client) WaitForTenant(ctx context.Context, orgID, tenantID string, states ...TenantState) (Tenant, error) {
	if len(states) == 0 {
		return Tenant{}, fmt.Errorf("intelliauth: WaitForTenant needs at least one state")
	}
	var p poller
	for {
		t, err := Data[Tenant](c.GetTenant(ctx, orgID, tenantID))
		if err != nil {
			return Tenant{}, err
		}
		if t.CurrentOperationId == nil {
			if slices.Contains(states, t.State) {
				return t, nil
			}
			// Settled elsewhere: the last operation says why.
			last, err := c.lastOperation(ctx, orgID, tenantID)
			if err != nil {
				return t, err
			}
			if e := operationError(last); last.Id != "" && e != nil {
				return t, e
			}
			return t, fmt.Errorf("intelliauth: tenant %s is %s with no operation running, not %s", tenantID, t.State, joinStates(states))
		}
		op, err := c.FindOperation(ctx, orgID, tenantID, *t.CurrentOperationId)
		if err != nil {
			return t, err
		}
		if op.Status != OperationRunning && op.Status != OperationSucceeded {
			return t, operationError(op)
		}
		if err := p.wait(ctx); err != nil {
			return t, fmt.Errorf("intelliauth: waiting for tenant %s to be %s, it is %s: %w", tenantID, joinStates(states), t.State, err)
		}
	}
}

func joinStates(states []TenantState) string {
	s := make([]string, len(states))
	for i, st := range states {
		s[i] = string(st)
	}
	return strings.Join(s, " or ")
}
