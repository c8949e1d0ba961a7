package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// The OpenAPI document is generated from the route table (routes.go) and
// the very types the handlers decode and write, so the document and the
// code cannot drift apart: a route without an entry in routeDocs, or an
// entry without a route, stops New, and a field added to a view is in the
// document at once. The integration suite validates every response it
// gets against this document (integration/contract_test.go).

// doc is what the route table does not say about a route.
type doc struct {
	id      string // operationId
	summary string
	desc    string
	body    any // the request body's type (a zero value); nil: no body
	data    any // the success answer's data; for a list, one item
	list    bool
	status  int // the success status; 0: 200
	query   []*openapi3.Parameter
	// ndjson: the route also answers Accept: application/x-ndjson.
	ndjson bool
	// raw: the answer is data itself, without the envelope.
	raw bool
	// errs are errors the route gives beyond those of its access rule and
	// shape (errorsOf).
	errs []errorResponse
}

func routeDocs() map[string]doc {
	const v1 = "/api/v1"
	const org = v1 + "/organizations/:org_id"
	tenantState := enumParam("state", "only tenants in this state", domain.States)
	docs := map[string]doc{
		"POST " + v1 + "/auth/sign-in": {id: "signIn", summary: "Sign in with email and password",
			desc: "Returns a bearer token. Password checks are throttled per email from one client address, per email (short delays) and per client address; a throttled caller gets 429 with Retry-After.",
			body: signInRequest{}, data: signInResponse{}, errs: []errorResponse{errUnauth}},
		"POST " + v1 + "/auth/sign-in/mfa": {id: "signInSecondStep", summary: "The second step of a sign-in: a TOTP or recovery code",
			desc: "Takes the challenge POST /auth/sign-in answered (mfa_required: true) and a TOTP code or one of the recovery codes, and answers the session. " +
				"The challenge is single-use and expires in 5 minutes; a TOTP code is accepted once (its time step cannot be used again) and a recovery code once. " +
				"A forged, used or expired challenge, or a wrong or used code, is 401 alike; attempts are throttled like sign-in (429 with Retry-After).",
			body: signInMFARequest{}, data: signInResponse{}, errs: []errorResponse{errUnauth}},
		"POST " + v1 + "/me/totp": {id: "enrolTOTP", summary: "Begin enrolling an authenticator app (TOTP)",
			desc: "Answers a new secret and its otpauth:// URI for a QR code; it stays pending (and sign-in is unchanged) until POST /me/totp/confirm gets a right code. " +
				"A new enrolment replaces a pending one; while TOTP is on it is 409. Needs a recent authentication (403 REAUTHENTICATION_REQUIRED). The secret is stored sealed under the key-encryption keys.",
			data: totpEnrolment{}, status: fiber.StatusCreated, errs: []errorResponse{errReauth}},
		"POST " + v1 + "/me/totp/confirm": {id: "confirmTOTP", summary: "Turn TOTP on with a code from the app",
			desc: "A right code turns the pending secret on (from then on sign-in has a second step) and answers ten recovery codes, shown only here. A wrong code is 400. " +
				"Written as user.mfa_enrolled.",
			body: totpConfirmRequest{}, data: recoveryCodesResponse{}},
		"DELETE " + v1 + "/me/totp": {id: "removeTOTP", summary: "Turn TOTP off",
			desc: "Needs a recent authentication (403 REAUTHENTICATION_REQUIRED). With no passkey left, the recovery codes go too. 404 when TOTP is not on. Written as user.mfa_removed.",
			data: factorRemovedResponse{}, errs: []errorResponse{errNotFound, errReauth}},
		"POST " + v1 + "/me/recovery-codes": {id: "regenerateRecoveryCodes", summary: "A new set of recovery codes",
			desc: "The old set stops working. Needs a second factor (409 without) and a recent authentication (403 REAUTHENTICATION_REQUIRED). Written as user.recovery_codes_regenerated.",
			data: recoveryCodesResponse{}, status: fiber.StatusCreated, errs: []errorResponse{errReauth}},
		"POST " + v1 + "/auth/sign-out": {id: "signOut", summary: "Revoke the bearer token of this request", data: signOutResponse{}},
		"POST " + v1 + "/auth/password-reset": {id: "requestPasswordReset", summary: "Mail a link to set a new password",
			desc: "Answers 202 alike whether or not the email has an account. The account's owner gets a mail with a link to <CP_CONSOLE_URL>/password-reset#token=<secret>: " +
				"the secret works once, for 30 minutes, and a newer request ends the older ones. Requests are throttled per email and per client address like sign-in (429 with Retry-After).",
			body: passwordResetRequest{}, data: passwordResetResponse{}, status: fiber.StatusAccepted},
		"POST " + v1 + "/auth/password-reset/confirm": {id: "confirmPasswordReset", summary: "Set a new password with a reset's secret",
			desc: "Sets the password, uses the secret up and ends every session of the user; the user signs in again. An unknown, used or expired secret is refused alike (401). " +
				"Attempts are throttled per client address (429 with Retry-After). Written to each of the user's organisations as user.password_reset.",
			body: passwordResetConfirmRequest{}, data: passwordResetConfirmResponse{}, errs: []errorResponse{errUnauth}},
		"GET " + v1 + "/auth/sign-up": {id: "getSignUpSettings", summary: "Whether anyone may sign up here",
			desc: "For a client to offer sign-up or not before anyone signs in (CP_SIGNUP), with the domain tenants are served under.",
			data: signUpSettings{}},
		"POST " + v1 + "/auth/sign-up": {id: "signUp", summary: "Sign up: a person and their organization, once their email is verified",
			desc: "Answers 202 alike whether or not the email has an account, and creates nothing. A new email gets a mail with a link to <CP_CONSOLE_URL>/verify-email#token=<secret> " +
				"(cpv_…, works once, for 24 hours); an email with an account gets a mail saying so, with the ways to sign in, and no second account is made. " +
				"The password is kept only as its hash until then. A slug another organization has is 409 (whatever the email); the slug is not held for the sign-up: the first to verify gets it. " +
				"Requests are throttled per email and per client address like sign-in (429 with Retry-After). 403 when sign-up is closed on the installation (CP_SIGNUP).",
			body: signUpRequest{}, data: signUpResponse{}, status: fiber.StatusAccepted, errs: []errorResponse{errSignUpClosedResponse}},
		"POST " + v1 + "/auth/verify-email": {id: "verifyEmail", summary: "Verify a sign-up's email: the user, the organization and its owner, signed in",
			desc: "In one transaction: the user, the organization (plan free) and the owner membership are created, the secret is used up, " +
				"organization.created, member.added and user.signed_in (method email_verification) are written, and the session is answered. " +
				"An unknown, used or expired secret is 401 alike; a slug taken, or an account made with the email (by another sign-up of it, or an invitation), since the sign-up is 409, creates nothing and uses the secret up. " +
				"Attempts are throttled per client address (429 with Retry-After). 403 when sign-up is closed on the installation.",
			body: verifyEmailRequest{}, data: verifyEmailResponse{}, status: fiber.StatusCreated, errs: []errorResponse{errUnauth, errSignUpClosedResponse}},
		"GET " + v1 + "/organization-slugs/:slug": {id: "getOrganizationSlug", summary: "Whether a slug can name a new organization",
			desc: "For a sign-up or new-organization form to say so as the person types, with the hostname its tenants would get. A slug that is not 3 to 30 of a-z, 0-9 and '-' is 400. " +
				"An answer is not a reservation. At most 120 checks a minute from one client address (429 with Retry-After). Slugs are public anyway: they are in every tenant's hostname.",
			data: slugView{}, errs: []errorResponse{errBadRequest}},
		"POST " + reauthenticatePath: {id: "reauthenticate", summary: "Confirm who you are, for the acts that need a recent authentication",
			desc: "With the caller's own password (a TOTP or recovery code and a passkey are not available yet: 400), checked under the sign-in throttle as a sign-in is " +
				"(a wrong password is 401 and counted; past the policy's failures 429 with Retry-After). The session then counts as recently authenticated for CP_REAUTH_WINDOW " +
				"(10 min by default): decommissioning, giving a lifetime, changing the plan, granting owner and minting service-account tokens answer 403 REAUTHENTICATION_REQUIRED " +
				"outside it. Give exactly one of password, code or credential. Only people reauthenticate: a service account's token is 403. " +
				"An Idempotency-Key is not kept for this route, since its body is a secret; a retry simply reauthenticates again. " +
				"Written to each of the caller's organisations as user.reauthenticated.",
			body: reauthenticateRequest{}, data: reauthenticateResponse{}, errs: []errorResponse{errUnauth}},
		"GET " + v1 + "/me": {id: "getMe", summary: "The signed-in user and their memberships", data: meResponse{}},
		"GET " + v1 + "/me/sessions": {id: "listSessions", summary: "The caller's sessions that neither ended nor expired",
			desc: "Most recently used first, this request's marked current. A session's token is never shown.", data: sessionView{}, list: true},
		"GET " + v1 + "/me/events": {id: "listMyEvents", summary: "The caller's own account events",
			desc: "Signing in and out, a reauthentication, a password reset, a session ended: the events about the caller's user, as each of their organisations recorded them (one per organisation), newest first.",
			data: store.EventView{}, list: true, query: listParams()},
		"DELETE " + v1 + "/me/sessions": {id: "endOtherSessions", summary: "End every session of the caller but this one",
			desc: "Each ended session is written as session.revoked in each of the caller's organisations.", data: endSessionsResponse{}},
		"DELETE " + v1 + "/me/sessions/:session_id": {id: "endSession", summary: "End one of the caller's sessions",
			desc: "Ending the current session signs this client out. Another person's session, or one that ended, is 404.", data: endSessionsResponse{}, errs: []errorResponse{errNotFound}},
		"POST " + v1 + "/me/webauthn/registration/options": {id: "beginPasskeyRegistration", summary: "Options to register a passkey",
			desc: "Pass options to navigator.credentials.create (binary fields are base64url), then send the answer with the challenge to POST /me/webauthn/credentials within 5 minutes. " +
				"The relying party is the console's host name (CP_CONSOLE_URL); the passkey is discoverable (it signs in without an email), user verification preferred; the caller's passkeys are excluded. " +
				"Needs a recent authentication (403 REAUTHENTICATION_REQUIRED): a stolen session must not add its own way in. 503 when the console URL is an IP address, which cannot be a relying party.",
			data: passkeyOptions{}, errs: []errorResponse{errReauth}},
		"POST " + v1 + "/me/webauthn/credentials": {id: "registerPasskey", summary: "Register a passkey with the authenticator's answer",
			desc: "Checks the answer to the caller's registration challenge (origin, relying party, challenge, signature) and stores the passkey; the challenge is used up with it. " +
				"A challenge that is not the caller's, used or expired, or an answer refused, is 400 with the field at fault; an authenticator already registered is 409. " +
				"Written to each of the caller's organisations as user.passkey_registered.",
			body: registerPasskeyRequest{}, data: passkeyView{}, status: fiber.StatusCreated},
		"GET " + v1 + "/me/webauthn/credentials": {id: "listPasskeys", summary: "The caller's passkeys",
			desc: "Oldest first. Keys and credential ids are not shown.", data: passkeyView{}, list: true},
		"DELETE " + v1 + "/me/webauthn/credentials/:passkey_id": {id: "removePasskey", summary: "Remove one of the caller's passkeys",
			desc: "Needs a recent authentication (403 REAUTHENTICATION_REQUIRED: POST /auth/reauthenticate first). Another person's passkey, or an unknown one, is 404. " +
				"When it was the caller's last second factor, their recovery codes are deleted too. Written as user.passkey_removed.",
			data: passkeyView{}, errs: []errorResponse{errNotFound, errReauth}},
		"POST " + v1 + "/auth/sign-in/webauthn/options": {id: "passkeySignInOptions", summary: "Options to sign in with a passkey",
			desc: "With the challenge of POST /auth/sign-in's answer (mfa_required), the second step: options for one of that account's passkeys, on the same challenge (409 when the account has none). " +
				"With {}: a new challenge for a sign-in with any passkey of this console and no password (user verification required). " +
				"Pass options to navigator.credentials.get, then send the answer with the challenge to POST /auth/sign-in/webauthn within 5 minutes. " +
				"An unknown, used or expired challenge is 401.",
			body: passkeySignInOptionsRequest{}, data: passkeyOptions{}, errs: []errorResponse{errUnauth}},
		"POST " + v1 + "/auth/sign-in/webauthn": {id: "passkeySignIn", summary: "Sign in with a passkey's answer",
			desc: "Answers as a sign-in with a password does: a bearer token. The challenge is used once; a forged, used, expired or other challenge, another person's passkey, " +
				"a bad signature and a passkey whose signature counter went backwards (a cloned authenticator) are refused alike (401). " +
				"Attempts are throttled like sign-in (per email when the challenge names the account, per client address; 429 with Retry-After). Written as user.signed_in with method passkey.",
			body: passkeySignInRequest{}, data: signInResponse{}, errs: []errorResponse{errUnauth}},
		"POST " + v1 + "/organizations": {id: "createOrganization", summary: "Create another organization, owned by the caller",
			desc: "On the free plan, the caller its owner (organization.created and member.added are written in it). Refused (409) when the caller already belongs to " +
				"CP_MAX_ORGS_PER_USER organizations (5 by default; the message says how many), or when another organization has the slug. " +
				"A retry with the same Idempotency-Key is answered the first answer, and makes one organization.",
			body: createOrgRequest{}, data: orgView{}, status: fiber.StatusCreated},
		"GET " + v1 + "/organizations": {id: "listOrganizations", summary: "Organisations the caller is a member of", data: orgView{}, list: true, query: listParams()},
		"GET " + org:                   {id: "getOrganization", summary: "One organisation", data: orgView{}},
		"PATCH " + org: {id: "updateOrganization", summary: "Rename the organisation, change its plan or require a second factor of every member",
			desc: "Changing the plan is for owners only, and to another plan needs a recent authentication (a rename does not). " +
				"require_mfa is for owners (security.manage) who have a second factor themselves (409 otherwise) and needs a recent authentication.", body: updateOrgRequest{}, data: orgView{},
			errs: []errorResponse{errReauth}},
		"DELETE " + org: {id: "deleteOrganization", summary: "Delete the organisation (owners), after a grace period",
			desc: "The body's confirm must be the organisation's slug, exactly (400 otherwise); needs a recent authentication. Answers 202 at once: the organisation is deleting, " +
				"due at deletion_due_at (CP_ORG_DELETION_GRACE after the request, 30 days by default). Its tenants are suspended through their own sagas, its service-account tokens " +
				"and pending invitations stop working, and every change but a restore answers 409. When it is due, every tenant is decommissioned through its own saga with no grace period, " +
				"then memberships, invitations, service accounts, and the accounts of members who belong to no other organisation are erased, and names and emails in its audit trail " +
				"are replaced by pseudonyms. One saga per organisation: a retry with the same Idempotency-Key, or the same request sent twice, is one deletion. Audited as organization.deletion_requested.",
			body: deleteOrgRequest{}, data: orgLifecycleResponse{}, status: fiber.StatusAccepted, errs: []errorResponse{errReauth}},
		"POST " + org + "/restore": {id: "restoreOrganization", summary: "Restore the organisation during its deletion's grace period (owners)",
			desc: "Calls the deletion off: the organisation is active again, its tenants as the deletion left them (suspended; resume each). Refused (409) once the deletion is due. " +
				"Audited as organization.restored.",
			data: orgLifecycleResponse{}, status: fiber.StatusAccepted},
		"GET " + org + "/operations": {id: "listOrganizationOperations", summary: "The organisation's own operations (deletions, restores)",
			data: orgOperationView{}, list: true, query: listParams()},
		"GET " + org + "/usage": {id: "getOrganizationUsage", summary: "The organisation's plan and its use of the plan's quotas",
			desc: "Counts what the quota checks count, in one read: tenants that are not failed or decommissioned, and members with pending invitations " +
				"(an invitation holds a seat until it is accepted, revoked or expires; members.pending_invitations says how many of members.used are invitations). " +
				"A creation or invitation is refused with 409 once used reaches limit. " +
				"days are the metered figures of each UTC day from from to to (default: the last 30 days, today included; at most 366 days; " +
				"neither after today; 400 naming the parameter otherwise): tenant hours per environment, peak members, API requests and operations. " +
				"A day the daily close has closed is answered as it was closed; today, and any day not closed yet, is computed now and marked partial.",
			data: usageView{}, query: []*openapi3.Parameter{
				dateParam("from", "the first day, YYYY-MM-DD (UTC); default: 29 days before to"),
				dateParam("to", "the last day, YYYY-MM-DD (UTC); default: today"),
			}},
		"GET " + v1 + "/plans": {id: "listPlans", summary: "Every plan with its quotas",
			desc: "Smallest first (by max_tenants, then id), in one page. Changing an organisation's plan is PATCH /organizations/{org_id} (owners).",
			data: planView{}, list: true},
		"GET " + org + "/regions": {id: "listRegions", summary: "The regions tenants can live in",
			desc: "The installation's regions (empty when it has none: every tenant is on its own data plane), the organisation's default marked. " +
				"A region whose workers are all down is served: false; its tenants' operations wait for them, and the other regions' go on.",
			data: regionView{}, list: true},
		"GET " + org + "/members": {id: "listMembers", summary: "Members of the organisation", data: store.MemberView{}, list: true, query: listParams()},
		"PATCH " + org + "/members/:member_id": {id: "changeMemberRole", summary: "Change a member's role",
			desc: "Granting or taking away owner is for owners only, and granting it needs a recent authentication; the last owner keeps the role.",
			body: changeRoleRequest{}, data: store.MemberView{}, errs: []errorResponse{errReauth}},
		"DELETE " + org + "/members/:member_id": {id: "removeMember", summary: "Remove a member, or leave",
			desc: "A member may remove itself (leave) whatever its role. Only owners remove owners; the last owner can neither be removed nor leave " +
				"(409: make another member an owner first, or delete the organization).", data: store.MemberView{}},
		"POST " + org + "/invitations": {id: "createInvitation", summary: "Invite someone by email",
			desc: "The accept link's one-time secret is delivered by mail only. Pending invitations count against the plan's member quota. " +
				"Inviting an owner needs a recent authentication.",
			body: inviteRequest{}, data: store.InvitationView{}, status: fiber.StatusCreated, errs: []errorResponse{errReauth}},
		"GET " + org + "/invitations":                        {id: "listInvitations", summary: "Invitations of the organisation", data: store.InvitationView{}, list: true, query: listParams()},
		"DELETE " + org + "/invitations/:invitation_id":      {id: "revokeInvitation", summary: "Revoke a pending invitation", data: store.InvitationView{}},
		"POST " + org + "/invitations/:invitation_id/resend": {id: "resendInvitation", summary: "Send a pending invitation again with a new secret and expiry", data: store.InvitationView{}},
		"POST " + v1 + "/invitations/accept": {id: "acceptInvitation", summary: "Accept an invitation with its secret",
			desc: "Creates the user when the email has no account (name and password required); an existing account must give its own password, checked under the sign-in throttle (429 with Retry-After). An unknown secret is refused at once.",
			body: acceptRequest{}, data: acceptResponse{}, status: fiber.StatusCreated, errs: []errorResponse{errUnauth, errNotFound}},
		"POST " + org + "/tenants": {id: "createTenant", summary: "Create a tenant",
			desc: "Answers 202 with the tenant in state provisioning, listed at once; the provisioning saga goes on in Temporal. " +
				"The Idempotency-Key is the workflow id: a retry with the same key returns the first answer. " +
				"When no worker answers within 5 s the answer is 503 with Retry-After: retry with the same key.",
			body: createTenantRequest{}, data: lifecycleResponse{}, status: fiber.StatusAccepted},
		"GET " + org + "/tenants":            {id: "listTenants", summary: "Tenants of the organisation", data: tenantView{}, list: true, query: append(listParams(), tenantState)},
		"GET " + org + "/tenants/:tenant_id": {id: "getTenant", summary: "One tenant", data: tenantView{}},
		"POST " + org + "/tenants/:tenant_id/lifetime": {id: "setTenantLifetime", summary: "Give a tenant a new lifetime, or none",
			desc: "A tenant with a lifetime is decommissioned by its saga when it ends, with no grace period, so this takes the power to decommission " +
				"(the role permission tenant.destroy; a service account needs tenants:decommission), as giving a lifetime at creation does. " +
				"Refused (409) once the tenant's end has begun, or while it is being decommissioned (restore it first). " +
				"A restore of a tenant whose lifetime ended during its grace period ends the lifetime too. Audited as tenant.lifetime_changed. " +
				"Giving a lifetime (not clearing one) needs a person's recent authentication; a retry with the Idempotency-Key of a change already made does not.",
			body: lifetimeRequest{}, data: tenantView{}, errs: []errorResponse{errReauth}},
		"GET " + org + "/tenants/:tenant_id/operations": {id: "listTenantOperations", summary: "The tenant's operations (saga status view), newest first",
			data: operationView{}, list: true, query: listParams()},
		"GET " + org + "/events": {id: "listEvents", summary: "The organisation's audit trail, newest first",
			desc: "With Accept: application/x-ndjson the matching events after ?cursor= (none: from the newest) are streamed, one JSON object per line, without paging, within bounds: " +
				"at most 50,000 events per request; one request of the caller's rate budgets per 200 events sent (a page's worth), the export stopping early when a budget is spent; " +
				"at most 2 exports at once in an organisation and 1 per caller (another is 429 with Retry-After). " +
				"When an export stops before the last matching event, its Next-Cursor header, sent before the first line, is the cursor of its last line: " +
				"pass it as ?cursor= to the next export. limit sizes pages only. " +
				"An export says where the trail starts: Audit-Trail-Starts-After is the seq of the last event retention purged (0: none) and Audit-Trail-Checkpoint its hash, " +
				"to which the first event kept links (verify against the signed head of GET /audit-chain fetched after the export, whose checkpoint is signed).",
			data: store.EventView{}, list: true, ndjson: true, query: append(listParams(),
				stringParam("action", "an exact action (tenant.suspended) or a prefix (tenant.*)", 100, "actionFilter"),
				stringParam("actor_id", "only events by this actor", 64, "noControl"),
				enumParam("actor_type", "only events by actors of this type", []string{"member", "operator", "system", "service_account"}),
				stringParam("target_id", "only events about this target", 64, "noControl"),
				timeParam("since", "only events at or after this time (RFC 3339)"),
				timeParam("until", "only events before this time (RFC 3339)"))},
		"GET " + org + "/audit-chain": {id: "getAuditChain", summary: "The head of the organisation's audit chain, signed",
			desc: "Each event's hash is SHA-256 of the previous event's hash (32 zero bytes before the first) followed by the event's canonical form " +
				"(the event as GET /events shows it, without hash, in RFC 8785 JSON canonicalization), so an edited, deleted or reordered event breaks the chain. " +
				"length is how many events the chain has (the last has seq length), head the last event's hash. " +
				"Retention purges the oldest events (retention says how long the plan keeps them and when the oldest kept occurred); checkpoint is the last purged event (seq, hash, occurred_at; seq 0 and the genesis while none was), " +
				"and the first event kept links to checkpoint.hash as the first event links to the genesis. signature is the Ed25519 signature (base64), " +
				"by the key key_id of GET /api/v1/audit-chain/keys, of the eight lines \"intelliauth-audit-chain/v2\", org_id, length, head, checkpoint.seq, checkpoint.hash, " +
				"checkpoint.occurred_at (RFC 3339, UTC, microseconds: 2026-12-03T10:00:00.000000Z; an empty line when seq is 0) and signed_at (RFC 3339, UTC, whole seconds) joined by \"\\n\" " +
				"(a head without a checkpoint, signed before retention, signs the five lines \"intelliauth-audit-chain/v1\", org_id, length, head and signed_at). " +
				"Keep the heads you fetch: a later chain must extend each of them (the event of seq length has hash head) unless retention purged it (seq at or before the later checkpoint). " +
				"A service account needs events:read and every environment (one limited to environments is refused).",
			data: auditChainHead{}},
		"GET " + v1 + "/audit-chain/keys": {id: "getAuditChainKeys", summary: "The public keys that sign audit chains' heads",
			desc: "Ed25519 public keys (base64), the one that signs now first; a key stays listed as long as it is in the control plane's key ring, so heads signed before a rotation still verify.",
			data: auditChainKeys{}},
		"GET " + org + "/service-accounts": {id: "listServiceAccounts", summary: "Service accounts of the organisation, with their tokens (never the secrets)",
			data: store.ServiceAccountView{}, list: true, query: listParams()},
		"POST " + org + "/service-accounts": {id: "createServiceAccount", summary: "Create a service account and its first token",
			desc: "The account's role is at most the creator's, and the creator answers for it: every action of the account is audited as the account on behalf of that member. " +
				"Its token (cps_…) is in this answer only. A request with the token is allowed only on a route whose scope the account holds, when both the account's role and its accountable member's role allow it; " +
				"tenants outside its environments are not found. Tokens stop working when the accountable member leaves or is removed, until an owner or admin takes the account over.",
			body: createServiceAccountRequest{}, data: createdServiceAccount{}, status: fiber.StatusCreated, errs: []errorResponse{errReauth}},
		"GET " + org + "/service-accounts/:service_account_id": {id: "getServiceAccount", summary: "One service account with its tokens", data: store.ServiceAccountView{}},
		"PATCH " + org + "/service-accounts/:service_account_id": {id: "updateServiceAccount", summary: "Rename a service account or change its role, environments or scopes",
			desc: "A change takes effect on the account's next request. Its role stays at most the caller's.", body: updateServiceAccountRequest{}, data: store.ServiceAccountView{}},
		"DELETE " + org + "/service-accounts/:service_account_id": {id: "deleteServiceAccount", summary: "Delete a service account; its tokens stop working at once", data: store.ServiceAccountView{}},
		"POST " + org + "/service-accounts/:service_account_id/take-over": {id: "takeOverServiceAccount", summary: "Become the member who answers for a service account",
			desc: "How an account whose accountable member left works again. Audited with the members before and after.", data: store.ServiceAccountView{}},
		"POST " + org + "/service-accounts/:service_account_id/tokens": {id: "createServiceToken", summary: "Mint another token for a service account",
			desc: "At most two tokens are valid at once, so a token is rotated without downtime: mint a new one, deploy it, revoke the old one (409 while two are valid).",
			body: mintTokenRequest{}, data: mintedToken{}, status: fiber.StatusCreated, errs: []errorResponse{errReauth}},
		"DELETE " + org + "/service-accounts/:service_account_id/tokens/:token_id": {id: "revokeServiceToken", summary: "Revoke a token at once", data: store.ServiceTokenView{}},
		"GET " + v1 + "/openapi.json": {id: "getOpenAPI", summary: "This document", raw: true},
	}
	maps.Copy(docs, streamRouteDocs(org))
	maps.Copy(docs, billingRouteDocs(org))
	for _, t := range domain.Requested() {
		d := doc{id: string(t.Kind) + "Tenant", summary: t.Summary, desc: t.Description, data: lifecycleResponse{}, status: fiber.StatusAccepted}
		if t.Kind == domain.OpDecommission {
			d.desc += " A person needs a recent authentication; a retry with the Idempotency-Key of a decommission already begun does not."
			d.errs = []errorResponse{errReauth}
		}
		docs["POST "+transitionPath(org, t)] = d
	}
	return docs
}

