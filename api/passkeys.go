package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/passkey"
	"github.com/intelliauth/controlplane/internal/store"
)

// Passkeys (WebAuthn): a person registers them from their account and
// signs in with one, either as the second step after a password or
// without a password at all. The relying party is the console's host
// name; a ceremony's state stays on its challenge's row, server-side.

// relyingParty is the passkeys' relying party, of CP_CONSOLE_URL. A
// console reached by an IP address cannot have passkeys: UNAVAILABLE.
func (s *Server) relyingParty(c *fiber.Ctx) (*passkey.RP, error) {
	rp, err := passkey.New(s.consoleURL)
	if err != nil {
		zerolog.Ctx(c.UserContext()).Warn().Err(err).Msg("passkeys are unavailable")
		return nil, domain.Errorf(domain.CodeUnavailable, "passkeys are not available on this control plane: its console URL (CP_CONSOLE_URL) must name a host, not an IP address")
	}
	return rp, nil
}

// passkeyOptions is a ceremony's challenge and what the browser passes to
// navigator.credentials.
type passkeyOptions struct {
	Challenge string `json:"challenge" doc:"single-use, for 5 minutes (cpc_…): send it back with the authenticator's answer"`
	// Options is go-webauthn's PublicKeyCredentialCreationOptions or
	// PublicKeyCredentialRequestOptions, as JSON.
	Options json.RawMessage `json:"options" doc:"PublicKeyCredentialCreationOptions (registration) or PublicKeyCredentialRequestOptions (sign-in) in their JSON form (binary fields base64url), for navigator.credentials.create or get"`
}

// passkeyView is one of a person's passkeys. Its key and credential id
// are not shown.
type passkeyView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at" doc:"When it last signed in; null when it never has."`
}

func newPasskeyView(pk store.WebAuthnCredential) passkeyView {
	return passkeyView{ID: pk.ID, Name: pk.Name, CreatedAt: pk.CreatedAt, LastUsedAt: pk.LastUsedAt}
}

// personOf is the user as a ceremony sees them, with their passkeys.
func personOf(ctx context.Context, db bun.IDB, user store.User) (passkey.Person, error) {
	pks, err := store.PasskeysOf(ctx, db, user.ID)
	if err != nil {
		return passkey.Person{}, err
	}
	p := passkey.Person{ID: user.ID, Email: user.Email, Name: user.Name}
	for _, pk := range pks {
		var cred webauthn.Credential
		if err := json.Unmarshal(pk.Credential, &cred); err != nil {
			return passkey.Person{}, fmt.Errorf("passkey %s: %w", pk.ID, err)
		}
		p.Credentials = append(p.Credentials, cred)
	}
	return p, nil
}

// beginPasskeyRegistration makes the options of a new passkey for the
// caller and keeps the ceremony on a new registration challenge.
func (s *Server) beginPasskeyRegistration(c *fiber.Ctx, who *caller) error {
	// A new way in: a stolen session must not add its own.
	if err := s.requireRecentAuth(who); err != nil {
		return err
	}
	rp, err := s.relyingParty(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	user, err := store.UserByID(ctx, s.db, who.UserID)
	if err != nil {
		return err
	}
	p, err := personOf(ctx, s.db, user)
	if err != nil {
		return err
	}
	options, ceremony, err := rp.BeginRegistration(p)
	if err != nil {
		return err
	}
	secret, _, err := store.CreateChallenge(ctx, s.db, store.PurposePasskeyRegistration, user.ID, ceremony, s.eventBase(c, nil))
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, passkeyOptions{Challenge: secret, Options: options})
}

type registerPasskeyRequest struct {
	Challenge  string          `json:"challenge" jsonschema:"minLength=1,maxLength=128,pattern=noControl"`
	Name       string          `json:"name" jsonschema:"minLength=1,maxLength=100"`
	Credential json.RawMessage `json:"credential" jsonschema:"type=object" doc:"the PublicKeyCredential navigator.credentials.create gave, in its JSON form (binary fields base64url)"`
}

func (r *registerPasskeyRequest) validate() []domain.FieldError {
	var fe fields
	var p string
	if r.Name, p = domain.DisplayName(r.Name, 100); p != "" {
		fe.add("name", p)
	}
	return fe
}

// errRegistrationChallenge is a registration whose challenge is not the
// caller's, used or expired. Not a 401: the caller's session is fine.
var errRegistrationChallenge = &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body",
	FieldErrors: []domain.FieldError{{Field: "challenge", Message: "invalid, used or expired: ask for new registration options"}}}

