package integration

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A whole run of this package (`go test ./...`, no -run, no -bench) is
// split into shards, each a process of this test binary with its own
// harness (its own Postgres cluster and Temporal server) and a share of
// the tests: most of these tests wait (for sagas, timers, browsers, other
// processes; a whole run in one process kept two cores about a third
// busy), so three shards end sooner than one process, and share nothing
// but the machine. CP_TEST_SHARDS sets how many (1: none).
const (
	envShards = "CP_TEST_SHARDS"
	// envShard marks a shard's process: its index, or "list" for the
	// process that only lists the tests.
	envShard = "CP_TEST_SHARD"
	// envSeen names the file where a shard writes the operations of the
	// API contract its tests validated, for the whole run's check.
	envSeen = "CP_TEST_SHARD_SEEN"
	// envBinary is the controlplane binary the parent built for every
	// shard (binary()), so it is linked once a run.
	envBinary = "CP_TEST_CONTROLPLANE_BINARY"
)

// defaultShards is the number of shards of a whole run.
const defaultShards = 3

// shardCount is how many shards this run is split into: 1 (not split) for
// a shard itself, a run of chosen tests or benchmarks, or a listing.
func shardCount() int {
	if os.Getenv(envShard) != "" {
		return 1
	}
	for _, name := range []string{"test.run", "test.bench", "test.list", "test.fuzz", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return 1
		}
	}
	n := defaultShards
	if v := os.Getenv(envShards); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "%s=%q: a number of 1 or more\n", envShards, v)
			os.Exit(2)
		}
	}
	return n
}

// testWeights are the seconds a test took in a whole run
// (testdata/test-seconds.txt, "name seconds" per line), to balance the
// shards; a test not listed counts as unknownWeight.
func testWeights() map[string]float64 {
	w := map[string]float64{}
	f, err := os.Open(filepath.Join("testdata", "test-seconds.txt"))
	if err != nil {
		return w
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, secs, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if s, err := strconv.ParseFloat(secs, 64); ok && err == nil {
			w[name] = s
		}
	}
	return w
}

const unknownWeight = 10

// partition deals the tests to n shards, the longest first, each to the
// shard with the least time so far.
func partition(tests []string, n int, weights map[string]float64) [][]string {
	weight := func(t string) float64 {
		if s, ok := weights[t]; ok {
			return s
		}
		return unknownWeight
	}
	sorted := slices.Clone(tests)
	slices.SortFunc(sorted, func(a, b string) int {
		return cmp.Or(cmp.Compare(weight(b), weight(a)), strings.Compare(a, b))
	})
	shards := make([][]string, n)
	load := make([]float64, n)
	for _, t := range sorted {
		i := slices.Index(load, slices.Min(load))
		shards[i] = append(shards[i], t)
		load[i] += weight(t)
	}
	return shards
}

// runShards runs the package's tests in n shards at once and returns the
// run's exit code. Each shard's output is printed whole when it ends.
func runShards(n int) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "shards:", err)
		return 1
	}
	tests, err := listTests(self)
	if err != nil {
		fmt.Fprintln(os.Stderr, "shards: list the tests:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "cp-shards-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "shards:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "controlplane")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/controlplane").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "shards: go build: %v\n%s", err, out)
		return 1
	}
	shards := partition(tests, n, testWeights())
	var wg sync.WaitGroup
	var mu sync.Mutex
	code := 0
	for i, names := range shards {
		if len(names) == 0 {
			continue
		}
		wg.Go(func() {
			quoted := make([]string, len(names))
			for j, name := range names {
				quoted[j] = regexp.QuoteMeta(name)
			}
			cmd := exec.Command(self, append(slices.Clone(os.Args[1:]), "-test.run=^("+strings.Join(quoted, "|")+")$")...)
			cmd.Env = append(os.Environ(), envShard+"="+strconv.Itoa(i), envSeen+"="+filepath.Join(dir, fmt.Sprintf("seen-%d.json", i)), envBinary+"="+bin)
			// A shard ends with this process, however it ends.
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			err := cmd.Run()
			mu.Lock()
			defer mu.Unlock()
			fmt.Printf("=== shard %d of %d: %d tests in %s\n", i+1, n, len(names), time.Since(start).Round(time.Second))
			os.Stdout.Write(out.Bytes())
			if err != nil {
				fmt.Printf("--- FAIL: shard %d of %d: %v\n", i+1, n, err)
				code = 1
			}
		})
	}
	wg.Wait()
	if code == 0 {
		if err := mergedCoverage(dir); err != nil {
			fmt.Println("FAIL:", err)
			code = 1
		}
	}
	return code
}

// listTests lists the package's tests, as `-test.list` prints them, in a
// process that starts no harness.
func listTests(self string) ([]string, error) {
	cmd := exec.Command(self, "-test.list=.")
	cmd.Env = append(os.Environ(), envShard+"=list")
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var tests []string
	for line := range strings.Lines(string(out)) {
		if name := strings.TrimSpace(line); strings.HasPrefix(name, "Test") {
			tests = append(tests, name)
		}
	}
	if len(tests) == 0 {
		return nil, errors.New("no tests listed")
	}
	return tests, nil
}

// shardSeen is what a shard writes for the whole run's contract check.
type shardSeen struct {
	Documented []string `json:"documented"`
	Seen       []string `json:"seen"`
}

// writeSeen writes, in a shard, the operations its tests validated (a
// harness check: it runs when the shard's tests passed).
func (c *contract) writeSeen() error {
	path := os.Getenv(envSeen)
	if path == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := shardSeen{Documented: c.operations()}
	for id, n := range c.seen {
		if n > 0 {
			s.Seen = append(s.Seen, id)
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// mergedCoverage fails a whole run in which some documented operation was
// validated by no shard's tests, as contract.coverage does in one process.
func mergedCoverage(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "seen-*.json"))
	if err != nil {
		return err
	}
	documented, seen := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var s shardSeen
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, id := range s.Documented {
			documented[id] = true
		}
		for _, id := range s.Seen {
			seen[id] = true
		}
	}
	if len(documented) == 0 {
		return errors.New("contract: no shard loaded the API's document")
	}
	return uncovered(slices.Collect(maps.Keys(documented)), func(id string) bool { return seen[id] })
}

func TestShardsHoldEveryTestOnceWithTheLongestSpreadFirst(t *testing.T) {
	t.Parallel()
	tests := []string{"TestA", "TestB", "TestC", "TestD", "TestE"}
	weights := map[string]float64{"TestA": 100, "TestB": 60, "TestC": 50, "TestD": 5}
	shards := partition(tests, 2, weights)
	// A, E (not listed: 10 s) and D make 115 s; B and C 110 s.
	want := [][]string{{"TestA", "TestE", "TestD"}, {"TestB", "TestC"}}
	if !reflect.DeepEqual(shards, want) {
		t.Fatalf("shards %v, want %v", shards, want)
	}
	var all []string
	for _, s := range partition(tests, 3, nil) {
		all = append(all, s...)
	}
	slices.Sort(all)
	if !slices.Equal(all, tests) {
		t.Fatalf("three shards hold %v, want each of %v once", all, tests)
	}
}
