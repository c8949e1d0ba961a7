// Package harness is the integration test harness: a real Postgres database
// (from CP_TEST_DATABASE_URL, else a private cluster started from the local
// Postgres binaries) with the schema migrated, and a real Temporal server in
// process. One harness serves a whole test package; start it from TestMain
// with Main.
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/internal/codec"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/logging"
	"github.com/intelliauth/controlplane/internal/operator"
	"github.com/intelliauth/controlplane/internal/pgcluster"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/internal/temporalserver"
	"github.com/intelliauth/controlplane/schema"
	"github.com/intelliauth/controlplane/workflows"
)

// Namespace is the Temporal namespace of the harness.
const Namespace = "default"

// Harness is the shared Postgres and Temporal of one test package.
type Harness struct {
	// DatabaseURL is the package's own database, migrated.
	DatabaseURL string
	// AdminURL reaches the server's postgres database, to create more.
	AdminURL string
	DB       *bun.DB
	// TemporalAddr is the frontend's host:port.
	TemporalAddr string
	// Temporal encrypts payloads under Keys, as the control plane's
	// clients do.
	Temporal client.Client
	Keys     *seal.Ring
	// KeyRing is Keys as CP_KEY_ENCRYPTION_KEYS writes it, for the
	// processes a test starts.
	KeyRing string
	Log     zerolog.Logger

	stops []func()
}

var current *Harness

// Main starts the harness, runs the package's tests and stops it. Call it
// from TestMain: func TestMain(m *testing.M) { harness.Main(m) }.
func Main(m *testing.M, checks ...func() error) {
	h, err := start(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		os.Exit(1)
	}
	current = h
	code := m.Run()
	if code == 0 {
		// Checks over the whole run, e.g. that every operation was called.
		for _, check := range checks {
			if err := check(); err != nil {
				fmt.Fprintln(os.Stderr, "FAIL:", err)
				code = 1
			}
		}
	}
	h.stop()
	for _, f := range onExit {
		f()
	}
	os.Exit(code)
}

var onExit []func()

// OnExit runs f when the package's tests are done, whatever their outcome
// (os.Exit skips deferred calls): to remove what the whole run shared.
func OnExit(f func()) { onExit = append(onExit, f) }

// Get returns the package's harness.
func Get(t testing.TB) *Harness {
	t.Helper()
	if current == nil {
		t.Fatal("harness not started: call harness.Main from TestMain")
	}
	return current
}

func start(ctx context.Context) (_ *Harness, err error) {
	h := &Harness{Log: testLogger()}
	defer func() {
		// What was started before a failure is stopped (h, not the
		// result, which is nil then).
		if err != nil {
			h.stop()
		}
	}()

	admin := os.Getenv("CP_TEST_DATABASE_URL")
	if admin == "" {
		dir, err := os.MkdirTemp("", "cp-harness-pg-")
		if err != nil {
			return nil, err
		}
		h.stops = append(h.stops, func() { os.RemoveAll(dir) })
		pg, err := pgcluster.Start(ctx, dir)
		if err != nil {
			return nil, fmt.Errorf("private postgres cluster: %w", err)
		}
		h.stops = append(h.stops, func() { _ = pg.Stop() })
		admin = pg.URL("postgres")
	}
	h.AdminURL = admin
	dbName := "cp_test_" + randomHex(6)
	if err := pgcluster.CreateDatabase(ctx, admin, dbName); err != nil {
		return nil, err
	}
	h.stops = append(h.stops, func() { _ = pgcluster.DropDatabase(context.Background(), admin, dbName) })
	h.DatabaseURL, err = withDatabase(admin, dbName)
	if err != nil {
		return nil, err
	}
	h.DB, err = store.Open(ctx, h.DatabaseURL)
	if err != nil {
		return nil, err
	}
	h.stops = append(h.stops, func() { h.DB.Close() })
	if _, err := schema.Up(ctx, h.DB); err != nil {
		return nil, err
	}

	srv, err := temporalserver.Start(temporalserver.Options{
		FrontendAddr:     "127.0.0.1:0",
		Namespace:        Namespace,
		SearchAttributes: workflows.SearchAttributes(),
		Log:              h.Log,
	})
	if err != nil {
		return nil, err
	}
	h.stops = append(h.stops, func() { _ = srv.Stop() })
	h.TemporalAddr = srv.FrontendAddr()
	key, err := seal.NewKey("harness")
	if err != nil {
		return nil, err
	}
	h.KeyRing = key
	if h.Keys, err = seal.ParseRing(key); err != nil {
		return nil, err
	}
	h.Temporal, err = client.Dial(client.Options{
		HostPort:      h.TemporalAddr,
		Namespace:     Namespace,
		Logger:        logging.Temporal(h.Log),
		DataConverter: codec.DataConverter(h.Keys),
		// As the control plane's: repairs carry the operator the gateway
		// verified.
		ContextPropagators: []workflow.ContextPropagator{operator.Propagator(h.Keys)},
	})
	if err != nil {
		return nil, fmt.Errorf("dial temporal: %w", err)
	}
	h.stops = append(h.stops, h.Temporal.Close)
	return h, nil
}

