// Command controlplane is the IntelliAuth control plane: one binary whose
// subcommands run everything on a laptop (dev), the HTTP API (api), the
// Temporal worker (worker), schema migrations (migrate) and the first
// organisation (bootstrap). Configuration comes from CP_* variables.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/logging"
	"github.com/intelliauth/controlplane/internal/telemetry"
)

const usage = `usage: controlplane <command> [args]

commands:
  dev                 everything in one process: embedded Temporal + UI, Postgres, worker, API
  api                 the HTTP API (external Temporal and Postgres)
  worker [--region <name>]
                      the Temporal worker (external Temporal and Postgres); with --region, the
                      data-plane steps of that region's tenants, on CP_REGION_DATABASE_URL only
  migrate up|down|status
                      apply, roll back (last group) or list schema migrations
  bootstrap           create the organisation and owner of CP_BOOTSTRAP_* (no-op if it exists)
  setup               prepare the Temporal namespace: retention and search attributes (idempotent)
  healthcheck         exit 0 when the api or worker on CP_METRICS_ADDR is up (for container healthchecks)
  version             print the version, the VCS revision and the Go it was built with
  verify [-settle 1m] [-json]
                      list disagreements between Postgres, Temporal and the data plane (exit 1 when any)
  audit verify -org <org_id> [-export <file.ndjson> [-head <head.json> -keys <keys.json>]]
                      recompute an organisation's audit chain; name its first bad event (exit 1 when any)
  users remove-second-factors -email <email> -reason <why>
                      for a person who lost every second factor: remove them, end their sessions (audited)

Configuration is by CP_* environment variables; see README.md.
`

// exitStatus is an error a command returns to exit with that status, having
// said why itself.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// exitUsage is the status of a command given arguments it does not take.
const exitUsage exitStatus = 2

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	if cmd == "version" {
		// Needs no configuration: it answers in an image with none set.
		fmt.Println(telemetry.CurrentBuild())
		return 0
	}
	commands := map[string]struct {
		mode config.Mode
		run  func(context.Context, config.Config, []string) error
	}{
		"dev":         {config.ModeDev, runDev},
		"api":         {config.ModeAPI, runAPI},
		"worker":      {config.ModeWorker, runWorker},
		"migrate":     {config.ModeMigrate, runMigrate},
		"bootstrap":   {config.ModeBootstrap, runBootstrap},
		"setup":       {config.ModeSetup, runSetup},
		"healthcheck": {config.ModeHealthcheck, runHealthcheck},
		"verify":      {config.ModeVerify, runVerify},
		"users":       {config.ModeUsers, runUsers},
		"audit":       {config.ModeAudit, runAudit},
	}
	c, ok := commands[cmd]
	if !ok {
		fmt.Fprintf(os.Stderr, "controlplane: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	getenv := os.LookupEnv
	if cmd == "worker" {
		region, err := workerRegion(rest)
		if err != nil {
			fmt.Fprintf(os.Stderr, "controlplane %v\n", err)
			return 2
		}
		if region != "" {
			c.mode, c.run, rest = config.ModeRegionWorker, runRegionWorker, nil
			getenv = func(key string) (string, bool) {
				if key == "CP_REGION" {
					return region, true
				}
				return os.LookupEnv(key)
			}
		}
	}
	cfg, err := config.Load(c.mode, getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "controlplane %s: invalid configuration:\n", cmd)
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(os.Stderr, "  %s\n", line)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, cfg, rest); err != nil {
		var status exitStatus
		if errors.As(err, &status) {
			return int(status)
		}
		log := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
		log.Error().Err(err).Str("command", cmd).Msg("controlplane failed")
		return 1
	}
	return 0
}
