package domain

// Step is one data-plane step of a tenant's saga. This table is the one
// place step names are written: the workflow, the activity that runs a
// step, the fault drills and the configuration all read it. Running sagas
// read it too: a change to the lists below changes what they do next, so
// it is gated with workflow.GetVersion like any workflow change, even when
// the replay test does not notice it.
type Step string

// The data-plane steps.
const (
	StepSchema       Step = "schema"
	StepKeys         Step = "keys"
	StepRoute        Step = "route"
	StepDropSchema   Step = "drop_schema"
	StepDeleteKeys   Step = "delete_keys"
	StepDeleteRoute  Step = "delete_route"
	StepSuspendRoute Step = "suspend_route"
	StepResumeRoute  Step = "resume_route"
)

// StepGracePeriod is not a data-plane step: it names the wait of a
// decommission before destruction, which an operator's cancel repairs.
const StepGracePeriod = "grace_period"

// Steps are the data-plane steps, creations first.
var Steps = []Step{StepSchema, StepKeys, StepRoute, StepDropSchema, StepDeleteKeys, StepDeleteRoute, StepSuspendRoute, StepResumeRoute}

// ProvisionSteps create a tenant's resources, in order.
var ProvisionSteps = []Step{StepSchema, StepKeys, StepRoute}

// DestroySteps remove a decommissioned tenant's resources, in order.
var DestroySteps = []Step{StepDeleteRoute, StepDeleteKeys, StepDropSchema}

// compensations undo a step that was attempted, whether it completed or
// failed half-way; every one is idempotent.
var compensations = map[Step]Step{
	StepSchema:       StepDropSchema,
	StepKeys:         StepDeleteKeys,
	StepRoute:        StepDeleteRoute,
	StepSuspendRoute: StepResumeRoute,
	StepResumeRoute:  StepSuspendRoute,
}

// Compensation returns the step that undoes s, if it can be undone.
func (s Step) Compensation() (Step, bool) {
	c, ok := compensations[s]
	return c, ok
}

// StepsOf returns the steps an operation of the kind starts with, in order
// (a decommission from an active tenant suspends its route first).
func StepsOf(kind OpKind, from State) []Step {
	switch kind {
	case OpProvision:
		return ProvisionSteps
	case OpSuspend:
		return []Step{StepSuspendRoute}
	case OpResume:
		return []Step{StepResumeRoute}
	case OpDecommission:
		if from == StateActive {
			return append([]Step{StepSuspendRoute}, DestroySteps...)
		}
		return DestroySteps
	}
	return nil
}

// StepNames returns the names of steps.
func StepNames(steps []Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = string(s)
	}
	return out
}

// IsStep reports whether name is a data-plane step.
func IsStep(name string) bool {
	for _, s := range Steps {
		if string(s) == name {
			return true
		}
	}
	return false
}
