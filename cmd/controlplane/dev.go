//go:build !nodev

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/intelliauth/controlplane/internal/codec"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/logging"
	"github.com/intelliauth/controlplane/internal/opsgate"
	"github.com/intelliauth/controlplane/internal/pgcluster"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/internal/telemetry"
	"github.com/intelliauth/controlplane/internal/temporalserver"
	"github.com/intelliauth/controlplane/schema"
	"github.com/intelliauth/controlplane/workflows"
)

// devDatabase is the database the dev command's private cluster serves.
const devDatabase = "controlplane"

// runDev runs the whole control plane in one process: Postgres (external or
// a private cluster under the data dir), an embedded Temporal server with
// its UI, migrations, the bootstrap organisation, the worker and the API.
// It stops everything in reverse order on SIGINT or SIGTERM.
func runDev(ctx context.Context, cfg config.Config, _ []string) error {
	start := time.Now()
	log := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
	}
	var err error
	if cfg.KeyEncryptionKeys == "" {
		if cfg.KeyEncryptionKeys, err = devSecret(filepath.Join(cfg.DataDir, "key-encryption-keys"), func() (string, error) { return seal.NewKey("dev") }); err != nil {
			return err
		}
	}
	codecToken := "CP_CODEC_TOKEN"
	if cfg.CodecToken == "" {
		codecToken = filepath.Join(cfg.DataDir, "codec-token")
		if cfg.CodecToken, err = devSecret(codecToken, newCodecToken); err != nil {
			return err
		}
	}
	ring, err := seal.ParseRing(cfg.KeyEncryptionKeys)
	if err != nil {
		return fmt.Errorf("key ring in %s: %w", cfg.DataDir, err)
	}
	operatorFiles, err := devOperatorCertificates(&cfg)
	if err != nil {
		return err
	}

	// The SDK's cache of workflows in memory is one per process, made by
	// the first worker with the size set then: the embedded server's own
	// workers (its system workflows) start first, so the size is set
	// before the server starts. Set later, the cache kept its default
	// (10,000 workflows) and the process grew with its tenants.
	worker.SetStickyWorkflowCacheSize(cfg.WorkflowCacheSize)

	// Temporal and Postgres start side by side: they are the slow parts.
	type temporalResult struct {
		srv *temporalserver.Server
		err error
	}
	tch := make(chan temporalResult, 1)
	go func() {
		srv, err := temporalserver.Start(temporalserver.Options{
			FrontendAddr:     cfg.TemporalAddress,
			UIAddr:           cfg.TemporalUIAddr,
			DatabaseFile:     filepath.Join(cfg.DataDir, "temporal.db"),
			Namespace:        cfg.TemporalNamespace,
			SearchAttributes: workflows.SearchAttributes(),
			// The server's workflows in memory are bounded as the
			// worker's are: neither grows with the tenants.
			CachedWorkflows: cfg.WorkflowCacheSize,
			// The UI decodes payloads through the codec on its own listener:
			// its pages are trusted without a token (the dev UI has no sign-in
			// to carry one, and answers only to its own Host), the CLI sends
			// the token.
			UICodec: func(origins []string) http.Handler {
				return codec.Handler(codec.New(ring), codec.HandlerOptions{Namespace: cfg.TemporalNamespace,
					Token: cfg.CodecToken, Origins: origins, TrustOrigins: true})
			},
			Log: log,
		})
		tch <- temporalResult{srv, err}
	}()
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()

	pgErr := func() error {
		if cfg.DatabaseURL != "" {
			return nil
		}
		pg, err := pgcluster.Start(ctx, filepath.Join(cfg.DataDir, "postgres"))
		if err != nil {
			return err
		}
		stops = append(stops, func() {
			if err := pg.Stop(); err != nil {
				log.Warn().Err(err).Msg("postgres stop")
			}
			log.Info().Msg("postgres stopped")
		})
		if err := pg.CreateDatabase(ctx, devDatabase); err != nil {
			return err
		}
		cfg.DatabaseURL = pg.URL(devDatabase)
		return nil
	}()
	tr := <-tch
	if tr.err == nil {
		stops = append(stops, func() {
			if err := tr.srv.Stop(); err != nil {
				log.Warn().Err(err).Msg("temporal stop")
			}
			log.Info().Msg("temporal stopped")
		})
	}
	if err := errors.Join(pgErr, tr.err); err != nil {
		return err
	}

	db, err := store.OpenPool(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns)
	if err != nil {
		return err
	}
	stops = append(stops, func() { db.Close() })
	// The API has a pool of its own, as an api process does: the worker's
	// slots are sized to the pool above and would otherwise wait behind
	// requests for a connection, and a burst of requests would open a
	// backend for each one at once, up to the whole pool.
	apiDB, err := store.OpenPool(ctx, cfg.DatabaseURL, devAPIConns(cfg.DatabaseMaxConns))
	if err != nil {
		return err
	}
	stops = append(stops, func() { apiDB.Close() })
	if applied, err := schema.Up(ctx, db); err != nil {
		return err
	} else if len(applied) > 0 {
		log.Info().Strs("applied", applied).Msg("migrations applied")
	}
	if err := bootstrap(ctx, db, cfg.Bootstrap, "system", "controlplane-dev", log); err != nil {
		return err
	}

	sdk := telemetry.NewSDK()
	tc, err := dialTemporal(ctx, cfg, log, sdk)
	if err != nil {
		return err
	}
	stops = append(stops, tc.Close)
	w, err := startWorker(cfg, db, tc, log)
	if err != nil {
		return err
	}
	stops = append(stops, func() { w.Stop(); log.Info().Msg("worker stopped") })
	for _, region := range cfg.Regions {
		stop, err := startDevRegion(ctx, cfg, region, tc, log)
		if err != nil {
			return err
		}
		stops = append(stops, stop)
	}
	stopWatch, err := startWatch(cfg, db, tc, log)
	if err != nil {
		return err
	}
	stops = append(stops, stopWatch)
	stopGateway, err := serveGateway(ctx, cfg, db, tc, log)
	if err != nil {
		return err
	}
	stops = append(stops, stopGateway)
	mailCtx, stopMail := context.WithCancel(context.WithoutCancel(ctx))
	mailerDone := startMailer(mailCtx, cfg, db, log)
	chainerDone := startChainer(mailCtx, db, log)
	stops = append(stops, func() { stopMail(); mailerDone(); chainerDone() })
	if err := waitForPollers(ctx, tc, cfg.TaskQueue); err != nil {
		return err
	}

	return serveAPI(ctx, cfg, apiDB, tc, log, prometheus.Gatherers{sdk.Registry, sagaRegistry(cfg, tc, log), spareRegistry}, func(addr string) {
		banner(log, cfg, addr, tr.srv, codecToken, operatorFiles, time.Since(start))
	})
}

