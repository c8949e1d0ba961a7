// Package integration holds the control plane's integration tests: real
// Postgres, a real in-process Temporal server, and the real binary.
package integration

import (
	"flag"
	"os"
	"testing"

	"github.com/intelliauth/controlplane/internal/harness"
)

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(envShard) == "list" {
		os.Exit(m.Run()) // -test.list: names only, no harness
	}
	if n := shardCount(); n > 1 {
		os.Exit(runShards(n))
	}
	harness.Main(m, apiContract.coverage, apiContract.writeSeen)
}
