package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/rs/zerolog"

	"github.com/intelliauth/controlplane/internal/codec"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/seal"
)

// serveCodec serves the codec endpoint on CP_CODEC_ADDR, on a listener of
// its own (like the metrics, never the public API's), when CP_CODEC_TOKEN
// is set: operators' temporal CLI (--codec-endpoint, --codec-auth) and the
// Temporal UI at CP_TEMPORAL_UI_URL (through a proxy that signs operators
// in and adds the token) read payloads decoded through it.
func serveCodec(cfg config.Config, log zerolog.Logger) (stop func(), err error) {
	if cfg.CodecToken == "" {
		log.Info().Msg("no codec endpoint (CP_CODEC_TOKEN is not set): payloads show encrypted in the Temporal UI and CLI")
		return func() {}, nil
	}
	h, err := codecHandler(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.CodecAddr)
	if err != nil {
		return nil, fmt.Errorf("codec endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/codec/", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("codec endpoint stopped")
		}
	}()
	log.Info().Str("codec_addr", ln.Addr().String()).Msg("codec endpoint listening at /codec")
	return func() { _ = srv.Close() }, nil
}

// codecHandler is the api's codec endpoint: the operators' token, and
// the Temporal UI's origin for browsers.
func codecHandler(cfg config.Config) (http.Handler, error) {
	ring, err := seal.ParseRing(cfg.KeyEncryptionKeys)
	if err != nil {
		return nil, fmt.Errorf("CP_KEY_ENCRYPTION_KEYS: %w", err)
	}
	var origins []string
	if cfg.TemporalUIURL != "" {
		u, err := url.Parse(cfg.TemporalUIURL)
		if err != nil {
			return nil, fmt.Errorf("CP_TEMPORAL_UI_URL: %w", err)
		}
		origins = []string{u.Scheme + "://" + u.Host}
	}
	return codec.Handler(codec.New(ring), codec.HandlerOptions{
		Namespace: cfg.TemporalNamespace, Token: cfg.CodecToken, Origins: origins,
	}), nil
}
