package telemetry

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Version and Revision are the release and the VCS revision the binary was
// built from, stamped at build time (the Dockerfile does it from its
// VERSION and REVISION build arguments):
//
//	go build -ldflags "-X github.com/intelliauth/controlplane/internal/telemetry.Version=1.4.0 \
//	  -X github.com/intelliauth/controlplane/internal/telemetry.Revision=$(git rev-parse HEAD)" ./cmd/controlplane
//
// A binary built without them is "dev", with the revision the go command
// recorded (none when it was built outside a repository or with
// -buildvcs=false).
var (
	Version  = "dev"
	Revision = ""
)

// Build names what a binary was built from.
type Build struct {
	Version, Revision, GoVersion string
}

// CurrentBuild is this binary's Build.
func CurrentBuild() Build {
	b := Build{Version: Version, Revision: Revision, GoVersion: runtime.Version()}
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Revision == "" {
		if info, ok := debug.ReadBuildInfo(); ok {
			b.Revision = vcsRevision(info)
		}
	}
	return b
}

// vcsRevision is the revision the go command stamped into info, marked
// "-dirty" when the work tree had changes; "" when there is none.
func vcsRevision(info *debug.BuildInfo) string {
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" && modified == "true" {
		rev += "-dirty"
	}
	return rev
}

// String is what `controlplane version` prints: the version, then the
// revision and the Go it was built with.
func (b Build) String() string {
	rev := b.Revision
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("controlplane %s (revision %s, %s)", b.Version, rev, b.GoVersion)
}

// BuildInfoRegistry holds controlplane_build_info{version,revision,goversion},
// always 1, so dashboards can tell which build each process runs (and
// join it onto the process's other series).
func BuildInfoRegistry(b Build) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "controlplane_build_info",
		Help: "The control plane's build: version, VCS revision and Go version; always 1.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(b.Version, b.Revision, b.GoVersion).Set(1)
	reg.MustRegister(g)
	return reg
}
