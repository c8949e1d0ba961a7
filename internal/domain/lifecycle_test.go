package domain

import (
	"slices"
	"testing"
	"time"
)

// TestEveryOperationKindHasOneWellFormedRow checks the table against
// itself: one row per kind, steps only from states it starts from, every
// step one an operator can undo except the final ones, and every request
// a route, an action, a scope and a requested event.
func TestEveryOperationKindHasOneWellFormedRow(t *testing.T) {
	for _, kind := range OpKinds {
		n := 0
		for _, row := range Lifecycle {
			if row.Kind == kind {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s has %d lifecycle rows, want 1", kind, n)
		}
	}
	for _, row := range Lifecycle {
		if len(row.From) == 0 || row.To == "" {
			t.Errorf("%s: From %v, To %q: a row says where it starts and ends", row.Kind, row.From, row.To)
		}
		for from, steps := range row.Steps {
			if !slices.Contains(row.From, from) {
				t.Errorf("%s has steps from %q, which it does not start from", row.Kind, from)
			}
			for _, s := range steps {
				if _, ok := s.Compensation(); !ok {
					t.Errorf("%s: step %s is undoable but has no compensation", row.Kind, s)
				}
			}
		}
		if row.Action == "" || row.Scope == "" || row.Events.Requested == "" {
			t.Errorf("%s: action %q, scope %q, requested event %q: each is needed", row.Kind, row.Action, row.Scope, row.Events.Requested)
		}
		if row.Path != "" && row.Summary == "" {
			t.Errorf("%s: a route needs a summary", row.Kind)
		}
		if row.During == "" && row.Steps == nil && row.Final == nil {
			t.Errorf("%s runs no step", row.Kind)
		}
		if row.During != "" {
			if _, ok := TransitionOf(row.During); !ok {
				t.Errorf("%s calls off %q, which has no row", row.Kind, row.During)
			}
		}
	}
	if r := MustTransition(OpProvision); r.Path != "" {
		t.Errorf("provision has route %q; POST /tenants starts it", r.Path)
	}
}

func TestADecommissionRunsWhatAnOperatorMayUndoThenWhatNothingUndoes(t *testing.T) {
	d := MustTransition(OpDecommission)
	want := map[State][]Step{
		StateActive:    {StepSuspendRoute, StepDeleteRoute, StepDeleteKeys, StepDropSchema},
		StateSuspended: {StepDeleteRoute, StepDeleteKeys, StepDropSchema},
	}
	for from, steps := range want {
		if got := d.StepsFrom(from); !slices.Equal(got, steps) {
			t.Errorf("decommission from %s runs %v, want %v", from, got, steps)
		}
	}
	// StepsFrom must not let a caller change the table.
	got := d.StepsFrom(StateActive)
	got[0] = StepSchema
	if d.StepsFrom(StateActive)[0] != StepSuspendRoute {
		t.Error("StepsFrom returned the table's own slice")
	}
	if got := MustTransition(OpProvision).StepsFrom(""); !slices.Equal(got, []Step{StepSchema, StepKeys, StepRoute}) {
		t.Errorf("provision runs %v", got)
	}
}

func TestEndedStatesAreTheOnesATenantNeverLeaves(t *testing.T) {
	if got := EndedStates(); !slices.Equal(got, []State{StateDecommissioned, StateFailed}) {
		t.Errorf("EndedStates() = %v", got)
	}
	for _, row := range Lifecycle {
		for _, from := range row.From {
			if from.Ended() {
				t.Errorf("%s starts from %s, an ended state", row.Kind, from)
			}
		}
	}
}

func TestOfferedIsWhatATenantAcceptsNow(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Hour), now.Add(-time.Second)
	kinds := func(ts []Transition) []OpKind {
		out := []OpKind{}
		for _, t := range ts {
			out = append(out, t.Kind)
		}
		return out
	}
	for _, c := range []struct {
		name string
		now  TenantNow
		want []OpKind
	}{
		{"active", TenantNow{State: StateActive}, []OpKind{OpSuspend, OpDecommission}},
		{"suspended", TenantNow{State: StateSuspended}, []OpKind{OpResume, OpDecommission}},
		{"active with a suspend running", TenantNow{State: StateActive, Busy: true, Running: OpSuspend}, []OpKind{}},
		{"provisioning", TenantNow{State: StateProvisioning, Busy: true, Running: OpProvision}, []OpKind{}},
		{"an operation of unknown kind running", TenantNow{State: StateDecommissioning, Busy: true, GraceEndsAt: &later}, []OpKind{}},
		{"in the grace period", TenantNow{State: StateDecommissioning, Busy: true, Running: OpDecommission, GraceEndsAt: &later}, []OpKind{OpRestore}},
		{"past the grace period", TenantNow{State: StateDecommissioning, Busy: true, Running: OpDecommission, GraceEndsAt: &earlier}, []OpKind{}},
		{"an ephemeral tenant's end (no grace)", TenantNow{State: StateDecommissioning, Busy: true, Running: OpDecommission, GraceEndsAt: &now}, []OpKind{}},
		{"decommissioned", TenantNow{State: StateDecommissioned}, []OpKind{}},
		{"failed", TenantNow{State: StateFailed}, []OpKind{}},
	} {
		if got := kinds(c.now.Offered(now)); !slices.Equal(got, c.want) {
			t.Errorf("%s: offered %v, want %v", c.name, got, c.want)
		}
	}
}
