package api

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the API's Prometheus metrics, on their own registry so tests
// can build many servers in one process.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// hashes counts argon2id computations by op (verify, hash): the CPU a
	// flood of sign-ins or accepts costs.
	hashes *prometheus.CounterVec
}

// NewMetrics registers the HTTP metrics and the Go runtime and process
// collectors on a new registry.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "controlplane_http_requests_total",
			Help: "HTTP requests answered, by method, route template and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "controlplane_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by method, route template and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status"}),
		hashes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "controlplane_password_hashes_total",
			Help: "Password hashes computed (argon2id), by op: verify or hash.",
		}, []string{"op"}),
	}
	reg.MustRegister(m.requests, m.latency, m.hashes,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) observe(method, route string, status int, elapsed time.Duration) {
	st := strconv.Itoa(status)
	m.requests.WithLabelValues(method, route, st).Inc()
	m.latency.WithLabelValues(method, route, st).Observe(elapsed.Seconds())
}
