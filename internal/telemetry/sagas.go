package telemetry

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// SagaStatuses are the statuses counted; an operator alerts on
// controlplane_sagas{status="stuck"} > 0.
var SagaStatuses = []string{"running", "stuck", "idle"}

// Sagas counts the open tenant workflows by their SagaStatus search
// attribute. Counts come from Temporal's visibility store and are kept for
// MaxAge, so scrapes from several Prometheus servers cost one query per
// status per MaxAge.
type Sagas struct {
	Temporal     client.Client
	Namespace    string
	WorkflowType string
	TaskQueue    string
	MaxAge       time.Duration
	Log          zerolog.Logger

	desc, okDesc *prometheus.Desc
	mu           sync.Mutex
	at           time.Time
	counts       map[string]int64
	err          error
}

// NewSagas returns a collector of the sagas of the workflow type on the
// namespace's task queue.
func NewSagas(tc client.Client, namespace, workflowType, taskQueue string, log zerolog.Logger) *Sagas {
	return &Sagas{Temporal: tc, Namespace: namespace, WorkflowType: workflowType, TaskQueue: taskQueue, MaxAge: 10 * time.Second, Log: log,
		desc: prometheus.NewDesc("controlplane_sagas", "Open tenant sagas by SagaStatus (running, stuck, idle), from Temporal's visibility store.",
			[]string{"status"}, nil),
		okDesc: prometheus.NewDesc("controlplane_sagas_count_ok", "1 when the last count of sagas from Temporal succeeded, 0 when it failed.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (s *Sagas) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc; ch <- s.okDesc }

// Collect implements prometheus.Collector. When Temporal cannot be asked,
// it reports the failure and no counts (an old count would hide a stuck
// saga, a zero would claim there is none).
func (s *Sagas) Collect(ch chan<- prometheus.Metric) {
	counts, err := s.Counts(context.Background())
	if err != nil {
		ch <- prometheus.MustNewConstMetric(s.okDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(s.okDesc, prometheus.GaugeValue, 1)
	for _, st := range SagaStatuses {
		ch <- prometheus.MustNewConstMetric(s.desc, prometheus.GaugeValue, float64(counts[st]), st)
	}
}

// Counts returns the open sagas by status, asking Temporal at most once per
// MaxAge.
func (s *Sagas) Counts(ctx context.Context) (map[string]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.at.IsZero() && time.Since(s.at) < s.MaxAge {
		return s.counts, s.err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	counts := map[string]int64{}
	var err error
	for _, st := range SagaStatuses {
		var resp *workflowservice.CountWorkflowExecutionsResponse
		resp, err = s.Temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: s.Namespace,
			Query: fmt.Sprintf("WorkflowType = '%s' AND TaskQueue = '%s' AND ExecutionStatus = 'Running' AND SagaStatus = '%s'",
				s.WorkflowType, s.TaskQueue, st),
		})
		if err != nil {
			err = fmt.Errorf("count %s sagas: %w", st, err)
			s.Log.Warn().Err(err).Msg("sagas not counted")
			break
		}
		counts[st] = resp.GetCount()
	}
	s.at, s.counts, s.err = time.Now(), counts, err
	return counts, err
}
