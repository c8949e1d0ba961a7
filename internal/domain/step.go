package domain

// Step is one data-plane step of a tenant's saga. This file is the one
// place step names and their compensations are written; which steps a
// transition runs is its row of Lifecycle. The workflow, the activity that
// runs a step, the fault drills and the configuration all read them.
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
