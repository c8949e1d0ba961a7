// Package passkey is the relying party of people's passkeys (WebAuthn):
// the options of registration and sign-in ceremonies and the checks of
// what an authenticator answers, by go-webauthn, for the console's origin.
// It stores nothing: the caller keeps a ceremony's state and the
// credentials.
package passkey

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// DisplayName is the relying party's name authenticators show.
const DisplayName = "IntelliAuth"

// RP is the relying party: its id is the console's host name and the
// only origin it accepts is the console's.
type RP struct {
	w *webauthn.WebAuthn
}

// New makes the relying party of the console at consoleURL. A host that
// is an IP address cannot be a relying party id (WebAuthn §5.1.4), so
// such a console has no passkeys.
func New(consoleURL string) (*RP, error) {
	u, err := url.Parse(consoleURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("console URL %q: not an absolute URL", consoleURL)
	}
	host := u.Hostname()
	if net.ParseIP(host) != nil {
		return nil, fmt.Errorf("console URL %q: an IP address cannot be a passkey's relying party id; use a host name (dev: localhost)", consoleURL)
	}
	w, err := webauthn.New(&webauthn.Config{
		RPID:          host,
		RPDisplayName: DisplayName,
		RPOrigins:     []string{u.Scheme + "://" + u.Host},
		// No attestation is asked for: which maker's authenticator a person
		// uses is theirs, and no trust is placed in it.
		AttestationPreference: protocol.PreferNoAttestation,
	})
	if err != nil {
		return nil, fmt.Errorf("passkey relying party: %w", err)
	}
	return &RP{w: w}, nil
}

// ID is the relying party id (the console's host name).
func (rp *RP) ID() string { return rp.w.Config.RPID }

// Person is a user as a ceremony sees them: the user handle is their id's
// bytes.
type Person struct {
	ID, Email, Name string
	Credentials     []webauthn.Credential
}

// WebAuthnID is the user handle.
func (p Person) WebAuthnID() []byte { return []byte(p.ID) }

// WebAuthnName is the account's name an authenticator shows.
func (p Person) WebAuthnName() string { return p.Email }

// WebAuthnDisplayName is the person's name, or their email.
func (p Person) WebAuthnDisplayName() string {
	if p.Name != "" {
		return p.Name
	}
	return p.Email
}

// WebAuthnCredentials are the person's passkeys.
func (p Person) WebAuthnCredentials() []webauthn.Credential { return p.Credentials }

// Ceremony is a ceremony's state (go-webauthn's SessionData as JSON),
// which the caller keeps server-side until the answer comes.
type Ceremony = json.RawMessage

// ErrRefused is every failed check of an authenticator's answer; Detail
// says which, for the log only.
var ErrRefused = errors.New("passkey: the authenticator's answer was refused")

// refused wraps the library's error in ErrRefused, keeping its details.
func refused(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: %s: %s %s", ErrRefused, pe.Type, pe.Details, pe.DevInfo)
	}
	return fmt.Errorf("%w: %v", ErrRefused, err)
}

// BeginRegistration makes the options of a new passkey for p: a
// discoverable credential (so it signs in without an email), user
// verification preferred, none of p's passkeys again.
func (rp *RP) BeginRegistration(p Person) (options json.RawMessage, c Ceremony, err error) {
	required := true
	creation, session, err := rp.w.BeginRegistration(p,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			RequireResidentKey: &required,
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			UserVerification:   protocol.VerificationPreferred,
		}),
		webauthn.WithExclusions(webauthn.Credentials(p.Credentials).CredentialDescriptors()))
	if err != nil {
		return nil, nil, fmt.Errorf("begin passkey registration: %w", err)
	}
	return marshalPair(creation.Response, session)
}

