// Package archtest checks the shape of the module against what
// docs/architecture.md says of it. It has no code of its own.
package archtest

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/intelliauth/controlplane"

// TestEachPackageImportsOnlyWhatTheArchitectureTableAllows reads the
// "Packages" table of docs/architecture.md and each package's imports
// (from `go list`, its non-test files), and fails on every import of one
// of our packages that the importer's row does not list, on a package
// without a row, and on a row that names no package: the table and the
// code cannot drift apart.
func TestEachPackageImportsOnlyWhatTheArchitectureTableAllows(t *testing.T) {
	root := moduleRoot(t)
	rows, err := readPackagesTable(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range violations(rows, listPackages(t, root)) {
		t.Error(v)
	}
}

// TestAnImportTheTableDoesNotListIsAViolation reads a table in which
// `api` may import only `internal/domain`, and checks that api's import
// of `activities` is refused, by name, and so are a package without a row
// and a row without a package.
func TestAnImportTheTableDoesNotListIsAViolation(t *testing.T) {
	doc := "# A\n\n## Packages\n\nText.\n\n| package | role | may import |\n|---|---|---|\n" +
		"| `internal/domain` | the vocabulary | nothing of ours |\n" +
		"| `api` | HTTP | `internal/domain` (ids) |\n" +
		"| `cmd/controlplane`, `internal/gone` | wiring | everything |\n\n" +
		"## Next\n\n| package | role | may import |\n|---|---|---|\n| `activities` | not this table's | nothing |\n"
	path := filepath.Join(t.TempDir(), "architecture.md")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	rows, err := readPackagesTable(path)
	if err != nil {
		t.Fatal(err)
	}
	pkgs := map[string]pkg{
		"internal/domain":  {hasCode: true},
		"api":              {hasCode: true, imports: []string{"internal/domain", "activities"}},
		"activities":       {hasCode: true, imports: []string{"internal/domain"}},
		"cmd/controlplane": {hasCode: true, imports: []string{"api", "activities", "internal/domain"}},
		"integration":      {imports: []string{"activities"}},
	}
	got := violations(rows, pkgs)
	want := []string{
		"docs/architecture.md's Packages table names internal/gone, which is not a package of the module",
		"activities has no row in docs/architecture.md's Packages table: add one that says what it may import",
		"api imports activities, which its row in docs/architecture.md's Packages table does not allow (may import: internal/domain)",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// violations lists what breaks the table: a name in it that is no
// package, a package with code and no row, an import its row does not
// list. Packages of tests only (integration, deploy, this one) need no
// row.
func violations(rows []row, pkgs map[string]pkg) []string {
	var out []string
	for _, r := range rows {
		for _, name := range append(slices.Clone(r.packages), r.mayImport...) {
			if _, ok := pkgs[name]; !ok {
				out = append(out, fmt.Sprintf("docs/architecture.md's Packages table names %s, which is not a package of the module", name))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(pkgs)) {
		p := pkgs[name]
		if !p.hasCode {
			continue
		}
		r, ok := rowOf(rows, name)
		if !ok {
			out = append(out, fmt.Sprintf("%s has no row in docs/architecture.md's Packages table: add one that says what it may import", name))
			continue
		}
		for _, imp := range p.imports {
			if !r.everything && !slices.Contains(r.mayImport, imp) {
				out = append(out, fmt.Sprintf("%s imports %s, which its row in docs/architecture.md's Packages table does not allow (may import: %s)",
					name, imp, r.allowed()))
			}
		}
	}
	return out
}

// row is one row of the Packages table: the packages it is about, and
// what they may import (everything, or the packages listed).
type row struct {
	packages   []string
	mayImport  []string
	everything bool
}

func (r row) allowed() string {
	switch {
	case r.everything:
		return "everything"
	case len(r.mayImport) == 0:
		return "nothing of ours"
	}
	return strings.Join(r.mayImport, ", ")
}

func rowOf(rows []row, pkg string) (row, bool) {
	for _, r := range rows {
		if slices.Contains(r.packages, pkg) {
			return r, true
		}
	}
	return row{}, false
}

var backticked = regexp.MustCompile("`([^`]+)`")

// readPackagesTable reads the first table after the "## Packages" heading.
// A cell of the "package" column names its packages in backticks, by their
// path in the module; a cell of the "may import" column names the packages
// they may import the same way, or says "everything". Anything else in a
// cell (a note in parentheses, "nothing of ours", "—") is for readers.
func readPackagesTable(path string) ([]row, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []row
	section, pkgCol, importCol := false, -1, -1
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "## "):
			if section && pkgCol >= 0 {
				return rows, nil
			}
			section = line == "## Packages"
			continue
		case !section:
			continue
		case !strings.HasPrefix(line, "|"):
			if pkgCol >= 0 {
				return rows, nil // the table ended
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if pkgCol < 0 {
			pkgCol, importCol = slices.Index(cells, "package"), slices.Index(cells, "may import")
			if pkgCol < 0 || importCol < 0 {
				return nil, fmt.Errorf("%s: the Packages table's header %q lacks a \"package\" or a \"may import\" column", path, line)
			}
			continue
		}
		if strings.Trim(line, "|-: ") == "" {
			continue // the header's separator
		}
		if len(cells) <= max(pkgCol, importCol) {
			return nil, fmt.Errorf("%s: a row of the Packages table has too few cells: %q", path, line)
		}
		r := row{packages: names(cells[pkgCol]), mayImport: names(cells[importCol]), everything: cells[importCol] == "everything"}
		if len(r.packages) == 0 {
			return nil, fmt.Errorf("%s: a row of the Packages table names no package in backticks: %q", path, line)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if pkgCol < 0 {
		return nil, fmt.Errorf("%s: no table under \"## Packages\"", path)
	}
	return rows, nil
}

// names are the backticked names of a cell.
func names(cell string) []string {
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// pkg is one of the module's packages as `go list` shows it: whether it
// has code besides tests, and which of our packages its code imports.
type pkg struct {
	hasCode bool
	imports []string
}

// listPackages lists the module's packages by their path in the module
// ("" is the root).
func listPackages(t *testing.T, root string) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}}|{{len .GoFiles}}|{{join .Imports " "}}|{{with .Error}}{{.Err}}{{end}}`, "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]pkg{}
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		f := strings.SplitN(strings.TrimSpace(line), "|", 4)
		if len(f) != 4 {
			t.Fatalf("go list printed %q", line)
		}
		if f[3] != "" {
			t.Errorf("go list: %s: %s", f[0], f[3])
		}
		p := pkg{hasCode: f[1] != "0"}
		for imp := range strings.FieldsSeq(f[2]) {
			if rel, ok := inModule(imp); ok {
				p.imports = append(p.imports, rel)
			}
		}
		rel, _ := inModule(f[0])
		pkgs[rel] = p
	}
	return pkgs
}

// inModule gives an import path's path in the module, if it is ours.
func inModule(path string) (string, bool) {
	if path == module {
		return "", true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

// moduleRoot is the folder of the module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not in a module")
	}
	return filepath.Dir(gomod)
}
