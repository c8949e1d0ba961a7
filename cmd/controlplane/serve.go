package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/billing"
	"github.com/intelliauth/controlplane/internal/codec"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/logging"
	"github.com/intelliauth/controlplane/internal/mail"
	"github.com/intelliauth/controlplane/internal/operator"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/internal/telemetry"
	"github.com/intelliauth/controlplane/workflows"
)

// shutdownGrace bounds how long requests in flight may take
// to finish after a stop signal.
const shutdownGrace = 10 * time.Second

func runAPI(ctx context.Context, cfg config.Config, _ []string) error {
	log := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	db, err := store.OpenPool(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns)
	if err != nil {
		return err
	}
	defer db.Close()
	// A lazy client: the API starts, and /readyz says so, while Temporal is
	// still coming up.
	sdk := telemetry.NewSDK()
	opts, err := temporalOptions(cfg, log, sdk)
	if err != nil {
		return err
	}
	tc, err := client.NewLazyClient(opts)
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	defer tc.Close()
	stopCodec, err := serveCodec(cfg, log)
	if err != nil {
		return err
	}
	defer stopCodec()
	stopGateway, err := serveGateway(ctx, cfg, db, tc, log)
	if err != nil {
		return err
	}
	defer stopGateway()
	return serveAPI(ctx, cfg, db, tc, log, prometheus.Gatherers{sdk.Registry}, nil)
}

func runWorker(ctx context.Context, cfg config.Config, _ []string) error {
	log := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	db, err := store.OpenPool(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns)
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
	w, err := startWorker(cfg, db, tc, log)
	if err != nil {
		return err
	}
	stopWatch, err := startWatch(cfg, db, tc, log)
	if err != nil {
		w.Stop()
		return err
	}
	defer stopWatch()
	// The worker's own listener: Go runtime, SDK and saga metrics, and
	// /healthz.
	gather := prometheus.Gatherers{prometheus.DefaultGatherer, sdk.Registry, sagaRegistry(cfg, tc, log), spareRegistry, telemetry.BuildInfoRegistry(telemetry.CurrentBuild())}
	stopMetrics, err := serveMetrics(ctx, cfg.MetricsAddr, promhttp.HandlerFor(gather, promhttp.HandlerOpts{}))
	if err != nil {
		w.Stop()
		return err
	}
	defer stopMetrics()
	mailerDone := startMailer(ctx, cfg, db, log)
	chainerDone := startChainer(ctx, db, log)
	<-ctx.Done()
	log.Info().Msg("stopping worker")
	w.Stop()
	mailerDone()
	chainerDone()
	return nil
}

// temporalOptions are the Temporal client's options; the SDK's metrics go
// to sdk unless it is nil. With a key ring (api and worker must have one)
// payloads are encrypted under it: every client the control plane dials
// (api, worker, verify, setup) is made here.
func temporalOptions(cfg config.Config, log zerolog.Logger, sdk *telemetry.SDK) (client.Options, error) {
	opts := client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    logging.Temporal(log),
	}
	if cfg.KeyEncryptionKeys != "" {
		ring, err := seal.ParseRing(cfg.KeyEncryptionKeys)
		if err != nil {
			return opts, fmt.Errorf("CP_KEY_ENCRYPTION_KEYS: %w", err)
		}
		opts.DataConverter = codec.DataConverter(ring)
		// Repairs carry the operator the gateway verified.
		opts.ContextPropagators = []workflow.ContextPropagator{operator.Propagator(ring)}
	}
	tlsCfg, err := temporalTLS(cfg.TemporalTLS)
	if err != nil {
		return opts, err
	}
	opts.ConnectionOptions.TLS = tlsCfg
	if cfg.TemporalAPIKey != "" {
		// Config refuses a key without TLS: it is a bearer secret.
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.TemporalAPIKey)
	}
	if sdk != nil {
		opts.MetricsHandler = sdk.Handler()
	}
	if cfg.Mode == config.ModeDev {
		// The embedded server is in the same process: gzip on every call
		// would only burn CPU the server and the worker share.
		opts.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	}
	return opts, nil
}

// sagaRegistry holds the count of tenant sagas by status, for the workers'
// metrics listener.
func sagaRegistry(cfg config.Config, tc client.Client, log zerolog.Logger) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(telemetry.NewSagas(tc, cfg.TemporalNamespace, workflows.TenantWorkflowType, cfg.TaskQueue, log))
	return reg
}

