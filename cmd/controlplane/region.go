package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/logging"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/internal/telemetry"
	"github.com/intelliauth/controlplane/workflows"
)

// workerRegion reads `worker --region <name>` (or -region, or
// --region=<name>); "" for the control plane's worker. Any other argument
// is refused.
func workerRegion(args []string) (string, error) {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	region := fs.String("region", "", "the region whose data-plane steps this worker runs")
	if err := fs.Parse(args); err != nil {
		return "", fmt.Errorf("worker: %w (usage: controlplane worker [--region <name>])", err)
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("worker: unexpected argument %q (usage: controlplane worker [--region <name>])", fs.Arg(0))
	}
	return *region, nil
}

// runRegionWorker is `controlplane worker --region <name>`: it runs the
// data-plane steps of the region's tenants on the region's task queue,
// with the region's data plane (CP_REGION_DATABASE_URL) as its only
// database. It needs Temporal and the key ring (a tenant's signing key is
// sealed under it), and nothing of the control plane's database.
func runRegionWorker(ctx context.Context, cfg config.Config, _ []string) error {
	log := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat).With().Str("region", cfg.Region).Logger()
	db, err := store.OpenPool(ctx, cfg.RegionDatabaseURL, cfg.DatabaseMaxConns)
	if err != nil {
		return err
	}
	defer db.Close()
	sdk := telemetry.NewSDK()
	tc, err := dialTemporal(ctx, cfg, log, sdk)
	if err != nil {
		return err
	}
	defer tc.Close()
	w, err := startRegionWorker(ctx, cfg, db, tc, log)
	if err != nil {
		return err
	}
	gather := prometheus.Gatherers{prometheus.DefaultGatherer, sdk.Registry, spareRegistry, telemetry.BuildInfoRegistry(telemetry.CurrentBuild())}
	stopMetrics, err := serveMetrics(ctx, cfg.MetricsAddr, promhttp.HandlerFor(gather, promhttp.HandlerOpts{}))
	if err != nil {
		w.Stop()
		return err
	}
	defer stopMetrics()
	<-ctx.Done()
	log.Info().Msg("stopping region worker")
	w.Stop()
	return nil
}

// startRegionWorker prepares the region's data plane (its tables, its
// signing keys sealed under the current key) and starts polling the
// region's task queue.
func startRegionWorker(ctx context.Context, cfg config.Config, db *bun.DB, tc client.Client, log zerolog.Logger) (worker.Worker, error) {
	ring, err := seal.ParseRing(cfg.KeyEncryptionKeys)
	if err != nil {
		return nil, fmt.Errorf("CP_KEY_ENCRYPTION_KEYS: %w", err)
	}
	dp := &dataplane.Postgres{DB: db, Keys: ring}
	if err := prepareDataPlane(ctx, dp, log); err != nil {
		return nil, err
	}
	stopSpares := keepSpares(dp, cfg.SpareSchemas, cfg.Region, log)
	queue := workflows.RegionTaskQueue(cfg.TaskQueue, cfg.Region)
	w := worker.New(tc, queue, workflows.RegionWorkerOptions(cfg.DatabaseMaxConns))
	w.RegisterActivity(&activities.Region{Name: cfg.Region, DataPlane: dp})
	if err := w.Start(); err != nil {
		stopSpares()
		return nil, fmt.Errorf("start region worker on task queue %s: %w", queue, err)
	}
	log.Info().Str("task_queue", queue).Msg("region worker started")
	return &workers{Worker: w, stop: stopSpares}, nil
}

// spareQuiet is how long a worker waits after its last schema step before
// it makes spare schemas again, and how often it looks.
const spareQuiet = 2 * time.Second

// spareSchemas is what the workers of this process last counted of each
// data plane's spare schemas, by region ("": the installation's own).
var spareSchemas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "controlplane_spare_schemas",
	Help: "Spare tenant schemas ready in a data plane (CP_SPARE_SCHEMAS), by region (\"\": the installation's own data plane), as this process's worker last counted them.",
}, []string{"region"})

// spareRegistry holds spareSchemas, for the metrics listener of every
// process that runs a worker.
var spareRegistry = func() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(spareSchemas)
	return r
}()

// keepSpares keeps n spare schemas ready in the data plane of region
// (CP_SPARE_SCHEMAS), made while this process runs no schema step, and
// reports their count, until the returned function stops it.
func keepSpares(dp *dataplane.Postgres, n int, region string, log zerolog.Logger) (stop func()) {
	if n == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			made, err := dp.FillSpares(ctx, n, spareQuiet)
			if err != nil && ctx.Err() == nil {
				log.Warn().Err(err).Msg("spare schemas not made")
			} else if made > 0 {
				log.Debug().Int("made", made).Int("target", n).Msg("spare schemas made")
			}
			if ready, err := dp.Spares(ctx); err == nil {
				spareSchemas.WithLabelValues(region).Set(float64(ready))
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(spareQuiet):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// prepareDataPlane creates a data plane's own tables and seals again under
// the current key the signing keys an earlier key sealed.
func prepareDataPlane(ctx context.Context, dp *dataplane.Postgres, log zerolog.Logger) error {
	if err := dp.Init(ctx); err != nil {
		return err
	}
	n, unreadable, err := dp.Reseal(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		log.Info().Int("keys", n).Str("key_id", dp.Keys.Current()).Msg("tenant signing keys sealed again under the current key")
	}
	if unreadable > 0 {
		log.Error().Int("keys", unreadable).Msg("tenant signing keys sealed under a key CP_KEY_ENCRYPTION_KEYS lacks: put the old key back in the ring")
	}
	return nil
}
