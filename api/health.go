package api

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.temporal.io/sdk/client"

	"github.com/intelliauth/controlplane/internal/domain"
)

// healthz answers while the process runs.
func (s *Server) healthz(c *fiber.Ctx) error {
	return writeData(c, fiber.StatusOK, fiber.Map{"status": "ok"})
}

// readyz answers 200 when Postgres and Temporal both answer, within a bound,
// and 503 naming the dependency that does not.
func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "temporal": "ok"}
	var failed []domain.FieldError
	if err := s.db.PingContext(ctx); err != nil {
		checks["postgres"] = "unreachable"
		failed = append(failed, domain.FieldError{Field: "postgres", Message: "unreachable"})
	}
	if _, err := s.temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		checks["temporal"] = "unreachable"
		failed = append(failed, domain.FieldError{Field: "temporal", Message: "unreachable"})
	}
	if len(failed) > 0 {
		return &domain.Error{Code: domain.CodeUnavailable, Message: "not ready", FieldErrors: failed}
	}
	return writeData(c, fiber.StatusOK, fiber.Map{"status": "ready", "checks": checks})
}
