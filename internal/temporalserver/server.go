// Package temporalserver embeds a complete Temporal server (and, optionally,
// its Web UI) in the control plane process, for `controlplane dev` and for the
// integration test harness. It is the only package, with the harness, that
// links go.temporal.io/server.
package temporalserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/testing/freeport"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

const clusterName = "active"

// Options configures an embedded server.
type Options struct {
	// FrontendAddr is the host:port the gRPC frontend listens on; port 0 picks
	// a free one.
	FrontendAddr string
	// UIAddr is the host:port of the Web UI; empty means no UI. It answers
	// only requests that name it in Host (its address or, on loopback,
	// 127.0.0.1, localhost or [::1] with its port).
	UIAddr string
	// UICodec, when not nil, is called with the UI's origins and serves
	// the remote codec protocol at /codec/ on the UI's listener; the UI
	// decodes payloads through it.
	UICodec func(origins []string) http.Handler
	// DatabaseFile is the SQLite file; empty keeps everything in memory.
	DatabaseFile string
	// Namespace is created at start when missing.
	Namespace string
	// SearchAttributes are registered on the namespace.
	SearchAttributes map[string]enumspb.IndexedValueType
	// Log receives the server's log lines (at warn level and above unless the
	// logger's level is lower).
	Log zerolog.Logger
	// CachedWorkflows bounds the workflows whose state the server keeps in
	// memory between their tasks (0: Temporal's default, 128,000, which an
	// installation of tenants, each with a workflow for life, fills: the
	// process then grows with its tenants).
	CachedWorkflows int
}

// Server is a running embedded Temporal server.
type Server struct {
	server       temporal.Server
	ui           *uiServer
	frontendAddr string
	uiAddr       string
	stopping     *atomic.Bool
}

// Start builds and starts the server, and the UI when asked for. It returns
// once the frontend accepts connections.
func Start(opts Options) (*Server, error) {
	host, port, err := splitHostPort(opts.FrontendAddr)
	if err != nil {
		return nil, fmt.Errorf("temporal frontend address: %w", err)
	}
	if port == 0 {
		port = freeport.MustGetFreePort()
	}
	if err := checkFree(net.JoinHostPort(host, strconv.Itoa(port))); err != nil {
		return nil, fmt.Errorf("temporal frontend: %w", err)
	}
	frontendAddr := net.JoinHostPort(host, strconv.Itoa(port))

	sqlConf, err := sqlConfig(opts)
	if err != nil {
		return nil, err
	}
	conf := serverConfig(host, port, sqlConf)
	onePartition := true
	if opts.DatabaseFile != "" {
		backlog, err := partitionBacklog(opts.DatabaseFile)
		if err != nil {
			return nil, err
		}
		if backlog {
			opts.Log.Info().Msg("temporal: tasks of an earlier run wait in task queue partitions beyond the first; the server keeps four partitions until a start finds none")
			onePartition = false
		}
	}

	ns, err := sqliteschema.NewNamespaceConfig(clusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", opts.Namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(sqlConf, ns); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", opts.Namespace, err)
	}

	stopping := new(atomic.Bool)
	logger := newLogger(opts.Log, stopping)
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("temporal authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("temporal claim mapper: %w", err)
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dynamicConfig(onePartition, opts.CachedWorkflows)),
	)
	if err != nil {
		return nil, fmt.Errorf("build temporal server: %w", err)
	}

	s := &Server{server: srv, frontendAddr: frontendAddr, stopping: stopping}
	if opts.UIAddr != "" {
		// First: a UI address that is taken fails the start before the
		// server has started.
		if s.ui, err = startUI(opts.UIAddr, frontendAddr, opts.Namespace, opts.UICodec); err != nil {
			return nil, fmt.Errorf("temporal UI: %w", err)
		}
		s.uiAddr = s.ui.ln.Addr().String()
	}
	if err := srv.Start(); err != nil {
		if s.ui != nil {
			s.ui.stop()
		}
		return nil, fmt.Errorf("start temporal server: %w", err)
	}
	return s, nil
}

// FrontendAddr is the host:port of the gRPC frontend.
func (s *Server) FrontendAddr() string { return s.frontendAddr }

// UIAddr is the host:port of the Web UI, or empty.
func (s *Server) UIAddr() string { return s.uiAddr }

// Stop shuts the UI and then the server down.
func (s *Server) Stop() error {
	s.stopping.Store(true)
	if s.ui != nil {
		s.ui.stop()
	}
	return s.server.Stop()
}