// buildOpenAPI builds the document of routes from docs, which must hold an
// entry for each route and no other.
func buildOpenAPI(routes []Route, docs map[string]doc) (*openapi3.T, *schemas, error) {
	t := &openapi3.T{
		OpenAPI: "3.1.0",
		Info: &openapi3.Info{
			Title:   "IntelliAuth control plane API",
			Version: "1",
			License: &openapi3.License{Name: "Proprietary"},
			Description: "Provision, suspend, resume and decommission tenants; manage members, invitations, roles and plans; read the audit trail.\n\n" +
				"Every answer carries X-Request-ID. Successes are {data, meta}; lists add meta.cursor and meta.has_more, and ?cursor= fetches the next page. " +
				"Errors are {error: {code, message, field_errors}, meta: {request_id}}. Every mutation accepts Idempotency-Key (kept 24 h): " +
				"a retry with the same key and request gets the first answer with Idempotent-Replayed: true, the same key with another request gets 422. " +
				"Requests are rate limited per organisation by its plan (per user, or per client address without a token), with RateLimit-* headers.",
		},
		Servers: openapi3.Servers{{URL: "/", Description: "the installation that serves this document (production, staging or a local controlplane dev)",
			Extensions: map[string]any{"x-internal": false}}},
		Paths: openapi3.NewPaths(),
		Components: &openapi3.Components{
			Schemas: openapi3.Schemas{},
			SecuritySchemes: openapi3.SecuritySchemes{
				"stripeSignature": {Value: &openapi3.SecurityScheme{Type: "apiKey", In: "header", Name: "Stripe-Signature",
					Description: "Stripe's signature of the event (HMAC-SHA256 under the webhook's signing secret, CP_STRIPE_WEBHOOK_SECRET, with a timestamp checked within 5 minutes)"}},
				"bearerAuth": {Value: &openapi3.SecurityScheme{Type: "http", Scheme: "bearer", Description: "A member's token from POST /api/v1/auth/sign-in (cpt_…), or a service account's token (cps_…) on the routes of its organisation that its scopes allow"}},
			},
			Headers:    commonHeaders(),
			Responses:  errorResponses(),
			Parameters: openapi3.ParametersMap{"IdempotencyKey": {Value: idempotencyKeyParam()}},
		},
		Security: openapi3.SecurityRequirements{{"bearerAuth": []string{}}},
	}
	for _, tag := range []string{"Session", "Organizations", "Plans", "Members", "Invitations", "Tenants", "Service accounts", "Audit events", "Audit streams", "Meta"} {
		t.Tags = append(t.Tags, &openapi3.Tag{Name: tag})
	}
	g := newSchemas(t.Components.Schemas)
	t.Components.Schemas["Error"] = errorSchema(g)

	docs = maps.Clone(docs)
	for _, r := range routes {
		key := r.Method + " " + r.Path
		d, ok := docs[key]
		if !ok {
			return nil, nil, fmt.Errorf("route %s has no entry in routeDocs", key)
		}
		delete(docs, key)
		g.queries[key] = d.query
		op, err := operation(r, d, g)
		if err != nil {
			return nil, nil, fmt.Errorf("route %s: %w", key, err)
		}
		path := OpenAPIPath(r.Path)
		item := t.Paths.Value(path)
		if item == nil {
			item = &openapi3.PathItem{}
			t.Paths.Set(path, item)
		}
		item.SetOperation(r.Method, op)
	}
	if len(docs) > 0 {
		return nil, nil, fmt.Errorf("routeDocs has routes that do not exist: %v", slices.Sorted(maps.Keys(docs)))
	}
	return t, g, nil
}

