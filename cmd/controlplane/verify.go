package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/drift"
	"github.com/intelliauth/controlplane/internal/logging"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

// Exit statuses of verify besides 0 (no drift) and 2 (usage).
const (
	exitDrift      exitStatus = 1
	exitUnreadable exitStatus = 3
)

// runVerify compares tenants and operations in Postgres, their workflows in
// Temporal and the data plane's resources, and lists every disagreement.
func runVerify(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	settle := fs.Duration("settle", time.Minute, "leave out what changed this recently (a saga between two writes)")
	asJSON := fs.Bool("json", false, "print the findings as JSON")
	region := fs.String("region", "", "compare the data plane of this region (CP_REGION_DATABASE_URL) instead of the installation's own")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: controlplane verify [-settle 1m] [-json] [-region <name> with CP_REGION_DATABASE_URL]\n\n"+
			"Compares tenants and operations (Postgres), tenant workflows (Temporal, task queue CP_TASK_QUEUE)\n"+
			"and data-plane resources, and lists every disagreement. Each running workflow is described\n"+
			"(a few at a time) for a workflow task that keeps failing and a history grown long. Exit status:\n"+
			"0 none, 1 drift found, 2 usage, 3 a source could not be read.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitUsage
	}
	if fs.NArg() > 0 || *settle < 0 {
		fs.Usage()
		return exitUsage
	}
	if *region != "" && (!slices.Contains(cfg.Regions, *region) || cfg.RegionDatabaseURL == "") {
		fmt.Fprintf(os.Stderr, "controlplane verify: -region %s needs the region among CP_REGIONS (%s) and its data plane in CP_REGION_DATABASE_URL\n",
			*region, strings.Join(cfg.Regions, ","))
		return exitUsage
	}
	log := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	db, err := store.OpenPool(ctx, cfg.DatabaseURL, 4)
	if err != nil {
		log.Error().Err(err).Msg("postgres unreachable")
		return exitUnreadable
	}
	defer db.Close()
	opts, err := temporalOptions(cfg, log, nil)
	if err != nil {
		return err
	}
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		log.Error().Err(err).Msg("temporal unreachable")
		return exitUnreadable
	}
	defer tc.Close()
	plane := db
	if *region != "" {
		if plane, err = store.OpenPool(ctx, cfg.RegionDatabaseURL, 4); err != nil {
			log.Error().Err(err).Str("region", *region).Msg("the region's data plane is unreachable")
			return exitUnreadable
		}
		defer plane.Close()
	}
	snap, err := drift.Collect(ctx, drift.Sources{DB: db, Temporal: tc, Namespace: cfg.TemporalNamespace, TaskQueue: cfg.TaskQueue,
		WorkflowType: workflows.TenantWorkflowType, Plane: &dataplane.Postgres{DB: plane}, Region: *region})
	if err != nil {
		log.Error().Err(err).Msg("nothing compared: a source could not be read")
		return exitUnreadable
	}
	findings := drift.Compare(snap, *settle)
	if err := report(os.Stdout, snap, findings, *asJSON); err != nil {
		return err
	}
	if len(findings) > 0 {
		return exitDrift
	}
	return nil
}

// report prints the findings as a table, or as JSON.
func report(w io.Writer, snap drift.Snapshot, findings []drift.Finding, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(map[string]any{
			"compared": map[string]int{"tenants": len(snap.Tenants), "open_operations": len(snap.Operations),
				"running_workflows": len(snap.Workflows), "tenants_with_resources": len(snap.Resources),
				"organizations_deleting_or_deleted": len(snap.Organizations)},
			"findings": append([]drift.Finding{}, findings...),
		})
	}
	fmt.Fprintf(w, "compared %d tenants, %d open operations, %d running workflows, resources of %d tenants, %d organisations deleting or deleted\n",
		len(snap.Tenants), len(snap.Operations), len(snap.Workflows), len(snap.Resources), len(snap.Organizations))
	if len(findings) == 0 {
		fmt.Fprintln(w, "no drift")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CODE\tTENANT\tOPERATION\tWORKFLOW\tDETAIL")
	for _, f := range findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Code, f.TenantID, dash(f.OperationID), dash(f.WorkflowID), f.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d disagreements\n", len(findings))
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
