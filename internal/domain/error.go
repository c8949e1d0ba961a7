package domain

import (
	"errors"
	"fmt"
	"time"
)

// Code is a machine-readable error code of the public API .
type Code string

// The error codes of the API. Each maps to exactly one HTTP status, in
// api/errors.go.
const (
	CodeBadRequest      Code = "BAD_REQUEST"
	CodeUnauthenticated Code = "UNAUTHENTICATED"
	CodeForbidden       Code = "FORBIDDEN"
	// CodeMFARequired: the organisation requires a second factor and the
	// caller has none yet (403); they can still reach /me and enrol.
	CodeMFARequired Code = "MFA_REQUIRED"
	// CodeReauthenticationRequired: the act needs the caller to have
	// proved who they are recently (403); POST /auth/reauthenticate.
	CodeReauthenticationRequired Code = "REAUTHENTICATION_REQUIRED"
	CodeNotFound                 Code = "NOT_FOUND"
	CodeMethodNotAllowed         Code = "METHOD_NOT_ALLOWED"
	CodeConflict                 Code = "CONFLICT"
	// CodePlanManagedByBilling: with billing on, a plan is changed
	// through Stripe's checkout (POST …/billing/checkout), not directly
	// (409).
	CodePlanManagedByBilling Code = "PLAN_MANAGED_BY_BILLING"
	CodeIdempotencyKeyReused Code = "IDEMPOTENCY_KEY_REUSED"
	CodePayloadTooLarge      Code = "PAYLOAD_TOO_LARGE"
	CodeUnsupportedMedia     Code = "UNSUPPORTED_MEDIA_TYPE"
	CodeRateLimited          Code = "RATE_LIMITED"
	CodeUnavailable          Code = "UNAVAILABLE"
	CodeInternal             Code = "INTERNAL_ERROR"
)

// Codes are the error codes of the API.
var Codes = []Code{CodeBadRequest, CodeUnauthenticated, CodeForbidden, CodeMFARequired, CodeReauthenticationRequired, CodeNotFound, CodeMethodNotAllowed, CodeConflict, CodePlanManagedByBilling,
	CodeIdempotencyKeyReused, CodePayloadTooLarge, CodeUnsupportedMedia, CodeRateLimited, CodeUnavailable, CodeInternal}

// FieldError names one invalid field of a request and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an error meant for the caller: a code, a message safe to show,
// and, for invalid input, the fields at fault. Any other error reaching the
// API is internal and is reported as INTERNAL_ERROR without its text.
type Error struct {
	Code        Code
	Message     string
	FieldErrors []FieldError
	// RetryAfter, when set, tells the caller how long to wait before a
	// retry (an UNAVAILABLE answer's Retry-After).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return string(e.Code) + ": " + e.Message
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err when it is or wraps an *Error, and
// CodeInternal otherwise.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