// openAPIJSON serves the document.
func (s *Server) openAPIJSON(c *fiber.Ctx, _ *caller) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	return c.Send(openAPIDocument())
}

// openAPIDocument is the document as JSON, built once per process (the
// routes do not depend on a server's settings); New calls it, so a route
// table and routeDocs that disagree stop the first server being built.
func openAPIDocument() []byte {
	openAPIOnce.Do(func() {
		t, g, err := buildOpenAPI((&Server{}).Routes(), routeDocs())
		if err != nil {
			panic("openapi: " + err.Error()) // the route table and routeDocs disagree: a programming error every test shows
		}
		openAPIOnce.schemas = g
		if openAPIOnce.json, err = json.Marshal(t); err != nil {
			panic("openapi: " + err.Error())
		}
	})
	return openAPIOnce.json
}

var openAPIOnce struct {
	sync.Once
	json []byte
	// schemas holds the request types' schemas, which decode enforces.
	schemas *schemas
}

var pathParam = regexp.MustCompile(`:([a-z_]+)`)

// OpenAPIPath turns a route's Fiber path /a/:id into the document's /a/{id}.
func OpenAPIPath(p string) string { return pathParam.ReplaceAllString(p, "{$1}") }

func operation(r Route, d doc, g *schemas) (*openapi3.Operation, error) {
	op := &openapi3.Operation{OperationID: d.id, Summary: d.summary, Description: d.desc, Tags: []string{tagOf(r.Path)}, Responses: openapi3.NewResponses()}
	if d.id == "" || d.summary == "" {
		return nil, fmt.Errorf("doc needs an id and a summary")
	}
	if r.Path == stripeWebhookPath {
		op.Security = &openapi3.SecurityRequirements{{"stripeSignature": []string{}}}
	} else if r.Access == Public {
		op.Security = &openapi3.SecurityRequirements{}
	} else if r.Access == Org {
		op.Description = strings.TrimSpace(op.Description + "\n\nRequires the role permission `" + string(r.Action) + "`.")
		if r.Scope != "" {
			op.Description += " A service account needs the scope `" + string(r.Scope) + "`."
		} else {
			op.Description += " Not open to service accounts."
		}
	}
	for _, m := range pathParam.FindAllStringSubmatch(r.Path, -1) {
		// An id that is not one is 404, as any unknown id; a slug that
		// cannot be one is 400.
		s := openapi3.NewStringSchema().WithMaxLength(64)
		if m[1] == "slug" {
			s = s.WithMaxLength(30).WithPattern(domain.OrgSlugPattern.String())
		}
		op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: openapi3.NewPathParameter(m[1]).WithSchema(s)})
	}
	for _, q := range d.query {
		op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: q})
	}
	mutation := r.Method != fiber.MethodGet
	if mutation {
		op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Ref: "#/components/parameters/IdempotencyKey"})
	}
	if d.body != nil {
		ref, err := g.body(d.body)
		if err != nil {
			return nil, err
		}
		op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithJSONSchemaRef(ref)}
	}

	status := d.status
	if status == 0 {
		status = fiber.StatusOK
	}
	success := &openapi3.Response{Description: ptr(http.StatusText(status)), Headers: successHeaders(r, mutation), Content: openapi3.Content{}}
	if d.ndjson {
		for _, h := range []string{"Next-Cursor", "Audit-Trail-Starts-After", "Audit-Trail-Checkpoint"} {
			success.Headers[h] = &openapi3.HeaderRef{Ref: "#/components/headers/" + h}
		}
	}
	switch {
	case d.raw:
		success.Content["application/json"] = &openapi3.MediaType{Schema: &openapi3.SchemaRef{Value: openapi3.NewObjectSchema()}}
	default:
		ref, err := g.named(d.data)
		if err != nil {
			return nil, err
		}
		success.Content["application/json"] = &openapi3.MediaType{Schema: g.envelope(ref, d.list)}
		if d.ndjson {
			lines := &openapi3.Schema{Type: &openapi3.Types{"array"}, Items: ref, Description: "one item per line"}
			success.Content["application/x-ndjson"] = &openapi3.MediaType{Schema: lines.NewRef()}
		}
	}
	op.Responses.Set(fmt.Sprint(status), &openapi3.ResponseRef{Value: success})
	for _, e := range errorsOf(r, d, mutation) {
		op.Responses.Set(fmt.Sprint(e.status), &openapi3.ResponseRef{Ref: "#/components/responses/" + e.name})
	}
	return op, nil
}

