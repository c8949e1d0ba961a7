package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/intelliauth/controlplane/internal/auditstream"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/outbound"
	"github.com/intelliauth/controlplane/internal/store"
)

// Audit streams: an organisation's audit events delivered to its own
// systems (SPEC §9). The handlers write the stream (store, with its
// event) and wake its workflow (workflows.Client.WakeStream), which
// delivers; the test button is the one delivery made here.

// SigningSecretPrefix starts an https stream's signing secret, so secret
// scanners can tell it from the control plane's other secrets.
const SigningSecretPrefix = "cpw_"

// streamFields are what a creation sets and a change may.
type streamFields struct {
	Name     *string   `json:"name,omitempty" jsonschema:"minLength=1,maxLength=100"`
	Endpoint *string   `json:"endpoint,omitempty" jsonschema:"minLength=1,maxLength=2048,format=uri" doc:"Where the batches are posted: https only, never a loopback, private, link-local or metadata address (checked again at each connection). For splunk_hec the collector's full URL (…/services/collector/event), for datadog the Logs API's (https://http-intake.logs.<site>/api/v2/logs)."`
	Actions  *[]string `json:"actions,omitempty" jsonschema:"maxItems=50,uniqueItems,itemMaxLength=100,itemPattern=actionFilter" doc:"Only these events: exact actions (tenant.provisioned) and families (tenant.*), at most 50; empty or absent: every event."`
	// Credential is the receiver's: a Splunk HEC token, a Datadog API key.
	Credential *string `json:"credential,omitempty" jsonschema:"minLength=1,maxLength=512,pattern=headerToken" doc:"splunk_hec: the HEC token; datadog: the API key. Required for those kinds, refused for https; sealed, never shown again."`

	// allowPrivate is the server's CP_STREAM_ALLOW_PRIVATE, set before
	// decoding.
	allowPrivate bool
}

func (r *streamFields) check(fe *fields) {
	if r.Name != nil {
		var p string
		if *r.Name, p = domain.DisplayName(*r.Name, 100); p != "" {
			fe.add("name", p)
		}
	}
	if r.Endpoint != nil {
		if _, err := outbound.ValidateEndpoint(*r.Endpoint, r.allowPrivate); err != nil {
			fe.add("endpoint", err.Error())
		}
	}
	if r.Actions != nil {
		for _, a := range *r.Actions {
			if !domain.ValidStreamAction(a) {
				fe.add("actions", fmt.Sprintf("%q is not an audit action or family (tenant.*) of this control plane", clip(a, 64)))
				break
			}
		}
	}
}

type createStreamRequest struct {
	streamFields
	Kind   auditstream.Kind    `json:"kind" doc:"https: a webhook of yours, signed; splunk_hec: a Splunk HTTP Event Collector; datadog: Datadog's Logs API."`
	Format *auditstream.Format `json:"format,omitempty" doc:"https only: ndjson (one event per line, the default) or cloudevents (a CloudEvents 1.0 JSON batch)."`
}

// objectSchema: the fields an update may leave out, a creation needs.
func (createStreamRequest) objectSchema(s *openapi3.Schema) {
	s.Required = append(s.Required, "name", "endpoint")
}

func (r *createStreamRequest) validate() []domain.FieldError {
	var fe fields
	r.check(&fe)
	switch r.Kind {
	case auditstream.KindHTTPS:
		if r.Credential != nil {
			fe.add("credential", "an https stream is signed with its own secret and takes no credential")
		}
	case auditstream.KindSplunkHEC, auditstream.KindDatadog:
		if r.Format != nil {
			fe.add("format", "only an https stream has a format; "+string(r.Kind)+" has its own")
		}
		if r.Credential == nil {
			fe.add("credential", "required: the "+map[auditstream.Kind]string{auditstream.KindSplunkHEC: "HEC token", auditstream.KindDatadog: "Datadog API key"}[r.Kind])
		}
	}
	return fe
}

type updateStreamRequest struct {
	streamFields
	Paused *bool `json:"paused,omitempty" doc:"true holds the stream; false lets a paused or suspended stream deliver again from its cursor."`
}

func (updateStreamRequest) objectSchema(s *openapi3.Schema) { s.MinProps = 1 }

func (r *updateStreamRequest) validate() []domain.FieldError {
	var fe fields
	r.check(&fe)
	return fe
}

type replayStreamRequest struct {
	FromEventID *string    `json:"from_event_id,omitempty" jsonschema:"minLength=1,maxLength=64" doc:"Deliver again from this event of the organisation on."`
	Since       *time.Time `json:"since,omitempty" jsonschema:"maxLength=64" doc:"Deliver again from the first event at or after this time (RFC 3339) on."`
}

