package domain

import (
	"slices"
	"time"
)

// Transition is one row of the tenant lifecycle: what an operation of its
// kind starts from, ends in, runs, needs and writes. Lifecycle is the one
// place these rules are written; the saga, the activities, the API's routes
// and its `actions`, the OpenAPI document and the drift check read it.
//
// Running sagas read the table too: a change to a row changes what they do
// next, so it is gated by a workflow revision (workflows/revision.go) like
// any other change to the saga, even when the replay test does not notice.
type Transition struct {
	Kind OpKind
	// Path is the last segment of the transition's route, under
	// /tenants/{tenant_id}/; empty for provision, which POST /tenants starts.
	Path string
	// From are the states the transition may start from with no operation
	// running on the tenant.
	From []State
	// During is, for a transition that calls off another while it runs
	// (restore, during a decommission's grace period), that operation's
	// kind: it starts then and only then, and From is the state the tenant
	// is in meanwhile.
	During OpKind
	// To is the state a success leaves the tenant in.
	To State
	// Failed is the state a compensated operation leaves the tenant in;
	// empty: the state it started from.
	Failed State
	// Steps are the data-plane steps it runs from each state it starts
	// from, in order; an operator's compensation undoes them.
	Steps map[State][]Step
	// Final are the steps that follow, after the grace period if there is
	// one: nothing undoes them, a failing one can only be retried.
	Final []Step
	// Action is the role permission a member needs; Scope is what a
	// service account's scopes must hold.
	Action Action
	Scope  Scope
	// Events are the audit actions it writes.
	Events TransitionEvents
	// Summary and Description document the route.
	Summary, Description string
}

// TransitionEvents are the audit actions of a transition, each written in
// the transaction of the record it names.
type TransitionEvents struct {
	// Requested is the requester's own event, written with the operation.
	Requested string
	// Succeeded, Compensated and Cancelled end the operation: done, undone
	// after a step failed for good, called off by an operator.
	Succeeded, Compensated, Cancelled string
	// Grace begins a decommission's grace period; Restored ends it early.
	Grace, Restored string
}

// Lifecycle is the tenant lifecycle, one row per operation kind.
var Lifecycle = []Transition{
	{Kind: OpProvision, From: []State{""}, To: StateActive, Failed: StateFailed,
		Steps:  map[State][]Step{"": {StepSchema, StepKeys, StepRoute}},
		Action: ActionTenantWrite, Scope: ScopeTenantsCreate,
		Events: TransitionEvents{Requested: "tenant.create_requested", Succeeded: "tenant.provisioned", Compensated: "tenant.provisioning_failed"}},
	{Kind: OpSuspend, Path: "suspend", From: []State{StateActive}, To: StateSuspended,
		Steps: map[State][]Step{StateActive: {StepSuspendRoute}}, Action: ActionTenantWrite, Scope: ScopeTenantsSuspend,
		Events:  TransitionEvents{Requested: "tenant.suspend_requested", Succeeded: "tenant.suspended", Compensated: "tenant.suspend_failed"},
		Summary: "Suspend an active tenant", Description: "Disables its route and ends its sessions. The Idempotency-Key is the update id on the tenant's workflow."},
	{Kind: OpResume, Path: "resume", From: []State{StateSuspended}, To: StateActive,
		Steps: map[State][]Step{StateSuspended: {StepResumeRoute}}, Action: ActionTenantWrite, Scope: ScopeTenantsResume,
		Events:  TransitionEvents{Requested: "tenant.resume_requested", Succeeded: "tenant.resumed", Compensated: "tenant.resume_failed"},
		Summary: "Resume a suspended tenant"},
	{Kind: OpDecommission, Path: "decommission", From: []State{StateActive, StateSuspended}, To: StateDecommissioned,
		Steps:  map[State][]Step{StateActive: {StepSuspendRoute}},
		Final:  []Step{StepDeleteRoute, StepDeleteKeys, StepDropSchema},
		Action: ActionTenantDestroy, Scope: ScopeTenantsDecommission,
		Events: TransitionEvents{Requested: "tenant.decommission_requested", Succeeded: "tenant.decommissioned",
			Compensated: "tenant.decommission_failed", Cancelled: "tenant.decommission_cancelled",
			Grace: "tenant.decommissioning", Restored: "tenant.restored"},
		Summary:     "Decommission a tenant",
		Description: "Suspends it at once and destroys it when the grace period ends, unless it is restored first."},
	{Kind: OpRestore, Path: "restore", From: []State{StateDecommissioning}, During: OpDecommission, To: StateSuspended,
		Action: ActionTenantDestroy, Scope: ScopeTenantsRestore,
		Events:  TransitionEvents{Requested: "tenant.restore_requested"},
		Summary: "Restore a tenant during its decommission grace period", Description: "The tenant is left suspended."},
}