// startDevRegion serves a region of CP_REGIONS in dev: its data plane is a
// database of its own beside dev's (<database>_region_<name>), served by a
// region worker in this process, as `controlplane worker --region` serves
// one in production.
func startDevRegion(ctx context.Context, cfg config.Config, region string, tc client.Client, log zerolog.Logger) (stop func(), err error) {
	u, err := url.Parse(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	name := strings.TrimPrefix(u.Path, "/") + "_region_" + strings.ReplaceAll(region, "-", "_")
	if err := pgcluster.CreateDatabase(ctx, cfg.DatabaseURL, name); err != nil {
		return nil, fmt.Errorf("region %s's data plane: %w", region, err)
	}
	u.Path = "/" + name
	db, err := store.OpenPool(ctx, u.String(), 8)
	if err != nil {
		return nil, err
	}
	rcfg := cfg
	rcfg.Region, rcfg.RegionDatabaseURL, rcfg.DatabaseMaxConns = region, u.String(), 8
	w, err := startRegionWorker(ctx, rcfg, db, tc, log.With().Str("region", region).Logger())
	if err != nil {
		db.Close()
		return nil, err
	}
	return func() { w.Stop(); db.Close(); log.Info().Str("region", region).Msg("region worker stopped") }, nil
}

// waitForPollers returns once the task queue has a poller: the embedded
// server's services have found each other and the worker is polling, so a
// workflow started now runs.
func waitForPollers(ctx context.Context, tc client.Client, taskQueue string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		resp, err := tc.DescribeTaskQueue(ctx, taskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err == nil && len(resp.GetPollers()) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no worker polls task queue %s after a minute: %v", taskQueue, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// banner prints where everything is; codecToken says where the codec's
// token is (its file, or the variable that gave it).
func banner(log zerolog.Logger, cfg config.Config, apiAddr string, t *temporalserver.Server, codecToken string, op opsgate.DevFiles, took time.Duration) {
	log.Info().Dur("startup", took).Msg("control plane ready")
	fmt.Fprintf(os.Stderr, `
  IntelliAuth control plane (dev)
    Console      %s/
    API          http://%s/api/v1   (health: /healthz, /readyz)
    API explorer http://%s/api/docs   (spec: /api/v1/openapi.json)
    Metrics      http://%s/metrics
    Temporal UI  http://%s
    Codec        http://%s/codec   (payloads are encrypted; token in %s)
    Temporal     %s   namespace %s, task queue %s
    Operators    %s   (the gateway repairs go through, as %s:
                 temporal --address %s --tls-ca-path %s \
                   --tls-cert-path %s --tls-key-path %s …)
    Data dir     %s
`, cfg.ConsoleURL, apiAddr, apiAddr, cfg.MetricsAddr, t.UIAddr(), t.UIAddr(), codecToken,
		t.FrontendAddr(), cfg.TemporalNamespace, cfg.TaskQueue,
		cfg.OperatorAddr, devOperator, cfg.OperatorAddr, op.CA, op.OperatorCert, op.OperatorKey, cfg.DataDir)
	if cfg.Bootstrap.OwnerPassword == config.DevOwnerPassword {
		fmt.Fprintf(os.Stderr, "    Sign in      %s / %s   (dev defaults; set CP_BOOTSTRAP_* to change)\n", cfg.Bootstrap.OwnerEmail, cfg.Bootstrap.OwnerPassword)
	}
	fmt.Fprintln(os.Stderr)
}

// devSecret reads one of dev's secrets (the key ring, the codec token)
// from the data dir, creating it with create (readable by its owner only) on
// the first start.
func devSecret(path string, create func() (string, error)) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	secret, err := create()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return secret, nil
}

// newCodecToken is a random token of 256 bits for the codec endpoint.
func newCodecToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// devAPIConns is the size of dev's API pool: a quarter of the worker's,
// at least two. A request holds a connection for a statement or two of a
// millisecond each, so a few connections serve a burst of requests,
// which wait for one in the process rather than each opening a Postgres
// backend (a fork, then its caches and prepared statements made anew).
func devAPIConns(workerConns int) int { return max(2, workerConns/4) }