func tagOf(path string) string {
	for _, t := range []struct{ part, tag string }{
		{"/audit-streams", "Audit streams"}, {"/service-accounts", "Service accounts"}, {"/tenants", "Tenants"}, {"/members", "Members"}, {"/invitations", "Invitations"}, {"/events", "Audit events"}, {"/audit-chain", "Audit events"},
		{"/organizations", "Organizations"}, {"/organization-slugs", "Organizations"}, {"/plans", "Plans"}, {"/auth/", "Session"}, {"/me", "Session"},
	} {
		if strings.Contains(path, t.part) {
			return t.tag
		}
	}
	return "Meta"
}

type errorResponse struct {
	status int
	name   string
	desc   string
}

var (
	errBadRequest = errorResponse{400, "BadRequest", "BAD_REQUEST: invalid input; field_errors lists every invalid field at once"}
	errUnauth     = errorResponse{401, "Unauthenticated", "UNAUTHENTICATED: missing, invalid, expired or revoked bearer token"}
	errForbidden  = errorResponse{403, "Forbidden", "FORBIDDEN: the caller's role does not allow this (for a service account: its scopes, its role or its accountable member's role, or it has no accountable member); " +
		"MFA_REQUIRED: the organisation requires a second factor and the caller has none (enrol one at /me)"}
	errNotFound = errorResponse{404, "NotFound", "NOT_FOUND: no such resource, or an organisation the caller is not a member of"}
	errConflict = errorResponse{409, "Conflict", "CONFLICT: not allowed in the resource's state, or over a quota of the plan (the message names it)"}
	errTooLarge = errorResponse{413, "PayloadTooLarge", "PAYLOAD_TOO_LARGE: the body is over 64 KiB"}
	errMedia    = errorResponse{415, "UnsupportedMediaType", "UNSUPPORTED_MEDIA_TYPE: the body is not application/json"}
	// errReauth is the 403 of a route guarded by requireRecentAuth: one
	// answer per status, so it says both reasons.
	errReauth = errorResponse{403, "ForbiddenOrReauthenticationRequired", "FORBIDDEN: the caller may not do this (as for any 403); " +
		"or REAUTHENTICATION_REQUIRED: a person must have signed in or reauthenticated within CP_REAUTH_WINDOW (10 min by default) to do this: " +
		"POST /api/v1/auth/reauthenticate, then send the same request again with the same Idempotency-Key. Service accounts are not asked."}
	// errSignUpClosedResponse is the 403 of sign-up and verification, the
	// only 403 of a public route.
	errSignUpClosedResponse = errorResponse{403, "SignUpClosed", "FORBIDDEN: sign-up is closed on this installation (CP_SIGNUP=closed): its operators create organizations"}
	errKeyReused            = errorResponse{422, "IdempotencyKeyReused", "IDEMPOTENCY_KEY_REUSED: this Idempotency-Key was used with another request"}
	errRateLimited          = errorResponse{429, "RateLimited", "RATE_LIMITED: the budget is spent; retry after Retry-After seconds"}
	errInternal             = errorResponse{500, "InternalError", "INTERNAL_ERROR: nothing internal is shown; quote the request_id"}
	errUnavailable          = errorResponse{503, "Unavailable", "UNAVAILABLE: the database is briefly unreachable, or no worker answered within the bound; nothing was done twice: retry after Retry-After seconds (a mutation with the same Idempotency-Key)"}
	errorResponsesV         = []errorResponse{errBadRequest, errUnauth, errForbidden, errReauth, errSignUpClosedResponse, errNotFound, errConflict, errTooLarge, errMedia, errKeyReused, errRateLimited, errInternal, errUnavailable}
)

