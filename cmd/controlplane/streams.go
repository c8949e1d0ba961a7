package main

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"
	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/outbound"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/internal/streamwake"
	"github.com/intelliauth/controlplane/workflows"
)

// startStreams starts what delivers audit streams in a worker process:
// the streams' secrets sealed again under the ring's current key, a worker
// of their deliveries on their own task queue (CP_STREAM_DELIVERIES
// slots, the outbound client), the notifier that wakes streams whose
// chain moved, and, once, a wake of every delivering stream (which starts
// a workflow that is missing). stop ends them.
func startStreams(ctx context.Context, cfg config.Config, db *bun.DB, tc client.Client, ring *seal.Ring, log zerolog.Logger) (stop func(), err error) {
	n, unreadable, err := store.ResealStreams(ctx, db, ring)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		log.Info().Int("values", n).Str("key_id", ring.Current()).Msg("audit streams' secrets and credentials sealed again under the current key")
	}
	if unreadable > 0 {
		log.Error().Int("values", unreadable).Msg("audit streams' secrets sealed under a key CP_KEY_ENCRYPTION_KEYS lacks: put the old key back in the ring")
	}
	if cfg.Streams.AllowPrivate {
		log.Warn().Msg("audit streams may reach loopback and private addresses (CP_STREAM_ALLOW_PRIVATE)")
	}
	w := worker.New(tc, workflows.StreamTaskQueue(cfg.TaskQueue), worker.Options{
		MaxConcurrentActivityExecutionSize: cfg.Streams.Deliveries,
		// A stopping worker lets a batch in flight end within its timeout.
		WorkerStopTimeout: cfg.Streams.Timeout,
	})
	w.RegisterActivity(&activities.Streams{DB: db, Keys: ring,
		Client: outbound.NewClient(outbound.Options{AllowPrivate: cfg.Streams.AllowPrivate, Timeout: cfg.Streams.Timeout})})
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start the audit streams' worker: %w", err)
	}
	streams := workflows.NewClient(tc, cfg.TemporalNamespace, cfg.TaskQueue, cfg.Saga)
	streams.Streams = cfg.Streams
	nctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if n, err := streamwake.WakeAll(nctx, db, streams.WakeStream); err != nil && nctx.Err() == nil {
			log.Warn().Err(err).Int("woken", n).Msg("not every audit stream was woken at start; the notifier wakes them as their events come")
		}
		(&streamwake.Notifier{DB: db, Wake: streams.WakeStream, Log: log}).Run(nctx)
	}()
	return func() { cancel(); <-done; w.Stop() }, nil
}
