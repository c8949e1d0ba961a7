package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/intelliauth/controlplane/internal/harness"
)

// recordHistory writes the workflow's history to workflows/testdata when
// CP_RECORD_HISTORIES is set, for the replay test that guards running
// sagas against incompatible workflow changes. Record after a deliberate,
// versioned change, never to silence a failing replay.
func recordHistory(t *testing.T, h *harness.Harness, workflowID, name string) {
	t.Helper()
	if os.Getenv("CP_RECORD_HISTORIES") == "" {
		return
	}
	it := h.Temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, 0)
	hist := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		hist.Events = append(hist.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(hist)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "workflows", "testdata", "tenant-"+strings.ToLower(name)+".json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s", path)
}