// errorsOf is every error a route can answer, from its access rule and
// shape.
func errorsOf(r Route, d doc, mutation bool) []errorResponse {
	var out []errorResponse
	if d.body != nil || len(d.query) > 0 || mutation {
		out = append(out, errBadRequest)
	}
	if r.Access != Public {
		out = append(out, errUnauth)
	}
	if r.Access == Org {
		out = append(out, errForbidden, errNotFound)
	} else if strings.Contains(r.Path, ":") {
		out = append(out, errNotFound)
	}
	if r.Access == User {
		// A service account's token is refused outside its organisation.
		out = append(out, errForbidden)
	}
	if mutation {
		out = append(out, errConflict)
	}
	if d.body != nil {
		out = append(out, errTooLarge, errMedia)
	}
	if mutation {
		out = append(out, errKeyReused)
	}
	// Any route may find its database unreachable for a moment.
	out = append(out, errRateLimited, errInternal, errUnavailable)
	// A route's own error of a status replaces the general one.
	for _, e := range d.errs {
		if i := slices.IndexFunc(out, func(o errorResponse) bool { return o.status == e.status }); i >= 0 {
			out[i] = e
		} else {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b errorResponse) int { return a.status - b.status })
	return out
}

func errorResponses() openapi3.ResponseBodies {
	out := openapi3.ResponseBodies{}
	for _, e := range errorResponsesV {
		h := openapi3.Headers{"X-Request-ID": {Ref: "#/components/headers/X-Request-ID"}}
		// An answer to a request charged to a budget says where the
		// budget stands, refused or not.
		for _, name := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
			h[name] = &openapi3.HeaderRef{Ref: "#/components/headers/" + name}
		}
		if e.status == 429 || e.status == 503 {
			h["Retry-After"] = &openapi3.HeaderRef{Ref: "#/components/headers/Retry-After"}
		}
		resp := openapi3.NewResponse().WithDescription(e.desc).WithJSONSchemaRef(&openapi3.SchemaRef{Ref: "#/components/schemas/Error"})
		resp.Headers = h
		out[e.name] = &openapi3.ResponseRef{Value: resp}
	}
	return out
}

