// Package integration holds the control plane's integration tests: real
// Postgres, a real in-process Temporal server, and the real binary.
package integration

import (
	"testing"

	"github.com/intelliauth/controlplane/internal/harness"
)

func TestMain(m *testing.M) { harness.Main(m, apiContract.coverage) }
