//go:build nodev

package main

import (
	"context"
	"errors"

	"github.com/intelliauth/controlplane/internal/config"
)

// The production image is built with -tags nodev: it carries no embedded
// Temporal server or UI, which only dev needs.
func runDev(context.Context, config.Config, []string) error {
	return errors.New("dev is not in this build (built with -tags nodev, for production); use `go run ./cmd/controlplane dev` from the source")
}