func successHeaders(r Route, mutation bool) openapi3.Headers {
	h := openapi3.Headers{}
	for _, name := range []string{"X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
		h[name] = &openapi3.HeaderRef{Ref: "#/components/headers/" + name}
	}
	if mutation {
		h["Idempotent-Replayed"] = &openapi3.HeaderRef{Ref: "#/components/headers/Idempotent-Replayed"}
	}
	return h
}

func commonHeaders() openapi3.Headers {
	header := func(desc string, required bool, schema *openapi3.Schema) *openapi3.HeaderRef {
		return &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{Description: desc, Required: required, Schema: schema.NewRef()}}}
	}
	count := openapi3.NewIntegerSchema().WithMin(0)
	return openapi3.Headers{
		"X-Request-ID":        header("The request's id: the caller's X-Request-ID when valid, else a new one. It is in the log line, the workflow memo and the audit events.", true, openapi3.NewStringSchema()),
		"RateLimit-Limit":     header("Requests per minute of the budget this request was charged to.", false, count),
		"RateLimit-Remaining": header("Requests left in the current window.", false, count),
		"RateLimit-Reset":     header("Seconds until the window ends.", false, count),
		"Retry-After":         header("Seconds to wait before retrying.", true, count),
		"Idempotent-Replayed": header("true when this is the stored answer of an earlier request with the same Idempotency-Key.", false, openapi3.NewStringSchema().WithEnum("true")),
		"Next-Cursor": header("Of an NDJSON export that stops before the last matching event (at its cap, or where the caller's budget ran out): "+
			"the cursor of its last line, to pass as ?cursor= to the next export. Absent when the export reaches the end.", false, openapi3.NewStringSchema()),
		"Audit-Trail-Starts-After": header("Of an NDJSON export: the seq of the last event retention purged from the organisation's chain (0 while none was); "+
			"the trail starts at the next.", false, count),
		"Audit-Trail-Checkpoint": header("Of an NDJSON export: the hash (hex) of the last event retention purged (the genesis, 64 zeros, while none was), "+
			"to which the first event kept links.", false, openapi3.NewStringSchema()),
	}
}