func (h *Harness) stop() {
	for i := len(h.stops) - 1; i >= 0; i-- {
		h.stops[i]()
	}
	h.stops = nil
}

// NewDatabase creates a fresh, migrated database for a test that needs one
// to itself (e.g. to run migrations down), dropped at the end of the test.
func (h *Harness) NewDatabase(t testing.TB, migrate bool) (string, *bun.DB) {
	t.Helper()
	ctx := context.Background()
	name := "cp_test_" + randomHex(6)
	if err := pgcluster.CreateDatabase(ctx, h.AdminURL, name); err != nil {
		t.Fatal(err)
	}
	u, err := withDatabase(h.AdminURL, name)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		_ = pgcluster.DropDatabase(context.Background(), h.AdminURL, name)
	})
	if migrate {
		if _, err := schema.Up(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	return u, db
}

// WithDatabase returns the harness with another database (one from
// NewDatabase) in place of the package's, for a test whose checks read the
// whole database.
func (h *Harness) WithDatabase(url string, db *bun.DB) *Harness {
	c := *h
	c.DatabaseURL, c.DB, c.stops = url, db, nil
	return &c
}

// TaskQueue returns a task queue name unique to the test, so workers of
// parallel tests never take each other's tasks.
func TaskQueue(t testing.TB) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if len(name) > 60 {
		name = name[:60]
	}
	return "test-" + name + "-" + randomHex(4)
}

// StartWorker starts a worker on taskQueue with what register adds, stopped
// at the end of the test.
func (h *Harness) StartWorker(t testing.TB, taskQueue string, register func(worker.Registry)) {
	t.Helper()
	w := worker.New(h.Temporal, taskQueue, worker.Options{WorkerStopTimeout: 5 * time.Second})
	register(w)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(w.Stop)
}

// StopWorker is a running worker's stop: it waits for the worker's
// activities at most the stop timeout it was started with, then cancels
// them, as a worker process killed mid-activity leaves its tasks to
// another. Calling it again does nothing.
type StopWorker func()

// StartStoppableWorker is StartWorker with the worker's options, for a
// test that stops the worker itself (and starts another) before the test
// ends; whatever is still running is stopped at the end of the test.
func (h *Harness) StartStoppableWorker(t testing.TB, taskQueue string, opts worker.Options, register func(worker.Registry)) StopWorker {
	t.Helper()
	w := worker.New(h.Temporal, taskQueue, opts)
	register(w)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	var once sync.Once
	stop := func() { once.Do(w.Stop) }
	t.Cleanup(stop)
	return stop
}

// Streams are the audit streams' settings of the tests: receivers on
// loopback (CP_STREAM_ALLOW_PRIVATE), a short delivery timeout, the
// production suspension (a test that waits for one sets its own).
func Streams() config.Streams {
	s := config.DefaultStreams()
	s.AllowPrivate, s.Timeout, s.Deliveries = true, 2*time.Second, 8
	return s
}

func withDatabase(rawURL, db string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("CP_TEST_DATABASE_URL: %w", err)
	}
	u.Path = "/" + db
	return u.String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testLogger logs warnings and errors only, unless CP_TEST_LOG_LEVEL says
// otherwise, so a failing test's output is readable.
func testLogger() zerolog.Logger {
	lvl := os.Getenv("CP_TEST_LOG_LEVEL")
	if lvl == "" {
		lvl = "error"
	}
	return logging.New(os.Stderr, lvl, "console")
}