// objectSchema: exactly one of from_event_id and since.
func (replayStreamRequest) objectSchema(s *openapi3.Schema) {
	s.MinProps, s.MaxProps = 1, ptr(uint64(1))
}

func (r *replayStreamRequest) validate() []domain.FieldError {
	var fe fields
	if r.FromEventID != nil && !domain.ValidID(domain.PrefixEvent, *r.FromEventID) {
		fe.add("from_event_id", "an event id (evt_…)")
	}
	return fe
}

// createdStream is the answer to a creation: an https stream's signing
// secret, shown this once.
type createdStream struct {
	Stream        streamView `json:"stream"`
	SigningSecret string     `json:"signing_secret,omitempty" doc:"https: the secret (cpw_…) that signs each request (IntelliAuth-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + \".\" + body)>; the HMAC key is this text), shown this once. Absent for other kinds, and in a retry's answer (Idempotent-Replayed: true): delete the stream and create another."`
}

// forStreams refuses a service account limited to environments: a stream
// carries every event of the organisation.
func forStreams(who *caller) error {
	if len(who.environments()) > 0 {
		return domain.Errorf(domain.CodeForbidden, "this service account reads the events of its environments only; an audit stream carries every event of the organization")
	}
	return nil
}

// checkHost refuses an endpoint whose host resolves, now, to an address
// streams may not reach. A host that does not resolve yet is let through:
// every delivery checks the addresses it dials.
func (s *Server) checkHost(ctx context.Context, endpoint string) error {
	refused := func(msg string) error {
		return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body", FieldErrors: []domain.FieldError{{Field: "endpoint", Message: msg}}}
	}
	u, err := outbound.ValidateEndpoint(endpoint, s.streams.AllowPrivate)
	if err != nil {
		return refused(err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var addrErr *outbound.AddressError
	if err := outbound.CheckHost(ctx, u.Hostname(), outbound.Options{AllowPrivate: s.streams.AllowPrivate, Resolver: s.streamResolver}); errors.As(err, &addrErr) {
		return refused("endpoint host resolves to an address that is not allowed: " + addrErr.Class.String() + " address")
	}
	return nil
}

// sealFor seals a stream's secret or credential, bound to it.
func (s *Server) sealFor(streamID, what, value string) ([]byte, error) {
	return s.keys.Seal([]byte(value), store.StreamSealContext(streamID, what))
}

func (s *Server) createStream(c *fiber.Ctx, who *caller) error {
	req := createStreamRequest{streamFields: streamFields{allowPrivate: s.streams.AllowPrivate}}
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := forStreams(who); err != nil {
		return err
	}
	// A stream sends the whole trail, from now on, wherever it points: a
	// stolen session must not set one up.
	if err := s.requireRecentAuth(who); err != nil {
		return err
	}
	if err := s.checkHost(c.UserContext(), *req.Endpoint); err != nil {
		return err
	}
	in := store.NewStream{ID: domain.NewID(domain.PrefixAuditStream), OrgID: who.OrgID, Name: *req.Name, Kind: string(req.Kind),
		Endpoint: *req.Endpoint, CreatedBy: who.UserID}
	if req.Actions != nil {
		in.Actions = *req.Actions
	}
	var secret string
	var err error
	if req.Kind == auditstream.KindHTTPS {
		format := string(auditstream.FormatNDJSON)
		if req.Format != nil {
			format = string(*req.Format)
		}
		in.Format = &format
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		secret = SigningSecretPrefix + base64.RawURLEncoding.EncodeToString(key)
		if in.SecretSealed, err = s.sealFor(in.ID, store.SealedSecret, secret); err != nil {
			return err
		}
	} else if in.CredentialSealed, err = s.sealFor(in.ID, store.SealedCredential, *req.Credential); err != nil {
		return err
	}
	st, err := store.CreateStream(c.UserContext(), s.db, in, s.eventBase(c, who))
	if err != nil {
		return err
	}
	s.wakeStream(c, st)
	v, err := s.streamView(c.UserContext(), st)
	if err != nil {
		// The stream is written: an error now would have the client create
		// another. Its lag is for a later read.
		zerolog.Ctx(c.UserContext()).Warn().Err(err).Str("stream_id", st.ID).Msg("a new audit stream's lag not read")
		v = streamViewOf(st, store.StreamLag{}, time.Now())
	}
	if err := keepForRetries(c, createdStream{Stream: v}); err != nil {
		return err
	}
	return writeData(c, fiber.StatusCreated, createdStream{Stream: v, SigningSecret: secret})
}

// wakeStream wakes the stream's workflow, starting it if need be. The
// change is written already, and an answer other than success would have
// the client do it again: a wake that fails is logged, and made up by the
// workers (the notifier, a worker's start, the workflow's long timer).
func (s *Server) wakeStream(c *fiber.Ctx, st store.AuditStream) {
	ctx, cancel := context.WithTimeout(c.UserContext(), s.tenants.Bound)
	defer cancel()
	if err := s.tenants.WakeStream(ctx, st.ID, st.OrgID); err != nil {
		zerolog.Ctx(c.UserContext()).Warn().Err(err).Str("stream_id", st.ID).Msg("audit stream's workflow not woken; the workers will")
	}
}

func (s *Server) listStreams(c *fiber.Ctx, who *caller) error {
	if err := forStreams(who); err != nil {
		return err
	}
	after, limit, err := page(c)
	if err != nil {
		return err
	}
	rows, err := store.ListStreams(c.UserContext(), s.db, who.OrgID, after, limit)
	if err != nil {
		return err
	}
	views, err := s.streamViews(c.UserContext(), rows)
	if err != nil {
		return err
	}
	return writePage(c, views, limit, func(v streamView) store.Keyset { return store.Keyset{CreatedAt: v.CreatedAt, ID: v.ID} })
}

func (s *Server) getStream(c *fiber.Ctx, who *caller) error {
	if err := forStreams(who); err != nil {
		return err
	}
	st, err := store.StreamByID(c.UserContext(), s.db, who.OrgID, c.Params("stream_id"))
	if err != nil {
		return err
	}
	v, err := s.streamView(c.UserContext(), st)
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, v)
}

func (s *Server) updateStream(c *fiber.Ctx, who *caller) error {
	req := updateStreamRequest{streamFields: streamFields{allowPrivate: s.streams.AllowPrivate}}
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := forStreams(who); err != nil {
		return err
	}
	st, err := store.StreamByID(c.UserContext(), s.db, who.OrgID, c.Params("stream_id"))
	if err != nil {
		return err
	}
	ch := store.StreamChange{Name: req.Name, Endpoint: req.Endpoint, Actions: req.Actions, Paused: req.Paused}
	if req.Endpoint != nil || req.Credential != nil {
		// Where the trail goes, as at creation.
		if err := s.requireRecentAuth(who); err != nil {
			return err
		}
	}
	if req.Endpoint != nil {
		if err := s.checkHost(c.UserContext(), *req.Endpoint); err != nil {
			return err
		}
	}
	if req.Credential != nil {
		if st.Kind == string(auditstream.KindHTTPS) {
			return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body",
				FieldErrors: []domain.FieldError{{Field: "credential", Message: "an https stream is signed with its own secret and takes no credential"}}}
		}
		if ch.CredentialSealed, err = s.sealFor(st.ID, store.SealedCredential, *req.Credential); err != nil {
			return err
		}
	}
	if st, err = store.ChangeStream(c.UserContext(), s.db, who.OrgID, st.ID, ch, s.eventBase(c, who)); err != nil {
		return err
	}
	s.wakeStream(c, st)
	v, err := s.streamView(c.UserContext(), st)
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, v)
}

func (s *Server) deleteStream(c *fiber.Ctx, who *caller) error {
	if err := forStreams(who); err != nil {
		return err
	}
	st, err := store.DeleteStream(c.UserContext(), s.db, who.OrgID, c.Params("stream_id"), s.eventBase(c, who))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.tenants.Bound)
	defer cancel()
	if err := s.tenants.EndStream(ctx, st.ID); err != nil {
		zerolog.Ctx(c.UserContext()).Warn().Err(err).Str("stream_id", st.ID).Msg("deleted audit stream's workflow not told; it ends when it next wakes")
	}
	v, err := s.streamView(c.UserContext(), st)
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, v)
}

func (s *Server) replayStream(c *fiber.Ctx, who *caller) error {
	var req replayStreamRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := forStreams(who); err != nil {
		return err
	}
	r := store.Replay{}
	if req.FromEventID != nil {
		r.FromEventID = *req.FromEventID
	} else {
		r.Since = *req.Since
	}
	st, err := store.ReplayStream(c.UserContext(), s.db, who.OrgID, c.Params("stream_id"), r, s.eventBase(c, who))
	if err != nil {
		return err
	}
	s.wakeStream(c, st)
	v, err := s.streamView(c.UserContext(), st)
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, v)
}
