package domain

// OrgState is an organisation's state: active, being deleted (its grace
// period, then its tenants' ends), or deleted (its personal data erased;
// the row and its audit trail stay, for operators).
type OrgState string

// The organisation states.
const (
	OrgActive   OrgState = "active"
	OrgDeleting OrgState = "deleting"
	OrgDeleted  OrgState = "deleted"
)

// OrgOpKind is the kind of an organisation's own operation.
type OrgOpKind string

// The organisation operations: a deletion, and the restore that calls one
// off during its grace period.
const (
	OrgOpDeletion OrgOpKind = "deletion"
	OrgOpRestore  OrgOpKind = "restore"
)

// ErrOrgDeleting is the answer to a change of an organisation being
// deleted: only a restore is taken.
func ErrOrgDeleting() *Error {
	return Errorf(CodeConflict, "the organization is being deleted: an owner may restore it until its deletion is due")
}