// registerPasskey checks the authenticator's answer to the caller's
// registration ceremony and stores the passkey; the challenge is used up
// in the same transaction.
func (s *Server) registerPasskey(c *fiber.Ctx, who *caller) error {
	var req registerPasskeyRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	rp, err := s.relyingParty(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	ch, err := store.LoadChallenge(ctx, s.db, req.Challenge, store.PurposePasskeyRegistration)
	if errors.Is(err, store.ErrChallengeInvalid) || (err == nil && ch.UserID != who.UserID) {
		return errRegistrationChallenge
	}
	if err != nil {
		return err
	}
	user, err := store.UserByID(ctx, s.db, who.UserID)
	if err != nil {
		return err
	}
	p, err := personOf(ctx, s.db, user)
	if err != nil {
		return err
	}
	cred, err := rp.FinishRegistration(p, ch.WebAuthn, req.Credential)
	if errors.Is(err, passkey.ErrRefused) {
		zerolog.Ctx(ctx).Info().Str("user_id", user.ID).Str("reason", err.Error()).Msg("passkey registration refused")
		return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body",
			FieldErrors: []domain.FieldError{{Field: "credential", Message: "the authenticator's answer was refused (wrong origin, challenge or signature): try again"}}}
	}
	if err != nil {
		return err
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return err
	}
	pk, err := store.RegisterPasskey(ctx, s.db, user, req.Challenge,
		store.WebAuthnCredential{CredentialID: cred.ID, Name: req.Name, Credential: raw}, s.eventBase(c, nil))
	if errors.Is(err, store.ErrChallengeInvalid) {
		return errRegistrationChallenge
	}
	if err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Str("user_id", user.ID).Str("passkey_id", pk.ID).Msg("passkey registered")
	return writeData(c, fiber.StatusCreated, newPasskeyView(pk))
}

// listPasskeys lists the caller's passkeys, oldest first.
func (s *Server) listPasskeys(c *fiber.Ctx, who *caller) error {
	pks, err := store.PasskeysOf(c.UserContext(), s.db, who.UserID)
	if err != nil {
		return err
	}
	views := make([]passkeyView, len(pks))
	for i, pk := range pks {
		views[i] = newPasskeyView(pk)
	}
	return writeList(c, views, "", false)
}

// removePasskey removes one of the caller's passkeys, once they proved
// who they are recently.
func (s *Server) removePasskey(c *fiber.Ctx, who *caller) error {
	id := c.Params("passkey_id")
	if !domain.ValidID(domain.PrefixPasskey, id) {
		return store.ErrPasskeyNotFound
	}
	if err := s.requireRecentAuth(who); err != nil {
		return err
	}
	ctx := c.UserContext()
	user, err := store.UserByID(ctx, s.db, who.UserID)
	if err != nil {
		return err
	}
	pk, err := store.RemovePasskey(ctx, s.db, user, id, s.eventBase(c, nil))
	if err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Str("user_id", user.ID).Str("passkey_id", pk.ID).Msg("passkey removed")
	return writeData(c, fiber.StatusOK, newPasskeyView(pk))
}

type passkeySignInOptionsRequest struct {
	Challenge string `json:"challenge,omitempty" jsonschema:"maxLength=128,pattern=noControl" doc:"the challenge of POST /auth/sign-in's answer when mfa_required; absent: a sign-in with a passkey and no password"`
}

func (r *passkeySignInOptionsRequest) validate() []domain.FieldError {
	return nil // its schema says it all
}

// errPasskeySignIn is the one answer to a passkey sign-in that fails: a
// forged, used, expired or other challenge, another person's passkey, a
// bad signature, a cloned authenticator.
var errPasskeySignIn = domain.Errorf(domain.CodeUnauthenticated, "the passkey sign-in was refused, or its challenge is used or expired: start again")

// passkeySignInOptions makes the options of a passkey sign-in: with the
// challenge of a password's sign-in, an assertion by one of that user's
// passkeys, kept on that challenge; without, a new challenge for any
// discoverable passkey.
func (s *Server) passkeySignInOptions(c *fiber.Ctx, _ *caller) error {
	var req passkeySignInOptionsRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	rp, err := s.relyingParty(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if req.Challenge == "" {
		options, ceremony, err := rp.BeginSignIn(nil)
		if err != nil {
			return err
		}
		secret, _, err := store.CreateChallenge(ctx, s.db, store.PurposePasskeySignIn, "", ceremony, s.eventBase(c, nil))
		if err != nil {
			return err
		}
		return writeData(c, fiber.StatusOK, passkeyOptions{Challenge: secret, Options: options})
	}
	ch, err := store.LoadChallenge(ctx, s.db, req.Challenge, store.PurposeSignIn)
	if errors.Is(err, store.ErrChallengeInvalid) {
		return errPasskeySignIn
	}
	if err != nil {
		return err
	}
	user, err := store.UserByID(ctx, s.db, ch.UserID)
	if err != nil {
		return err
	}
	p, err := personOf(ctx, s.db, user)
	if err != nil {
		return err
	}
	if len(p.Credentials) == 0 {
		return domain.Errorf(domain.CodeConflict, "this account has no passkey: use another second factor")
	}
	options, ceremony, err := rp.BeginSignIn(&p)
	if err != nil {
		return err
	}
	if _, err := store.AttachCeremony(ctx, s.db, req.Challenge, store.PurposeSignIn, ceremony); errors.Is(err, store.ErrChallengeInvalid) {
		return errPasskeySignIn
	} else if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, passkeyOptions{Challenge: req.Challenge, Options: options})
}

