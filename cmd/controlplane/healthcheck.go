package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/intelliauth/controlplane/internal/config"
)

// runHealthcheck asks the process on CP_METRICS_ADDR whether it is up, for
// a container's healthcheck: the image has no shell and no HTTP client.
func runHealthcheck(ctx context.Context, cfg config.Config, _ []string) error {
	host, port, err := net.SplitHostPort(cfg.MetricsAddr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // a listener on every interface answers on loopback
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: /healthz answered %d", resp.StatusCode)
	}
	return nil
}