// TransitionOf returns the lifecycle row of an operation kind.
func TransitionOf(kind OpKind) (Transition, bool) {
	for _, t := range Lifecycle {
		if t.Kind == kind {
			return t, true
		}
	}
	return Transition{}, false
}

// Requested lists the transitions a caller requests on an existing tenant,
// in the table's order.
func Requested() []Transition {
	var out []Transition
	for _, t := range Lifecycle {
		if t.Path != "" {
			out = append(out, t)
		}
	}
	return out
}

// MustTransition returns the lifecycle row of a kind the code names.
func MustTransition(kind OpKind) Transition {
	t, ok := TransitionOf(kind)
	if !ok {
		panic("no lifecycle row for " + string(kind))
	}
	return t
}

// StepsFrom returns every step the transition runs from the state, in
// order: those an operator may undo, then the final ones.
func (t Transition) StepsFrom(from State) []Step {
	return append(slices.Clone(t.Steps[from]), t.Final...)
}

// Ended reports whether a tenant in the state is over: it holds no name,
// hostname or quota, and its saga has ended.
func (s State) Ended() bool { return s == StateDecommissioned || s == StateFailed }

// EndedStates are the states a tenant never leaves.
func EndedStates() []State {
	var out []State
	for _, s := range States {
		if s.Ended() {
			out = append(out, s)
		}
	}
	return out
}

// CanStart reports whether an operation of the kind may start from the
// state with no operation running, and if not, why.
func CanStart(kind OpKind, from State) error {
	t, ok := TransitionOf(kind)
	if !ok || t.Path == "" {
		return Errorf(CodeBadRequest, "unknown operation %q", kind)
	}
	if !slices.Contains(t.From, from) {
		return Errorf(CodeConflict, "cannot %s a tenant that is %s (only %s tenants)", kind, from, orList(t.From))
	}
	return nil
}

// TenantNow is what decides which transitions a tenant accepts at a moment.
type TenantNow struct {
	State State
	// Busy says an operation runs on it; Running is its kind, when known.
	Busy    bool
	Running OpKind
	// GraceEndsAt is when the running decommission's grace period ends,
	// once it began.
	GraceEndsAt *time.Time
}

// Offered lists, in the table's order, the transitions the tenant accepts
// now: those it may start from its state with nothing running, or, for one
// that calls off a running operation, while that operation's grace period
// lasts. The saga decides for good; this is what a client may offer.
func (n TenantNow) Offered(now time.Time) []Transition {
	var out []Transition
	for _, t := range Requested() {
		if !slices.Contains(t.From, n.State) {
			continue
		}
		switch {
		case t.During == "" && !n.Busy:
		case t.During != "" && n.Busy && n.Running == t.During && n.GraceEndsAt != nil && now.Before(*n.GraceEndsAt):
		default:
			continue
		}
		out = append(out, t)
	}
	return out
}

func orList(states []State) string {
	out := ""
	for i, s := range states {
		switch {
		case i == 0:
		case i == len(states)-1:
			out += " or "
		default:
			out += ", "
		}
		out += string(s)
	}
	return out
}
