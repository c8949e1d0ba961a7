package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

// What the resources other than the tenant share: their configuration,
// the Idempotency-Keys of their requests, and the errors a person acts on.
//
// The API keeps the answer of a mutation under its Idempotency-Key for 24
// hours and answers a request carrying the key again with it (header
// Idempotent-Replayed: true). A creation's key is derived, as the tenant's
// is (tenant_keys.go), from the organisation, what the configuration asks
// for and a generation: an apply stopped after the server acted and run
// again sends the first run's key and is answered what the first run was.
// A replayed answer is examined: the object it names is adopted when it
// still stands as the configuration wants it, and passed over (the next
// generation's key asks anew) when it has gone since, or when the replay
// is a refusal that may no longer hold. The server keeps answers per
// caller (the member, or the service account), so a re-run adopts what the
// stopped run made when it applies with the same member's or service
// account's token. A change's key is the object, the
// change and the object's last change as read before asking; a deletion's
// is the object.

// maxGenerations bounds the walk over a configuration's creation keys.
const maxGenerations = 1000

// configureResource hands a resource the configured provider's client.
func configureResource(req resource.ConfigureRequest, resp *resource.ConfigureResponse) *providerData {
	if req.ProviderData == nil {
		return nil
	}
	data, ok := req.ProviderData.(*providerData)
	if !ok {
		resp.Diagnostics.AddError("Unexpected provider data", fmt.Sprintf("got %T", req.ProviderData))
		return nil
	}
	return data
}

// prefixed is the form of an id with the prefix (sa_, mem_, …).
func prefixed(prefix string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(prefix) + "[0-9A-Za-z]+$")
}

// derivedKey is an Idempotency-Key for the request what, derived from the
// parts.
func derivedKey(what string, parts ...string) string {
	return "tf-" + what + "-" + keyHash(parts...)
}

// generationKey is a creation's key for generation gen of the parts.
func generationKey(what string, gen int, parts ...string) string {
	return derivedKey(what, append(slices.Clone(parts), fmt.Sprint(gen))...)
}

// dataReplayed decodes a raw call's answer as intelliauth.Data does, and
// reports whether the server replayed an earlier request's answer to the
// same Idempotency-Key instead of acting.
func dataReplayed[T any](resp *http.Response, err error) (T, bool, error) {
	replayed := resp != nil && resp.Header.Get("Idempotent-Replayed") == "true"
	v, err := intelliauth.Data[T](resp, err)
	return v, replayed, err
}

// sortedStrings is a set's elements in order, so a key or a request body
// made of them is the same whatever order the configuration wrote them in.
func sortedStrings(ctx context.Context, set types.Set, diags *diag.Diagnostics) []string {
	out := []string{}
	if set.IsNull() || set.IsUnknown() {
		return out
	}
	diags.Append(set.ElementsAs(ctx, &out, false)...)
	slices.Sort(out)
	return out
}

// stringSet is a set attribute's value for a list the API answers.
func stringSet(values []string, diags *diag.Diagnostics) types.Set {
	if values == nil {
		values = []string{}
	}
	v, d := types.SetValueFrom(context.Background(), types.StringType, values)
	diags.Append(d...)
	return v
}

// timeValue is a time as the resources' state holds it (RFC 3339, UTC).
func timeValue(t time.Time) types.String {
	return types.StringValue(t.UTC().Format(time.RFC3339Nano))
}

// The hints complete an error's diagnostic with what
// a person does about it.
const (
	memberTokenHint = "This route takes a member's session token only: service accounts cannot manage members, invitations, service accounts or their tokens. " +
		"Configure the provider with a member's token (POST /api/v1/auth/sign-in) for this resource."
	reauthHint = "A member's session may do this only within the server's reauthentication window (CP_REAUTH_WINDOW, 10 minutes by default) after signing in: " +
		"sign in again, or renew the proof with POST /api/v1/auth/reauthenticate, and apply again right after."
)

// addCallError adds an error diagnostic for a failed call, with what to do
// when the token is of the wrong kind or its authentication is too old.
// reauthNote, when not empty, says which act of the resource asked for a
// recent authentication.
func addCallError(diags *diag.Diagnostics, summary string, err error, reauthNote string) {
	detail := errorDetail(err)
	var api *intelliauth.APIError
	if errors.As(err, &api) && api.StatusCode == http.StatusForbidden {
		switch {
		case api.Code == "REAUTHENTICATION_REQUIRED":
			if reauthNote != "" {
				detail += "\n" + reauthNote
			}
			detail += "\n" + reauthHint
		case strings.Contains(api.Message, "service accounts cannot use this route"):
			detail += "\n" + memberTokenHint
		}
	}
	diags.AddError(summary, detail)
}
