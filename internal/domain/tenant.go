package domain

// State is a tenant's lifecycle state.
type State string

// The tenant states.
const (
	StateProvisioning    State = "provisioning"
	StateActive          State = "active"
	StateSuspended       State = "suspended"
	StateDecommissioning State = "decommissioning"
	StateDecommissioned  State = "decommissioned"
	StateFailed          State = "failed"
)

// States are the tenant states, in lifecycle order.
var States = []State{StateProvisioning, StateActive, StateSuspended, StateDecommissioning, StateDecommissioned, StateFailed}

// OpKind is the kind of a lifecycle operation.
type OpKind string

// The operation kinds.
const (
	OpProvision    OpKind = "provision"
	OpSuspend      OpKind = "suspend"
	OpResume       OpKind = "resume"
	OpDecommission OpKind = "decommission"
	OpRestore      OpKind = "restore"
)

// OpKinds are the operation kinds.
var OpKinds = []OpKind{OpProvision, OpSuspend, OpResume, OpDecommission, OpRestore}

// OpStatus is an operation's status.
type OpStatus string

// The operation statuses.
const (
	OpRunning     OpStatus = "running"
	OpStuck       OpStatus = "stuck"
	OpSucceeded   OpStatus = "succeeded"
	OpFailed      OpStatus = "failed"
	OpCancelled   OpStatus = "cancelled"
	OpCompensated OpStatus = "compensated"
)

// Ended reports whether an operation with the status is over.
func (s OpStatus) Ended() bool { return s != OpRunning && s != OpStuck }
