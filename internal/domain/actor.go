package domain

// Actor is who a request or an audit event names: a member, a service
// account, an operator or the system. The API builds it from the caller,
// workflows carry it in their inputs (its JSON is in their histories: a
// field is added, never renamed), and the store writes it into an audit
// event's actor columns and on_behalf_of.
type Actor struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Email string `json:"email"`
	// Name is a service account's name.
	Name string `json:"name,omitempty"`
	// OnBehalfOf is, for a service account, the human who answers for
	// it; for the system, whoever it acts for (an ephemeral tenant's
	// creator).
	OnBehalfOf *Actor `json:"on_behalf_of,omitempty"`
	// TokenID is, for a service account, the token its request came
	// with: which of its (at most two) tokens acted, to revoke the one
	// that did.
	TokenID string `json:"token_id,omitempty"`
}
