package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/intelliauth/controlplane/internal/codec"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/workflows"
)

// recordHistory writes a run's history (runID "": the latest) to
// workflows/testdata when CP_RECORD_HISTORIES is set, for the replay test
// that guards running sagas against incompatible workflow changes. A file
// that exists is kept: the set only grows. Record after a deliberate,
// versioned change, never to silence a failing replay.
func recordHistory(t *testing.T, h *harness.Harness, workflowID, runID, name string) {
	t.Helper()
	recordHistoryAs(t, h, workflowID, runID, workflows.HistoryPrefix()+"-"+strings.ToLower(name))
}

// recordHistoryAs is recordHistory to workflows/testdata/<file>.json (an
// organisation's: OrgHistoryPrefix()-<name>).
func recordHistoryAs(t *testing.T, h *harness.Harness, workflowID, runID, file string) {
	t.Helper()
	if os.Getenv("CP_RECORD_HISTORIES") == "" {
		return
	}
	path := filepath.Join("..", "workflows", "testdata", file+".json")
	if _, err := os.Stat(path); err == nil {
		t.Logf("kept %s (histories are never overwritten)", path)
		return
	}
	// Decoded: the replay test reads recorded histories without the
	// harness's key, and the codec passes payloads in clear through.
	hist := workflowHistory(t, h, workflowID, runID)
	if err := proxy.VisitPayloads(context.Background(), hist, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			return codec.New(h.Keys).Decode(ps)
		},
	}); err != nil {
		t.Fatal(err)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(hist)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s", path)
}

// workflowHistory reads a run's history (runID "": the latest).
func workflowHistory(t *testing.T, h *harness.Harness, workflowID, runID string) *historypb.History {
	t.Helper()
	return historyOf(t, h.Temporal, workflowID, runID)
}

// historyOf reads a run's history through the client c (runID "": the
// latest).
func historyOf(t *testing.T, c client.Client, workflowID, runID string) *historypb.History {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), workflowID, runID, false, 0)
	hist := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		hist.Events = append(hist.Events, ev)
	}
	return hist
}
