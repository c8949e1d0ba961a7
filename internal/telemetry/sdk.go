// Package telemetry exports what the Temporal SDK measures (workflow-task
// failures, schedule-to-start latencies, activity failures, poller and slot
// usage) and the number of tenant sagas by status as Prometheus metrics, on
// the metrics listener beside the process's own.
package telemetry

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// labels are the SDK's tags kept as Prometheus labels. Every metric carries
// all of them (empty when the SDK did not set one), so a metric's label set
// never changes with the call site that emits it. Others (client name,
// Nexus) are dropped.
var labels = []string{"namespace", "task_queue", "workflow_type", "activity_type", "operation",
	"failure_reason", "poller_type", "worker_type", "cause"}

// latencyBuckets, in seconds, span a local write (a few milliseconds) to a
// long poll (a minute).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// SDK turns the SDK's metrics into Prometheus ones on its own registry.
type SDK struct {
	Registry *prometheus.Registry

	counters   family[*prometheus.CounterVec]
	gauges     family[*prometheus.GaugeVec]
	histograms family[*prometheus.HistogramVec]
}

// NewSDK returns an SDK with an empty registry.
func NewSDK() *SDK {
	s := &SDK{Registry: prometheus.NewRegistry()}
	s.counters = family[*prometheus.CounterVec]{reg: s.Registry, make: func(name string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: "Temporal SDK counter " + name + "."}, labels)
	}}
	s.gauges = family[*prometheus.GaugeVec]{reg: s.Registry, make: func(name string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: "Temporal SDK gauge " + name + "."}, labels)
	}}
	s.histograms = family[*prometheus.HistogramVec]{reg: s.Registry, make: func(name string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name + "_seconds",
			Help: "Temporal SDK timer " + name + ", in seconds.", Buckets: latencyBuckets}, labels)
	}}
	return s
}

// Handler is the client.MetricsHandler to give the Temporal client.
func (s *SDK) Handler() client.MetricsHandler { return handler{sdk: s, tags: map[string]string{}} }

func (s *SDK) counter(name string) *prometheus.CounterVec     { return s.counters.get(name) }
func (s *SDK) gauge(name string) *prometheus.GaugeVec         { return s.gauges.get(name) }
func (s *SDK) histogram(name string) *prometheus.HistogramVec { return s.histograms.get(name) }

// family holds the metrics of one kind by name, each made and registered
// on first use. Names are kept per kind, so a clash means the SDK used one
// name for two kinds of metric: the second is then kept off the registry
// rather than failing the worker over a metric.
type family[V prometheus.Collector] struct {
	reg  prometheus.Registerer
	make func(name string) V

	mu sync.Mutex
	m  map[string]V
}

func (f *family[V]) get(name string) V {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.m[name]; ok {
		return v
	}
	if f.m == nil {
		f.m = map[string]V{}
	}
	v := f.make(name)
	_ = f.reg.Register(v)
	f.m[name] = v
	return v
}

type handler struct {
	sdk  *SDK
	tags map[string]string
}

func (h handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return handler{sdk: h.sdk, tags: merged}
}

// values are the label values of the handler's tags, in labels' order.
func (h handler) values() []string {
	out := make([]string, len(labels))
	for i, l := range labels {
		out[i] = h.tags[l]
	}
	return out
}

func (h handler) Counter(name string) client.MetricsCounter {
	c, err := h.sdk.counter(sanitize(name)).GetMetricWithLabelValues(h.values()...)
	if err != nil {
		return client.MetricsNopHandler.Counter(name)
	}
	return counter{c}
}

func (h handler) Gauge(name string) client.MetricsGauge {
	g, err := h.sdk.gauge(sanitize(name)).GetMetricWithLabelValues(h.values()...)
	if err != nil {
		return client.MetricsNopHandler.Gauge(name)
	}
	return gauge{g}
}

func (h handler) Timer(name string) client.MetricsTimer {
	o, err := h.sdk.histogram(sanitize(name)).GetMetricWithLabelValues(h.values()...)
	if err != nil {
		return client.MetricsNopHandler.Timer(name)
	}
	return timer{o}
}

type counter struct{ c prometheus.Counter }

func (c counter) Inc(n int64) {
	if n > 0 {
		c.c.Add(float64(n))
	}
}

type gauge struct{ g prometheus.Gauge }

func (g gauge) Update(v float64) { g.g.Set(v) }

type timer struct{ o prometheus.Observer }

func (t timer) Record(d time.Duration) { t.o.Observe(d.Seconds()) }

// sanitize makes an SDK metric name a valid Prometheus one.
func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == ':' {
			return r
		}
		return '_'
	}, name)
}
