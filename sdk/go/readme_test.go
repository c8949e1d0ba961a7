package intelliauth_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's Go SDK example is Example_ephemeralCITenant's body, which
// TestAServiceAccountTokenMakesAnEphemeralCITenant runs against dev.
func TestTheREADMEShowsTheExampleThatRuns(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\n## Go SDK\n.*?```go\n(.*?)```\n").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no Go example under ## Go SDK")
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	body := regexp.MustCompile("(?s)\nfunc Example_ephemeralCITenant\\(\\) \\{\n(.*?)\n\\}\n").FindSubmatch(src)
	if body == nil {
		t.Fatal("example_test.go has no Example_ephemeralCITenant")
	}
	var lines []string
	for _, l := range strings.Split(string(body[1]), "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	if want := strings.Join(lines, "\n") + "\n"; string(m[1]) != want {
		t.Fatalf("README.md's Go SDK example is not Example_ephemeralCITenant's body:\n%s\nwant:\n%s", m[1], want)
	}
}