func idempotencyKeyParam() *openapi3.Parameter {
	p := openapi3.NewHeaderParameter("Idempotency-Key").WithSchema(openapi3.NewStringSchema().WithMinLength(1).WithMaxLength(255))
	p.Description = "Makes the request safe to retry: scoped to the organisation (or the user outside one), kept 24 h."
	return p
}

func listParams() []*openapi3.Parameter {
	cursor := openapi3.NewQueryParameter("cursor").WithSchema(openapi3.NewStringSchema().WithMaxLength(512))
	cursor.Description = "meta.cursor of the previous page"
	limit := openapi3.NewQueryParameter("limit").WithSchema(openapi3.NewInt32Schema().WithMin(1).WithMax(maxLimit).WithDefault(defaultLimit))
	limit.Description = "page size"
	return []*openapi3.Parameter{cursor, limit}
}

// stringParam is a query parameter of at most maxLength characters that
// matches the named pattern (patterns).
func stringParam(name, desc string, maxLength int64, pattern string) *openapi3.Parameter {
	p := openapi3.NewQueryParameter(name).WithSchema(openapi3.NewStringSchema().WithMaxLength(maxLength).WithPattern(patterns[pattern].re.String()))
	p.Description = desc
	return p
}

func dateParam(name, desc string) *openapi3.Parameter {
	p := openapi3.NewQueryParameter(name).WithSchema(openapi3.NewStringSchema().WithFormat("date").WithMaxLength(10))
	p.Description = desc
	return p
}