func sqlConfig(opts Options) (*config.SQL, error) {
	conf := &config.SQL{PluginName: sqliteplugin.PluginName, ConnectAttributes: map[string]string{}}
	if opts.DatabaseFile == "" {
		conf.ConnectAttributes["mode"] = "memory"
		conf.ConnectAttributes["cache"] = "shared"
		conf.DatabaseName = "cp-" + strconv.FormatUint(rand.Uint64(), 36)
		return conf, nil
	}
	conf.DatabaseName = opts.DatabaseFile
	conf.ConnectAttributes["mode"] = "rwc"
	// WAL with synchronous=NORMAL: a crash of the process loses nothing that
	// was committed, and a commit is one append to the log with no fsync
	// (the log is synced at checkpoints). The plugin passes every attribute
	// that is not a URI parameter on as "PRAGMA <key>=<value>", so the keys
	// are the pragmas' own names: with a leading underscore SQLite ignored
	// them as unknown pragmas, and the file ran with a rollback journal and
	// synchronous=FULL (a journal file and several fsyncs a commit), which
	// cut the rate of workflow updates under a burst to less than half.
	conf.ConnectAttributes["journal_mode"] = "wal"
	conf.ConnectAttributes["synchronous"] = "normal"
	if _, err := os.Stat(opts.DatabaseFile); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(opts.DatabaseFile), 0o700); err != nil {
			return nil, fmt.Errorf("create temporal data dir: %w", err)
		}
		if err := sqliteschema.SetupSchema(conf); err != nil {
			return nil, fmt.Errorf("set up temporal schema in %s: %w", opts.DatabaseFile, err)
		}
	} else if err := forgetMembers(opts.DatabaseFile); err != nil {
		return nil, err
	}
	return conf, nil
}

// forgetMembers empties the persisted membership ring of a database file
// that a previous run used. That run is gone (the file belongs to one
// process), but when it was killed it could not leave the ring, and the new
// server would wait for its dead peers before serving.
func forgetMembers(file string) error {
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return fmt.Errorf("open %s: %w", file, err)
	}
	defer db.Close()
	if _, err := db.Exec("DELETE FROM cluster_membership"); err != nil {
		return fmt.Errorf("reset the membership ring in %s: %w", file, err)
	}
	return nil
}

// partitionBacklog reports whether the database file holds tasks in a task
// queue partition other than the first (their queue ids carry the name of
// the partition, "/_sys/<queue>/<n>"). Delivered tasks linger until the
// server collects them, so it can report a backlog that is already gone;
// that only keeps the default partitions one run longer.
func partitionBacklog(file string) (bool, error) {
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return false, fmt.Errorf("open %s: %w", file, err)
	}
	defer db.Close()
	var backlog bool
	err = db.QueryRow(`SELECT EXISTS (SELECT 1 FROM tasks WHERE instr(task_queue_id, CAST('/_sys/' AS BLOB)) > 0)
		OR EXISTS (SELECT 1 FROM tasks_v2 WHERE instr(task_queue_id, CAST('/_sys/' AS BLOB)) > 0)`).Scan(&backlog)
	if err != nil {
		return false, fmt.Errorf("read the task backlog in %s: %w", file, err)
	}
	return backlog, nil
}

func serverConfig(host string, port int, sqlConf *config.SQL) *config.Config {
	conf := &config.Config{}
	conf.Global.Membership = config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: "127.0.0.1"}
	conf.Persistence = config.Persistence{
		DefaultStore:     "sqlite",
		VisibilityStore:  "sqlite",
		NumHistoryShards: 1,
		DataStores:       map[string]config.DataStore{"sqlite": {SQL: sqlConf}},
	}
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	frontend := config.Service{RPC: config.RPC{GRPCPort: port, MembershipPort: freeport.MustGetFreePort(), BindOnIP: host}}
	internal := func() config.Service {
		return config.Service{RPC: config.RPC{
			GRPCPort:        freeport.MustGetFreePort(),
			MembershipPort:  freeport.MustGetFreePort(),
			BindOnLocalHost: true,
		}}
	}
	conf.Services = map[string]config.Service{
		"frontend": frontend,
		"history":  internal(),
		"matching": internal(),
		"worker":   internal(),
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return conf
}

// dynamicConfig is what the embedded server sets apart from the defaults.
//
// The search attributes are written to the database before the server
// starts, so its cache of them, empty at start, loads them on the first
// read: no forced refresh, which would read the cluster metadata from
// SQLite on every request that names a search attribute (each start,
// update and visibility record), on the one connection every write waits
// for.
//
// One process serves every task queue with one matching service and, in
// dev, one worker. With a single partition a task goes to the poller that
// waits for it; with the default four, a few pollers are spread over four
// partitions that forward tasks and polls to each other, and under a burst
// one update in ten to one in six waited over five seconds for a task that
// sat in a partition no poller was on. A file in which an earlier run (with
// four partitions) left tasks in the other partitions keeps four until they
// are delivered: pollers never read a partition beyond the count.
//
// The history service keeps each workflow's mutable state it touched in a
// cache of the host, up to 128,000 entries for an hour by default: with a
// workflow per tenant, the embedded server's memory grew with the tenants.
// cached bounds it as the worker's own cache is bounded.
func dynamicConfig(onePartition bool, cached int) dynamicconfig.StaticClient {
	dc := dynamicconfig.StaticClient{}
	if cached > 0 {
		dc[dynamicconfig.HistoryCacheHostLevelMaxSize.Key()] = cached
	}
	if onePartition {
		dc[dynamicconfig.MatchingNumTaskqueueReadPartitions.Key()] = 1
		dc[dynamicconfig.MatchingNumTaskqueueWritePartitions.Key()] = 1
	}
	return dc
}

func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port in %q", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return host, port, nil
}

func checkFree(addr string) error {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is not free (is another server running?): %w", addr, err)
	}
	return l.Close()
}