type passkeySignInRequest struct {
	Challenge  string          `json:"challenge" jsonschema:"minLength=1,maxLength=128,pattern=noControl"`
	Credential json.RawMessage `json:"credential" jsonschema:"type=object" doc:"the PublicKeyCredential navigator.credentials.get gave, in its JSON form (binary fields base64url)"`
}

func (r *passkeySignInRequest) validate() []domain.FieldError {
	return nil // its schema says it all; go-webauthn reads the credential
}

// passkeySignIn signs a person in with a passkey's assertion on a
// challenge of POST /auth/sign-in/webauthn/options. Attempts are counted
// by the sign-in throttle (per email when the challenge names the user);
// a success gives its attempt back. Every failure gets the same answer,
// and is logged with its reason for operators.
func (s *Server) passkeySignIn(c *fiber.Ctx, _ *caller) error {
	var req passkeySignInRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	rp, err := s.relyingParty(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	ch, chErr := store.LoadSignInCeremony(ctx, s.db, req.Challenge)
	if chErr != nil && !errors.Is(chErr, store.ErrChallengeInvalid) {
		return chErr
	}
	// The throttle's key: the account's email when the challenge names
	// one, else the client's address (a key of the whole installation
	// would let strangers' failures delay everyone's passwordless sign-in).
	var user store.User
	key := "passkey@" + c.IP()
	if chErr == nil && ch.UserID != "" {
		if user, err = store.UserByID(ctx, s.db, ch.UserID); err != nil {
			return err
		}
		key = "passkey:" + user.Email
	}
	slot, err := s.reserveAttempt(c, key, "failed sign-ins")
	if err != nil {
		return err
	}
	refuse := func(reason string, l *zerolog.Event) error {
		l.Str("reason", reason).Msg("passkey sign-in refused")
		return errPasskeySignIn
	}
	log := zerolog.Ctx(ctx)
	if chErr != nil {
		return refuse("the challenge is unknown, used, expired or of another purpose", log.Info())
	}
	a, err := passkey.ParseAssertion(req.Credential)
	if err != nil {
		return refuse(err.Error(), log.Info())
	}
	pk, err := store.PasskeyByCredentialID(ctx, s.db, a.CredentialID())
	if errors.Is(err, store.ErrPasskeyNotFound) {
		return refuse("no such passkey", log.Info())
	}
	if err != nil {
		return err
	}
	if user.ID == "" {
		if user, err = store.UserByID(ctx, s.db, pk.UserID); err != nil {
			return err
		}
	} else if pk.UserID != user.ID {
		return refuse("the passkey is another person's", log.Info().Str("user_id", user.ID).Str("passkey_id", pk.ID))
	}
	p, err := personOf(ctx, s.db, user)
	if err != nil {
		return err
	}
	cred, err := rp.FinishSignIn(p, ch.WebAuthn, a)
	if errors.Is(err, passkey.ErrCloned) {
		return refuse(err.Error(), log.Warn().Str("user_id", user.ID).Str("passkey_id", pk.ID))
	}
	if err != nil {
		if !errors.Is(err, passkey.ErrRefused) {
			return err
		}
		return refuse(err.Error(), log.Info().Str("user_id", user.ID).Str("passkey_id", pk.ID))
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return err
	}
	return s.startSession(c, user, "passkey", func(ctx context.Context, tx bun.Tx) error {
		used, err := store.UseChallenge(ctx, tx, req.Challenge, ch.Purpose)
		if errors.Is(err, store.ErrChallengeInvalid) || (err == nil && !bytes.Equal(used.WebAuthn, ch.WebAuthn)) {
			// Used at once by another request, or given a newer ceremony.
			return refuse("the challenge was used or renewed meanwhile", log.Info().Str("user_id", user.ID))
		}
		if err != nil {
			return err
		}
		// The counter is checked again under the row's lock: of two
		// sign-ins at once, the second sees what the first wrote.
		locked, err := store.LockPasskey(ctx, tx, pk.ID)
		if errors.Is(err, store.ErrPasskeyNotFound) {
			return refuse("the passkey was removed meanwhile", log.Info().Str("user_id", user.ID))
		}
		if err != nil {
			return err
		}
		var before webauthn.Credential
		if err := json.Unmarshal(locked.Credential, &before); err != nil {
			return fmt.Errorf("passkey %s: %w", pk.ID, err)
		}
		if passkey.CounterWentBack(before.Authenticator.SignCount, cred.Authenticator.SignCount) {
			return refuse(passkey.ErrCloned.Error(), log.Warn().Str("user_id", user.ID).Str("passkey_id", pk.ID))
		}
		if err := store.PasskeyUsed(ctx, tx, pk.ID, raw); err != nil {
			return err
		}
		return slot.Succeeded(ctx, tx)
	})
}
