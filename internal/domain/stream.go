package domain

import (
	"slices"
	"strings"
)

// StreamStatus is where an audit stream is: delivering (active), held by
// a person (paused), retrying a receiver that refuses or cannot be
// reached (failing), or given up on after failing for too long
// (suspended, until a person resumes it).
type StreamStatus string

// The stream statuses.
const (
	StreamActive    StreamStatus = "active"
	StreamPaused    StreamStatus = "paused"
	StreamFailing   StreamStatus = "failing"
	StreamSuspended StreamStatus = "suspended"
)

// StreamStatuses lists every stream status.
var StreamStatuses = []StreamStatus{StreamActive, StreamPaused, StreamFailing, StreamSuspended}

// Delivering reports whether a stream in the status sends events: active,
// or failing and retrying. Retention keeps what such a stream has not
// delivered yet.
func (s StreamStatus) Delivering() bool { return s == StreamActive || s == StreamFailing }

// Bounds of a stream's actions filter.
const (
	MaxStreamActions      = 50
	MaxStreamActionLength = 100
)

// The audit actions of streams themselves.
const (
	ActionStreamCreated   = "audit_stream.created"
	ActionStreamUpdated   = "audit_stream.updated"
	ActionStreamPaused    = "audit_stream.paused"
	ActionStreamResumed   = "audit_stream.resumed"
	ActionStreamDeleted   = "audit_stream.deleted"
	ActionStreamReplayed  = "audit_stream.replayed"
	ActionStreamSuspended = "audit_stream.suspended"
	ActionStreamTested    = "audit_stream.tested"
	// ActionStreamTest is the synthetic event the test button sends; it
	// is never written to the trail.
	ActionStreamTest = "audit_stream.test"
)

// auditActions are the actions the control plane writes to audit trails
// besides the tenant lifecycle's (Lifecycle's Events), which are added to
// them. A test of the module (internal/archtest) fails on an action
// written in code that is not here, so a stream's filter can name every
// action there is.
var auditActions = []string{
	"organization.bootstrapped", "organization.created", "organization.updated", "organization.deletion_requested",
	"organization.restored", "organization.deleted", "organization.saga_stuck", "organization.saga_resolved",
	"member.added", "member.role_changed", "member.removed", "member.left",
	"invitation.created", "invitation.resent", "invitation.revoked", "invitation.accepted",
	"user.signed_in", "user.signed_out", "user.reauthenticated", "user.password_reset", "user.mfa_enrolled", "user.mfa_removed",
	"user.recovery_codes_regenerated", "user.passkey_registered", "user.passkey_removed",
	"session.revoked",
	"service_account.created", "service_account.updated", "service_account.deleted", "service_account.taken_over",
	"service_account.token_created", "service_account.token_revoked",
	"tenant.lifetime_changed", "tenant.saga_stuck", "tenant.saga_resolved", "tenant.saga_terminated", "tenant.saga_reset",
	ActionStreamCreated, ActionStreamUpdated, ActionStreamPaused, ActionStreamResumed, ActionStreamDeleted,
	ActionStreamReplayed, ActionStreamSuspended, ActionStreamTested,
	ActionBillingCheckoutStarted, ActionBillingPortalOpened, ActionBillingSubscribed, ActionBillingPlanChanged, ActionBillingPaymentFailed,
	ActionBillingPaymentRecovered, ActionBillingGraceEnded, ActionBillingSubscriptionCanceled,
}

// AuditActions lists, sorted, every action the control plane writes to
// an organisation's audit trail.
func AuditActions() []string {
	out := slices.Clone(auditActions)
	for _, t := range Lifecycle {
		e := t.Events
		for _, a := range []string{e.Requested, e.Succeeded, e.Compensated, e.Cancelled, e.Grace, e.Restored} {
			if a != "" {
				out = append(out, a)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// AuditFamilies lists, sorted, the first segments of the audit actions
// (tenant, member, …): a stream's filter names a family as family.*.
func AuditFamilies() []string {
	var out []string
	for _, a := range AuditActions() {
		family, _, _ := strings.Cut(a, ".")
		out = append(out, family)
	}
	return slices.Compact(out)
}

// ValidStreamAction reports whether p may be an item of a stream's actions
// filter: an audit action, or a family of them written family.*.
func ValidStreamAction(p string) bool {
	if family, ok := strings.CutSuffix(p, ".*"); ok {
		return slices.Contains(AuditFamilies(), family)
	}
	return slices.Contains(AuditActions(), p)
}

// StreamMatches reports whether an event of the action passes a stream's
// actions filter (none: every event). The store writes the same test in
// SQL; this one is for code that holds an event already.
func StreamMatches(filter []string, action string) bool {
	if len(filter) == 0 {
		return true
	}
	for _, p := range filter {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(action, prefix) || p == action {
			return true
		}
	}
	return false
}
