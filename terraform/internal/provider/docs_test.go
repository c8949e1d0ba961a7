package provider

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/intelliauth/controlplane/terraform/internal/docsgen"
)

// TestDocsAreUpToDate renders the docs as `go run ./tools/gendocs` does and
// compares them with the committed docs/.
func TestDocsAreUpToDate(t *testing.T) {
	moduleDir := filepath.Join(env.repoRoot, "terraform")
	out := t.TempDir()
	if err := docsgen.Generate(env.tofu, providerBinary(t), moduleDir, out); err != nil {
		t.Fatal(err)
	}
	rendered := files(t, out)
	committed := files(t, filepath.Join(moduleDir, "docs"))
	if len(rendered) == 0 {
		t.Fatal("tfplugindocs rendered nothing")
	}
	for name, want := range rendered {
		if got, ok := committed[name]; !ok {
			t.Errorf("docs/%s is missing", name)
		} else if got != want {
			t.Errorf("docs/%s differs from what the schema and examples render", name)
		}
	}
	for name := range committed {
		if _, ok := rendered[name]; !ok {
			t.Errorf("docs/%s is not rendered from anything", name)
		}
	}
	if t.Failed() {
		t.Log("run `go run ./tools/gendocs` in terraform/ and commit docs/")
	}
}

func files(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