// FinishRegistration checks the authenticator's answer to the ceremony c
// begun for p (challenge, origin, relying party id, user presence, the
// attestation's signature) and returns the new credential.
func (rp *RP) FinishRegistration(p Person, c Ceremony, answer json.RawMessage) (webauthn.Credential, error) {
	var session webauthn.SessionData
	if err := json.Unmarshal(c, &session); err != nil {
		return webauthn.Credential{}, fmt.Errorf("passkey ceremony: %w", err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(answer)
	if err != nil {
		return webauthn.Credential{}, refused(err)
	}
	cred, err := rp.w.CreateCredential(p, session, parsed)
	if err != nil {
		return webauthn.Credential{}, refused(err)
	}
	return *cred, nil
}

// BeginSignIn makes the options of a sign-in: with p (the second step
// after a password), an assertion by one of p's passkeys, user
// verification preferred; with nil (a sign-in without a password), by any
// discoverable passkey of this relying party, user verification required
// since the passkey is then both factors.
func (rp *RP) BeginSignIn(p *Person) (options json.RawMessage, c Ceremony, err error) {
	var assertion *protocol.CredentialAssertion
	var session *webauthn.SessionData
	if p != nil {
		assertion, session, err = rp.w.BeginLogin(*p, webauthn.WithUserVerification(protocol.VerificationPreferred))
	} else {
		assertion, session, err = rp.w.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("begin passkey sign-in: %w", err)
	}
	return marshalPair(assertion.Response, session)
}

// Assertion is an authenticator's parsed answer to a sign-in.
type Assertion struct {
	parsed *protocol.ParsedCredentialAssertionData
}

// ParseAssertion parses an authenticator's answer (the
// PublicKeyCredential's JSON).
func ParseAssertion(answer json.RawMessage) (Assertion, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(answer)
	if err != nil {
		return Assertion{}, refused(err)
	}
	return Assertion{parsed}, nil
}

// CredentialID is the id of the passkey that answered.
func (a Assertion) CredentialID() []byte { return a.parsed.RawID }

// UserHandle is the user handle the passkey gave (a discoverable one
// gives it), empty when none.
func (a Assertion) UserHandle() []byte { return a.parsed.Response.UserHandle }

// ErrCloned is a passkey whose signature counter did not move forward: two
// authenticators may hold its key.
var ErrCloned = errors.New("passkey: the signature counter went backwards (a cloned authenticator?)")

// FinishSignIn checks the assertion a against the ceremony c and p's
// passkeys: the challenge, origin, relying party id, user presence (and
// verification when the ceremony required it), the signature by the
// passkey's public key, that the passkey is p's (and, for a second step,
// one the options allowed), and that its signature counter moved forward
// (ErrCloned if not). It returns the passkey with its counter and flags
// updated.
func (rp *RP) FinishSignIn(p Person, c Ceremony, a Assertion) (webauthn.Credential, error) {
	var session webauthn.SessionData
	if err := json.Unmarshal(c, &session); err != nil {
		return webauthn.Credential{}, fmt.Errorf("passkey ceremony: %w", err)
	}
	var cred *webauthn.Credential
	var err error
	if len(session.UserID) > 0 {
		cred, err = rp.w.ValidateLogin(p, session, a.parsed)
	} else {
		// The user handle names p; the handler checks it is the one the
		// caller looked up by it.
		cred, err = rp.w.ValidateDiscoverableLogin(func(_, handle []byte) (webauthn.User, error) {
			if !bytes.Equal(handle, p.WebAuthnID()) {
				return nil, errors.New("the user handle is not the passkey's owner")
			}
			return p, nil
		}, session, a.parsed)
	}
	if err != nil {
		return webauthn.Credential{}, refused(err)
	}
	if cred.Authenticator.CloneWarning {
		return *cred, ErrCloned
	}
	return *cred, nil
}

// CounterWentBack reports whether a counter now of a passkey whose counter
// was before did not move forward, the counters not both zero (an
// authenticator that keeps no counter sends zero).
func CounterWentBack(before, now uint32) bool {
	return now <= before && (now != 0 || before != 0)
}

func marshalPair(options any, session *webauthn.SessionData) (json.RawMessage, Ceremony, error) {
	o, err := json.Marshal(options)
	if err != nil {
		return nil, nil, fmt.Errorf("passkey options: %w", err)
	}
	s, err := json.Marshal(session)
	if err != nil {
		return nil, nil, fmt.Errorf("passkey ceremony: %w", err)
	}
	return o, s, nil
}
