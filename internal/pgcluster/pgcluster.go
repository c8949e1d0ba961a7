// Package pgcluster runs a private PostgreSQL cluster from the Postgres
// binaries installed on the machine, for `controlplane dev` when no
// CP_DATABASE_URL is given and for the integration test harness.
package pgcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
)

// ErrNoBinaries is returned when no Postgres server binaries are found.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries (initdb, postgres) found on PATH or under /usr/lib/postgresql/*/bin: " +
	"install them (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) or set CP_DATABASE_URL")

// Cluster is a running private Postgres server.
type Cluster struct {
	dir  string
	port int
	bin  string
	cred *syscall.Credential
	cmd  *exec.Cmd
	done chan error
}

// Start initialises dir as a cluster when it holds none, and starts the
// server on a free loopback port. The server is a child process that dies
// with this one; Stop shuts it down cleanly.
func Start(ctx context.Context, dir string) (*Cluster, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	cred, err := credential(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := initdb(ctx, bin, dir, cred); err != nil {
			return nil, err
		}
	}

	WaitForExit(dir)
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, port: port, bin: bin, cred: cred}
	if err := c.launch(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// StartAgain starts a stopped server again on the same port, as when an
// operator restarts the database under its clients.
func (c *Cluster) StartAgain(ctx context.Context) error {
	return c.launch(ctx)
}

// launch starts the server on the cluster's port and waits until it
// accepts connections.
func (c *Cluster) launch(ctx context.Context) error {
	logFile, err := os.OpenFile(filepath.Join(c.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open postgres log: %w", err)
	}
	if c.cred != nil {
		_ = logFile.Chown(int(c.cred.Uid), int(c.cred.Gid))
	}
	cmd := exec.Command(filepath.Join(c.bin, "postgres"),
		"-D", c.dir,
		"-p", strconv.Itoa(c.port),
		"-h", "127.0.0.1",
		"-k", c.dir, // the socket lives in the data dir, not in /var/run
		"-c", "fsync=on",
		"-c", "max_connections=200",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Fast shutdown when this process dies, even from SIGKILL: the next
	// start finds a clean cluster.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT, Credential: c.cred}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	c.cmd, c.done = cmd, make(chan error, 1)
	go func(done chan error) {
		done <- cmd.Wait()
		logFile.Close()
	}(c.done)
	if err := c.waitReady(ctx); err != nil {
		_ = c.Stop()
		return err
	}
	return nil
}

// URL returns the connection URL of database db on the cluster.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// CreateDatabase creates db when it does not exist.
func (c *Cluster) CreateDatabase(ctx context.Context, db string) error {
	return CreateDatabase(ctx, c.URL("postgres"), db)
}

// Stop shuts the server down (fast shutdown) and waits for it to exit.
func (c *Cluster) Stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return errors.New("postgres did not stop within 30s and was killed")
	}
}

func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(c.URL("postgres")), pgdriver.WithTimeout(2*time.Second)))
		err := db.PingContext(ctx)
		db.Close()
		if err == nil {
			return nil
		}
		select {
		case err := <-c.done:
			return fmt.Errorf("postgres exited at start (%v); see %s", err, filepath.Join(c.dir, "server.log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after 60s; see %s", filepath.Join(c.dir, "server.log"))
		}
	}
}

// CreateDatabase creates db on the server at adminURL when it does not exist.
func CreateDatabase(ctx context.Context, adminURL, db string) error {
	conn := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(adminURL)))
	defer conn.Close()
	var exists bool
	if err := conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", db, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(db)); err != nil {
		var pgErr pgdriver.Error
		if errors.As(err, &pgErr) && pgErr.Field('C') == "42P04" { // created meanwhile
			return nil
		}
		return fmt.Errorf("create database %s: %w", db, err)
	}
	return nil
}

// DropDatabase drops db, closing its connections.
func DropDatabase(ctx context.Context, adminURL, db string) error {
	conn := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(adminURL)))
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(db)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", db, err)
	}
	return nil
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// FindBinaries returns the directory holding initdb and postgres: the one
// on PATH, else the newest under /usr/lib/postgresql/*/bin.
func FindBinaries() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(found, func(i, j int) bool { return version(found[i]) > version(found[j]) })
	dirs = append(dirs, found...)
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// credential returns who runs the server: Postgres refuses to run as root,
// so as root the cluster belongs to the "postgres" system user (created by
// every Postgres package), which must be able to reach dir.
func credential(dir string) (*syscall.Credential, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create postgres dir: %w", err)
	}
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, the private Postgres cluster needs the 'postgres' system user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("chown %s: %w", dir, err)
	}
	// Every parent must be traversable by that user.
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, st.Mode().Perm()|0o001); err != nil {
				return nil, fmt.Errorf("make %s traversable for the postgres user: %w", p, err)
			}
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func initdb(ctx context.Context, bin, dir string, cred *syscall.Credential) error {
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", dir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb %s: %w: %s", dir, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// WaitForExit gives a server left by a killed process (it got the
// parent-death signal and is shutting down) up to 30 s to exit, so a new
// one does not find the data dir locked and nobody removes the dir while it
// still writes its shutdown checkpoint.
func WaitForExit(dir string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
		if err != nil {
			return
		}
		first, _, _ := strings.Cut(string(b), "\n")
		pid, err := strconv.Atoi(strings.TrimSpace(first))
		if err != nil || syscall.Kill(pid, 0) != nil {
			return // stale: postgres itself cleans it up
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// TestDatabase is a fresh database for a package's tests, named with the
// prefix: on the server of CP_TEST_DATABASE_URL when it is set, else on a
// private cluster of the local binaries in a temporary directory. stop
// drops the database and stops the cluster.
func TestDatabase(ctx context.Context, prefix string) (url string, stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	admin := os.Getenv("CP_TEST_DATABASE_URL")
	if admin == "" {
		dir, err := os.MkdirTemp("", "cp-"+prefix+"-pg-")
		if err != nil {
			return "", nil, err
		}
		stops = append(stops, func() { os.RemoveAll(dir) })
		pg, err := Start(ctx, dir)
		if err != nil {
			return "", nil, fmt.Errorf("private postgres cluster: %w", err)
		}
		stops = append(stops, func() { _ = pg.Stop() })
		admin = pg.URL("postgres")
	}
	name := "cp_" + prefix + "_test_" + strings.ToLower(rand.Text()[:10])
	if err := CreateDatabase(ctx, admin, name); err != nil {
		return "", nil, err
	}
	stops = append(stops, func() { _ = DropDatabase(context.Background(), admin, name) })
	u, err := neturl.Parse(admin)
	if err != nil {
		return "", nil, fmt.Errorf("CP_TEST_DATABASE_URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), stop, nil
}
