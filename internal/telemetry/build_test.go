package telemetry

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestTheVersionStringNamesTheVersionTheRevisionAndTheGo(t *testing.T) {
	b := Build{Version: "1.4.0", Revision: "0123abc", GoVersion: "go1.26.8"}
	if got, want := b.String(), "controlplane 1.4.0 (revision 0123abc, go1.26.8)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (Build{Version: "dev", GoVersion: "go1.26.8"}).String(), "controlplane dev (revision unknown, go1.26.8)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestTheBuildDefaultsToDevAndTheRecordedRevision(t *testing.T) {
	oldV, oldR := Version, Revision
	t.Cleanup(func() { Version, Revision = oldV, oldR })

	Version, Revision = "", ""
	b := CurrentBuild()
	if b.Version != "dev" || b.GoVersion != runtime.Version() {
		t.Errorf("without -X: %+v; want version dev and %s", b, runtime.Version())
	}
	Version, Revision = "1.4.0", "feedface"
	if b := CurrentBuild(); b.Version != "1.4.0" || b.Revision != "feedface" {
		t.Errorf("with -X: %+v; want 1.4.0 and feedface", b)
	}

	info := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}}
	if got := vcsRevision(info); got != "abc123-dirty" {
		t.Errorf("a modified tree's revision is %q, want abc123-dirty", got)
	}
	info.Settings[1].Value = "false"
	if got := vcsRevision(info); got != "abc123" {
		t.Errorf("a clean tree's revision is %q, want abc123", got)
	}
	if got := vcsRevision(&debug.BuildInfo{}); got != "" {
		t.Errorf("no VCS settings: revision %q, want none", got)
	}
}

func TestTheBuildInfoMetricIsOneWithItsLabels(t *testing.T) {
	reg := BuildInfoRegistry(Build{Version: "1.4.0", Revision: "0123abc", GoVersion: "go1.26.8"})
	want := `
# HELP controlplane_build_info The control plane's build: version, VCS revision and Go version; always 1.
# TYPE controlplane_build_info gauge
controlplane_build_info{goversion="go1.26.8",revision="0123abc",version="1.4.0"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "controlplane_build_info"); err != nil {
		t.Fatal(err)
	}
}
