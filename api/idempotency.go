package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"regexp"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// idempotencyTTL is how long an answer is kept for retries.
const idempotencyTTL = 24 * time.Hour

var idempotencyPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestKey returns the request's Idempotency-Key (empty: none), refusing
// one that could not serve as a Temporal id or a stored key.
func requestKey(c *fiber.Ctx) (string, error) {
	key := c.Get("Idempotency-Key")
	if key != "" && !idempotencyPattern.MatchString(key) {
		return "", &domain.Error{Code: domain.CodeBadRequest, Message: "invalid Idempotency-Key",
			FieldErrors: []domain.FieldError{{Field: "Idempotency-Key", Message: "1 to 128 of A-Z a-z 0-9 . _ : -"}}}
	}
	return key, nil
}

// storedIdempotency makes a mutating route idempotent by a stored answer:
// the first request with a key runs and its status and body are kept; a
// retry with the key gets them back (Idempotent-Replayed: true), a
// concurrent duplicate waits for them, and the same key with another request
// is 422. Tenant lifecycle routes do not use it: their keys are Temporal
// workflow and update ids.
func (s *Server) storedIdempotency(c *fiber.Ctx, scope string, next func() error) error {
	key, err := requestKey(c)
	if err != nil {
		return err
	}
	if key == "" {
		return next()
	}
	h := sha256.New()
	h.Write([]byte(c.Method() + " " + c.Path() + "\n"))
	h.Write(c.Body())
	fp := h.Sum(nil)
	ctx := c.UserContext()
	deadline := time.Now().Add(s.tenants.Bound)
	for {
		claimed, rec, err := store.ClaimIdempotencyKey(ctx, s.db, scope, key, fp, idempotencyTTL)
		if err != nil {
			return err
		}
		if claimed {
			return s.runAndStore(c, scope, key, next)
		}
		if !bytes.Equal(rec.Fingerprint, fp) {
			return domain.Errorf(domain.CodeIdempotencyKeyReused, "Idempotency-Key %s was used for another request", key)
		}
		if rec.State == "done" {
			c.Set("Idempotent-Replayed", "true")
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Status(rec.Status).Send(rec.Response)
		}
		// A duplicate of a request still running: wait for its answer.
		if time.Now().After(deadline) {
			c.Set(fiber.HeaderRetryAfter, "1")
			return domain.Errorf(domain.CodeConflict, "a request with Idempotency-Key %s is still running; retry shortly", key)
		}
		if err := sleep(ctx, 25*time.Millisecond); err != nil {
			return err
		}
	}
}

// refusedBeforeStart reports whether a status is a refusal made before the
// request did anything; only answers of requests that ran are kept.
func refusedBeforeStart(status int) bool {
	switch status {
	case fiber.StatusBadRequest, fiber.StatusUnauthorized, fiber.StatusForbidden, fiber.StatusNotFound,
		fiber.StatusRequestEntityTooLarge, fiber.StatusUnsupportedMediaType, fiber.StatusTooManyRequests:
		return true
	}
	return false
}

func (s *Server) runAndStore(c *fiber.Ctx, scope, key string, next func() error) error {
	err := next()
	if err != nil {
		if werr := writeError(c, err); werr != nil {
			return werr
		}
	}
	status := c.Response().StatusCode()
	bg := context.WithoutCancel(c.UserContext())
	if status >= 500 || refusedBeforeStart(status) {
		// Nothing was decided (a failure), or the request was refused
		// before it started (invalid, not allowed, not found): let a
		// corrected retry run.
		return store.ReleaseIdempotencyKey(bg, s.db, scope, key)
	}
	body := append([]byte(nil), c.Response().Body()...)
	if kept, ok := c.Locals(keptAnswer{}).([]byte); ok && err == nil {
		body = kept
	}
	return store.CompleteIdempotencyKey(bg, s.db, scope, key, status, body)
}

// keptAnswer is the Locals key of the answer a retry gets instead of the
// one given (keepForRetries).
type keptAnswer struct{}

// keepForRetries sets what a retry with the same Idempotency-Key is
// answered instead of this request's answer: the same answer without the
// secret it carries, since stored answers are kept in plain text and a
// secret is stored only as its hash.
func keepForRetries(c *fiber.Ctx, data any) error {
	b, err := json.Marshal(envelope{Data: data, Meta: newMeta(c)})
	if err != nil {
		return err
	}
	c.Locals(keptAnswer{}, b)
	return nil
}