func timeParam(name, desc string) *openapi3.Parameter {
	p := openapi3.NewQueryParameter(name).WithSchema(openapi3.NewDateTimeSchema().WithMaxLength(64))
	p.Description = desc
	return p
}

func enumParam[T ~string](name, desc string, values []T) *openapi3.Parameter {
	p := openapi3.NewQueryParameter(name).WithSchema(openapi3.NewStringSchema().WithEnum(anys(values)...))
	p.Description = desc
	return p
}

// envelope is the component of an answer around data: {data, meta}, and
// for a list {data: [...], meta} with the cursor; TenantEnvelope and
// TenantPage around Tenant.
func (g *schemas) envelope(data *openapi3.SchemaRef, list bool) *openapi3.SchemaRef {
	name, metaName := strings.TrimPrefix(data.Ref, "#/components/schemas/")+"Envelope", "Meta"
	if list {
		name, metaName = strings.TrimSuffix(name, "Envelope")+"Page", "PageMeta"
	}
	if _, ok := g.into[name]; ok {
		return &openapi3.SchemaRef{Ref: "#/components/schemas/" + name, Value: g.into[name].Value}
	}
	if _, ok := g.into[metaName]; !ok {
		meta := openapi3.NewObjectSchema().WithoutAdditionalProperties()
		meta.Properties = openapi3.Schemas{
			"request_id": openapi3.NewStringSchema().NewRef(),
			"timestamp":  openapi3.NewDateTimeSchema().NewRef(),
		}
		meta.Required = []string{"request_id", "timestamp"}
		if list {
			cursor := openapi3.NewStringSchema()
			cursor.Description = "the next page's cursor; empty on the last page"
			meta.Properties["cursor"] = cursor.NewRef()
			meta.Properties["has_more"] = openapi3.NewBoolSchema().NewRef()
			meta.Required = append(meta.Required, "cursor", "has_more")
		}
		g.into[metaName] = meta.NewRef()
	}
	if list {
		data = (&openapi3.Schema{Type: &openapi3.Types{"array"}, Items: data}).NewRef()
	}
	env := openapi3.NewObjectSchema().WithoutAdditionalProperties()
	env.Properties = openapi3.Schemas{"data": data, "meta": {Ref: "#/components/schemas/" + metaName, Value: g.into[metaName].Value}}
	env.Required = []string{"data", "meta"}
	g.into[name] = env.NewRef()
	return &openapi3.SchemaRef{Ref: "#/components/schemas/" + name, Value: env}
}

// errorSchema is the body of every error answer.
func errorSchema(g *schemas) *openapi3.SchemaRef {
	fieldErr := openapi3.NewObjectSchema().WithoutAdditionalProperties()
	fieldErr.Properties = openapi3.Schemas{"field": openapi3.NewStringSchema().NewRef(), "message": openapi3.NewStringSchema().NewRef()}
	fieldErr.Required = []string{"field", "message"}
	g.into["FieldError"] = fieldErr.NewRef()
	g.into["ErrorCode"] = openapi3.NewStringSchema().WithEnum(anys(domain.Codes)...).NewRef()
	inner := openapi3.NewObjectSchema().WithoutAdditionalProperties()
	inner.Properties = openapi3.Schemas{
		"code":         {Ref: "#/components/schemas/ErrorCode", Value: g.into["ErrorCode"].Value},
		"message":      openapi3.NewStringSchema().NewRef(),
		"field_errors": openapi3.NewArraySchema().WithItems(fieldErr).NewRef(),
	}
	inner.Properties["field_errors"].Value.Items = &openapi3.SchemaRef{Ref: "#/components/schemas/FieldError", Value: fieldErr}
	inner.Required = []string{"code", "message", "field_errors"}
	g.into["ErrorDetail"] = inner.NewRef()
	meta := openapi3.NewObjectSchema().WithoutAdditionalProperties()
	meta.Properties = openapi3.Schemas{"request_id": openapi3.NewStringSchema().NewRef()}
	meta.Required = []string{"request_id"}
	g.into["ErrorMeta"] = meta.NewRef()
	out := openapi3.NewObjectSchema().WithoutAdditionalProperties()
	out.Properties = openapi3.Schemas{
		"error": {Ref: "#/components/schemas/ErrorDetail", Value: inner},
		"meta":  {Ref: "#/components/schemas/ErrorMeta", Value: meta},
	}
	out.Required = []string{"error", "meta"}
	return out.NewRef()
}

// anys are an enumeration's values as plain strings, as JSON carries them:
// validating a decoded body compares its strings with them.
func anys[T ~string](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
