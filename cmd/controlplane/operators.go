package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"

	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/opsgate"
	"github.com/intelliauth/controlplane/internal/seal"
)

// devOperator is the operator dev's client certificate names.
const devOperator = "operator@intelliauth.localhost"

// devOperatorCertificates makes (once) dev's operators' CA, the gateway's
// certificate and one operator's, under the data dir, and puts them in
// cfg; it returns where the operator's certificate and key are.
func devOperatorCertificates(cfg *config.Config) (opsgate.DevFiles, error) {
	f, err := opsgate.DevCertificates(filepath.Join(cfg.DataDir, "operator"), devOperator)
	if err != nil {
		return f, fmt.Errorf("dev's operator certificates: %w", err)
	}
	read := func(p string) string {
		b, rerr := os.ReadFile(p)
		if rerr != nil && err == nil {
			err = rerr
		}
		return string(b)
	}
	if cfg.OperatorTLS.Cert == "" {
		cfg.OperatorTLS = config.OperatorTLS{Cert: read(f.Cert), Key: read(f.Key), ClientCA: read(f.CA)}
	}
	return f, err
}

// serveGateway serves the operator gateway on cfg.OperatorAddr (when set)
// until ctx ends. The listener is bound at once; it serves once the
// Temporal client has connected.
func serveGateway(ctx context.Context, cfg config.Config, db *bun.DB, tc client.Client, log zerolog.Logger) (stop func(), err error) {
	if cfg.OperatorAddr == "" {
		log.Info().Msg("no operator gateway (CP_OPERATOR_ADDR is not set): operators cannot repair sagas")
		return func() {}, nil
	}
	ring, err := seal.ParseRing(cfg.KeyEncryptionKeys)
	if err != nil {
		return nil, fmt.Errorf("CP_KEY_ENCRYPTION_KEYS: %w", err)
	}
	tlsCfg, err := opsgate.TLSConfig([]byte(cfg.OperatorTLS.Cert), []byte(cfg.OperatorTLS.Key), []byte(cfg.OperatorTLS.ClientCA), cfg.OperatorRevoked)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.OperatorAddr)
	if err != nil {
		return nil, fmt.Errorf("operator gateway: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer ln.Close()
		// The lazy client has no connection before Temporal answers.
		for {
			if _, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{}); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		g := &opsgate.Gateway{Upstream: tc.WorkflowService(), Namespace: cfg.TemporalNamespace, Keys: ring, Log: log,
			Trail: &opsgate.Watcher{Service: tc.WorkflowService(), Namespace: cfg.TemporalNamespace, DB: db, Keys: ring, Log: log}}
		log.Info().Str("operator_addr", ln.Addr().String()).Msg("operator gateway listening (mTLS, operators' certificates)")
		if err := g.Serve(ctx, ln, tlsCfg); err != nil {
			log.Error().Err(err).Msg("operator gateway stopped")
		}
	}()
	return func() { cancel(); <-done }, nil
}

// startWatch looks for tenant sagas a terminate or reset ended, every
// cfg.SagaWatchInterval, until the returned stop is called.
func startWatch(cfg config.Config, db *bun.DB, tc client.Client, log zerolog.Logger) (stop func(), err error) {
	ring, err := seal.ParseRing(cfg.KeyEncryptionKeys)
	if err != nil {
		return nil, fmt.Errorf("CP_KEY_ENCRYPTION_KEYS: %w", err)
	}
	w := &opsgate.Watcher{Service: tc.WorkflowService(), Namespace: cfg.TemporalNamespace, DB: db, Keys: ring, Log: log}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, cfg.SagaWatchInterval) }()
	return func() { cancel(); <-done }, nil
}

// temporalTLS is the client side of the frontend's mutual TLS.
func temporalTLS(t config.TemporalTLS) (*tls.Config, error) {
	if !t.Enabled() {
		return nil, nil
	}
	c := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(t.CA)) {
			return nil, errors.New("CP_TEMPORAL_TLS_CA holds no PEM certificate")
		}
		c.RootCAs = pool
	}
	if t.Cert != "" {
		pair, err := tls.X509KeyPair([]byte(t.Cert), []byte(t.Key))
		if err != nil {
			return nil, fmt.Errorf("CP_TEMPORAL_TLS_CERT and _KEY: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}
