package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestTheSDKsMetricsBecomePrometheusMetricsWithOneLabelSet(t *testing.T) {
	s := NewSDK()
	h := s.Handler().WithTags(map[string]string{"namespace": "default", "task_queue": "controlplane"})
	h.WithTags(map[string]string{"workflow_type": "TenantWorkflow", "failure_reason": "NonDeterminismError"}).
		Counter("temporal_workflow_task_execution_failed").Inc(2)
	// The same metric from a call site with fewer tags, and a tag that is
	// not kept.
	h.WithTags(map[string]string{"client_name": "temporal-go"}).Counter("temporal_workflow_task_execution_failed").Inc(1)
	h.Counter("temporal_workflow_task_execution_failed").Inc(-5) // a counter never goes down
	h.WithTags(map[string]string{"activity_type": "CreateSchema"}).Timer("temporal_activity_schedule_to_start_latency").Record(30 * time.Millisecond)
	h.WithTags(map[string]string{"worker_type": "ActivityWorker"}).Gauge("temporal_worker_task_slots_available").Update(15)
	h.Gauge("temporal.odd-name").Update(1)

	want := `
# HELP temporal_workflow_task_execution_failed Temporal SDK counter temporal_workflow_task_execution_failed.
# TYPE temporal_workflow_task_execution_failed counter
temporal_workflow_task_execution_failed{activity_type="",cause="",failure_reason="",namespace="default",operation="",poller_type="",task_queue="controlplane",worker_type="",workflow_type=""} 1
temporal_workflow_task_execution_failed{activity_type="",cause="",failure_reason="NonDeterminismError",namespace="default",operation="",poller_type="",task_queue="controlplane",worker_type="",workflow_type="TenantWorkflow"} 2
# HELP temporal_worker_task_slots_available Temporal SDK gauge temporal_worker_task_slots_available.
# TYPE temporal_worker_task_slots_available gauge
temporal_worker_task_slots_available{activity_type="",cause="",failure_reason="",namespace="default",operation="",poller_type="",task_queue="controlplane",worker_type="ActivityWorker",workflow_type=""} 15
# HELP temporal_odd_name Temporal SDK gauge temporal_odd_name.
# TYPE temporal_odd_name gauge
temporal_odd_name{activity_type="",cause="",failure_reason="",namespace="default",operation="",poller_type="",task_queue="controlplane",worker_type="",workflow_type=""} 1
`
	if err := testutil.GatherAndCompare(s.Registry, strings.NewReader(want),
		"temporal_workflow_task_execution_failed", "temporal_worker_task_slots_available", "temporal_odd_name"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(s.histogram("temporal_activity_schedule_to_start_latency")); n != 1 {
		t.Fatalf("schedule-to-start latency series = %d, want 1", n)
	}
	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "temporal_activity_schedule_to_start_latency_seconds" {
			if got := mf.GetMetric()[0].GetHistogram().GetSampleSum(); got < 0.029 || got > 0.031 {
				t.Fatalf("latency sum = %v s, want 0.03", got)
			}
			return
		}
	}
	t.Fatal("no temporal_activity_schedule_to_start_latency_seconds histogram")
}

func TestAMetricNameUsedForTwoKindsKeepsTheFirstAndDoesNotPanic(t *testing.T) {
	s := NewSDK()
	h := s.Handler()
	h.Counter("temporal_clash").Inc(1)
	h.Gauge("temporal_clash").Update(3)
	if n := testutil.CollectAndCount(s.Registry, "temporal_clash"); n != 1 {
		t.Fatalf("series of temporal_clash = %d, want the counter's 1", n)
	}
}
