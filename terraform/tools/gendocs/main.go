// Command gendocs renders docs/ from the provider's schema and examples/:
//
//	go run ./tools/gendocs
//
// It builds the provider, gets OpenTofu from scripts/tofu.sh, and runs
// tfplugindocs offline (internal/docsgen). A test checks docs/ is what it
// renders.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/intelliauth/controlplane/terraform/internal/docsgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run() error {
	moduleDir, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(moduleDir, "scripts", "tofu.sh")); err != nil {
		return fmt.Errorf("run it from the terraform module's directory: %w", err)
	}
	tofu, err := exec.Command("bash", filepath.Join(moduleDir, "scripts", "tofu.sh")).Output()
	if err != nil {
		return fmt.Errorf("scripts/tofu.sh: %w", err)
	}
	bin, err := os.MkdirTemp("", "tf-provider-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "terraform-provider-intelliauth"), ".").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return docsgen.Generate(strings.TrimSpace(string(tofu)), bin, moduleDir, filepath.Join(moduleDir, "docs"))
}
