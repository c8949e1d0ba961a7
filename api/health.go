package api

import (
	"context"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.temporal.io/sdk/client"

	"github.com/intelliauth/controlplane/internal/domain"
)

// healthz answers while the process runs.
func (s *Server) healthz(c *fiber.Ctx) error {
	return writeData(c, fiber.StatusOK, fiber.Map{"status": "ok"})
}

// readyTTL is how long a readiness answer is reused: a flood of
// unauthenticated /readyz calls costs Postgres and Temporal one check each
// per second, whatever its rate.
const readyTTL = time.Second

// readiness is the last readiness check and when it was made.
type readiness struct {
	mu     sync.Mutex
	at     time.Time
	failed []domain.FieldError
}

// readyz answers 200 when Postgres and Temporal both answer, within a bound,
// and 503 naming the dependency that does not.
func (s *Server) readyz(c *fiber.Ctx) error {
	s.ready.mu.Lock()
	if time.Since(s.ready.at) > readyTTL {
		s.ready.failed = s.checkReady(c.UserContext())
		s.ready.at = time.Now()
	}
	failed := s.ready.failed
	s.ready.mu.Unlock()
	if len(failed) > 0 {
		return &domain.Error{Code: domain.CodeUnavailable, Message: "not ready", FieldErrors: failed}
	}
	return writeData(c, fiber.StatusOK, fiber.Map{"status": "ready", "checks": fiber.Map{"postgres": "ok", "temporal": "ok"}})
}

func (s *Server) checkReady(ctx context.Context) []domain.FieldError {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var failed []domain.FieldError
	if err := s.db.PingContext(ctx); err != nil {
		failed = append(failed, domain.FieldError{Field: "postgres", Message: "unreachable"})
	}
	if _, err := s.temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		failed = append(failed, domain.FieldError{Field: "temporal", Message: "unreachable"})
	} else if err := s.tenants.SetUp(ctx); err != nil {
		failed = append(failed, domain.FieldError{Field: "temporal", Message: "namespace not set up: run controlplane setup"})
	}
	return failed
}
