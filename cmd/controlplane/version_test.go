package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestVersionPrintsWhatTheBuildStamped builds the binary the way the
// Dockerfile does (-tags nodev, the version and revision set with -ldflags
// -X) and runs `controlplane version`, which needs no configuration.
func TestVersionPrintsWhatTheBuildStamped(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "controlplane")
	const pkg = "github.com/intelliauth/controlplane/internal/telemetry"
	build := exec.Command("go", "build", "-tags", "nodev", "-o", bin,
		"-ldflags", "-X "+pkg+".Version=1.4.0 -X "+pkg+".Revision=0123abc", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("controlplane version: %v", err)
	}
	want := "controlplane 1.4.0 (revision 0123abc, " + runtime.Version() + ")"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("controlplane version printed %q, want %q", got, want)
	}
}