// dialTemporal connects to Temporal, retrying for a minute so a worker can
// start before the cluster is up.
func dialTemporal(ctx context.Context, cfg config.Config, log zerolog.Logger, sdk *telemetry.SDK) (client.Client, error) {
	opts, err := temporalOptions(cfg, log, sdk)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		tc, err := client.DialContext(dctx, opts)
		cancel()
		if err == nil {
			return tc, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("connect to temporal at %s: %w", cfg.TemporalAddress, err)
		}
		log.Warn().Err(err).Str("address", cfg.TemporalAddress).Msg("temporal not reachable yet, retrying")
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// startWorker registers the workflows and activities and starts polling.
func startWorker(cfg config.Config, db *bun.DB, tc client.Client, log zerolog.Logger) (worker.Worker, error) {
	ring, err := seal.ParseRing(cfg.KeyEncryptionKeys)
	if err != nil {
		return nil, fmt.Errorf("CP_KEY_ENCRYPTION_KEYS: %w", err)
	}
	dp := &dataplane.Postgres{DB: db, Keys: ring}
	if err := prepareDataPlane(context.Background(), dp, log); err != nil {
		return nil, err
	}
	n, unreadable, err := store.ResealTOTP(context.Background(), db, ring)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		log.Info().Int("secrets", n).Str("key_id", ring.Current()).Msg("people's TOTP secrets sealed again under the current key")
	}
	if unreadable > 0 {
		log.Error().Int("secrets", unreadable).Msg("TOTP secrets sealed under a key CP_KEY_ENCRYPTION_KEYS lacks: put the old key back in the ring")
	}
	var plane dataplane.Plane = dp
	if len(cfg.Faults) > 0 {
		faults := map[domain.Step]dataplane.Fault{}
		for _, f := range cfg.Faults {
			faults[domain.Step(f.Step)] = dataplane.Fault{Fail: f.Mode == "fail", Count: f.Count, Delay: f.Delay}
		}
		plane = &dataplane.Faulty{Inner: dp, Faults: faults}
		log.Warn().Interface("faults", cfg.Faults).Msg("fault drills active (CP_FAULTS)")
	}
	// Process-wide, and before the first worker starts (dev sets it before
	// its embedded server's workers; setting it again changes nothing).
	worker.SetStickyWorkflowCacheSize(cfg.WorkflowCacheSize)
	w := worker.New(tc, cfg.TaskQueue, workflows.WorkerOptions(cfg.DatabaseMaxConns))
	w.RegisterWorkflowWithOptions(workflows.TenantWorkflow, workflow.RegisterOptions{Name: workflows.TenantWorkflowType})
	w.RegisterWorkflowWithOptions(workflows.OrganizationWorkflow, workflow.RegisterOptions{Name: workflows.OrganizationWorkflowType})
	w.RegisterWorkflowWithOptions(workflows.StreamWorkflow, workflow.RegisterOptions{Name: workflows.StreamWorkflowType})
	w.RegisterWorkflowWithOptions(workflows.AuditRetentionWorkflow, workflow.RegisterOptions{Name: workflows.RetentionWorkflowType})
	w.RegisterWorkflowWithOptions(workflows.UsageCloseWorkflow, workflow.RegisterOptions{Name: workflows.UsageCloseWorkflowType})
	w.RegisterWorkflowWithOptions(workflows.BillingWorkflow, workflow.RegisterOptions{Name: workflows.BillingWorkflowType})
	// Billing on Stripe (nil when off): the billing workflows' activities,
	// and an organisation's deletion cancels its subscription.
	stripe := billing.New(cfg.Billing, db, cfg.ConsoleURL)
	w.RegisterActivity(&activities.Billing{DB: db, Stripe: stripe, ConsoleURL: cfg.ConsoleURL})
	// An organisation's deletion acts on its tenants through their own
	// sagas, with the client the API uses.
	tenants := workflows.NewClient(tc, cfg.TemporalNamespace, cfg.TaskQueue, cfg.Saga)
	// The daily usage close reports closed days to Stripe (none when off).
	var usageReporter activities.UsageReporter
	if stripe != nil {
		usageReporter = stripe
	}
	w.RegisterActivity(&activities.Activities{DB: db, DataPlane: plane, Tenants: tenants, Stripe: stripe, UsageReporter: usageReporter})
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start worker on task queue %s: %w", cfg.TaskQueue, err)
	}
	// Audit retention runs daily from a Schedule, which follows the
	// workers' release.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := workflows.EnsureRetentionSchedule(ctx, tc, workflows.RetentionScheduleID, cfg.TaskQueue); err != nil {
		w.Stop()
		return nil, err
	}
	// So does the daily close of metered usage.
	if err := workflows.EnsureUsageSchedule(ctx, tc, workflows.UsageScheduleID, cfg.TaskQueue); err != nil {
		w.Stop()
		return nil, err
	}
	stopStreams, err := startStreams(context.Background(), cfg, db, tc, ring, log)
	if err != nil {
		w.Stop()
		return nil, err
	}
	stopSpares := keepSpares(dp, cfg.SpareSchemas, "", log)
	log.Info().Str("task_queue", cfg.TaskQueue).Strs("schedule_ids", []string{workflows.RetentionScheduleID, workflows.UsageScheduleID}).Msg("worker started")
	return &workers{Worker: w, stop: func() { stopSpares(); stopStreams() }}, nil
}

