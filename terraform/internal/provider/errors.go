package provider

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

// errorDetail is an error as a person reads it in a diagnostic: the API's
// code, message and field errors, and its request id for the operators.
func errorDetail(err error) string {
	var api *intelliauth.APIError
	if errors.As(err, &api) {
		var b strings.Builder
		fmt.Fprintf(&b, "The control plane answered %d %s: %s", api.StatusCode, api.Code, api.Message)
		for _, fe := range api.FieldErrors {
			fmt.Fprintf(&b, "\n  %s: %s", fe.Field, fe.Message)
		}
		if api.StatusCode == http.StatusForbidden && strings.Contains(strings.ToLower(api.Code), "reauth") {
			b.WriteString("\nA member's session may do this only soon after signing in; a service account's token is not asked to prove it again.")
		}
		if api.RequestID != "" {
			fmt.Fprintf(&b, "\n(request id %s)", api.RequestID)
		}
		return b.String()
	}
	var op *intelliauth.OperationError
	if errors.As(err, &op) {
		if op.Operation.Status == intelliauth.OperationStuck {
			return fmt.Sprintf("The tenant's %s operation %s is stuck at step %q: %s\n"+
				"Its saga waits for an operator to repair the step (retry, skip or compensate it: the control plane's runbook).",
				op.Operation.Kind, op.Operation.Id, op.Step, op.Reason)
		}
		return fmt.Sprintf("The tenant's %s operation %s ended %s at step %q: %s", op.Operation.Kind, op.Operation.Id, op.Operation.Status, op.Step, op.Reason)
	}
	return err.Error()
}

// addError adds an error diagnostic for an API error.
func addError(diags *diag.Diagnostics, summary string, err error) {
	diags.AddError(summary, errorDetail(err))
}

// isStatus reports whether err is the API's answer with the status.
func isStatus(err error, status int) bool {
	var api *intelliauth.APIError
	return errors.As(err, &api) && api.StatusCode == status
}
