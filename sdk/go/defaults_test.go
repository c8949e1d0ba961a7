package intelliauth_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// oapiCodegen is the generator the SDK's client comes from.
const oapiCodegen = "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2"

// TestTheContractGeneratesCompilingCodeWithTheGeneratorsDefaults runs
// oapi-codegen on the contract with nothing but a package name (its
// defaults: models, a client, an Echo server and the embedded document)
// and builds the result: anyone may generate their own client or server
// from the document as it is, not only the SDK's configuration.
func TestTheContractGeneratesCompilingCodeWithTheGeneratorsDefaults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/generated\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	contract, err := filepath.Abs("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "api.gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	gen := exec.Command("go", "run", oapiCodegen, "-package", "generated", contract)
	gen.Dir, gen.Stdout = dir, out
	var msg strings.Builder
	gen.Stderr = &msg
	if err := gen.Run(); err != nil {
		t.Fatalf("oapi-codegen with its defaults: %v\n%s", err, msg.String())
	}
	out.Close()
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "./..."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, msg)
		}
	}
}