// workers is a worker of a task queue and what runs beside it (audit
// streams' delivery, spare schemas' making); Stop stops those first.
type workers struct {
	worker.Worker
	stop func()
}

func (w *workers) Stop() {
	w.stop()
	w.Worker.Stop()
}

// startMailer delivers the outbox until ctx ends; the returned function
// waits for it to finish.
func startMailer(ctx context.Context, cfg config.Config, db *bun.DB, log zerolog.Logger) (wait func()) {
	s := &mail.Sender{DB: db, Dir: filepath.Join(cfg.DataDir, "mail"), Log: log,
		SMTP: mail.SMTP{Addr: cfg.SMTP.Addr, From: cfg.SMTP.From, Username: cfg.SMTP.Username, Password: cfg.SMTP.Password}}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	return func() { <-done }
}

// chainSweep is how often a worker chains the audit events an older
// release wrote during an upgrade, in organisations no new event came to
// since.
const chainSweep = time.Minute

// startChainer chains audit events not chained yet (store.ChainBacklogs)
// at once and every chainSweep until ctx ends: a probe of an empty index
// once the backlog is gone. The returned function waits for it to stop.
func startChainer(ctx context.Context, db *bun.DB, log zerolog.Logger) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(chainSweep)
		defer t.Stop()
		for {
			if n, err := store.ChainBacklogs(ctx, db); err != nil && ctx.Err() == nil {
				log.Warn().Err(err).Msg("audit events not chained; the next sweep tries again")
			} else if n > 0 {
				log.Info().Int("events", n).Msg("audit events chained")
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { <-done }
}

// metricsMux serves /metrics and /healthz (the process is up, for
// `controlplane healthcheck`) on the metrics listener, not the public one.
func metricsMux(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// serveMetrics serves the metrics listener until ctx ends.
func serveMetrics(ctx context.Context, addr string, h http.Handler) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	srv := &http.Server{Handler: metricsMux(h), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

// serveAPI serves the HTTP API until ctx ends, then drains it.
// ready, when not nil, is called with the address once it accepts
// connections.
// gather are more metrics for its listener.
func serveAPI(ctx context.Context, cfg config.Config, db *bun.DB, tc client.Client, log zerolog.Logger, gather prometheus.Gatherers, ready func(addr string)) error {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	var keys *seal.Ring
	if cfg.KeyEncryptionKeys != "" {
		if keys, err = seal.ParseRing(cfg.KeyEncryptionKeys); err != nil {
			ln.Close()
			return fmt.Errorf("CP_KEY_ENCRYPTION_KEYS: %w", err)
		}
	}
	srv := api.New(api.Deps{DB: db, Temporal: tc, Log: log, SessionTTL: cfg.SessionTTL, ReauthWindow: cfg.ReauthWindow, Keys: keys, ServiceTokenMaxTTL: cfg.ServiceTokenMaxTTL, TenantMaxLifetime: cfg.TenantMaxLifetime, DomainBase: cfg.DomainBase, Regions: cfg.Regions,
		Namespace: cfg.TemporalNamespace, TaskQueue: cfg.TaskQueue, Saga: cfg.Saga,
		PublicRequestsPerMinute: cfg.PublicRateLimit, UserRequestsPerMinute: cfg.UserRateLimit, TenantTransitionsPerMinute: cfg.TenantTransitionsPerMinute,
		TrustedProxies: cfg.TrustedProxies, ConsoleURL: cfg.ConsoleURL, TemporalUIURL: cfg.TemporalUIURL,
		SignUpOpen: cfg.SignUpOpen, MaxOrgsPerUser: cfg.MaxOrgsPerUser, Streams: cfg.Streams,
		Billing: billing.New(cfg.Billing, db, cfg.ConsoleURL)})
	mln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("metrics: %w", err)
	}
	gather = append(gather, telemetry.BuildInfoRegistry(telemetry.CurrentBuild()))
	metrics := &http.Server{Handler: metricsMux(srv.MetricsHandler(gather...)), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() {
		if err := metrics.Serve(mln); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	defer metrics.Close()
	log.Info().Str("addr", ln.Addr().String()).Str("metrics_addr", mln.Addr().String()).Msg("api listening")
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("api on %s: %w", cfg.HTTPAddr, err)
	case <-ctx.Done():
	}
	log.Info().Msg("stopping api")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	return srv.Shutdown(sctx)
}
