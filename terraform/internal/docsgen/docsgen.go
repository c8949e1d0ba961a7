// Package docsgen renders the provider's documentation (docs/) with
// tfplugindocs from its schema as OpenTofu reports it and from examples/.
// It runs offline: the schema comes from `tofu providers schema -json`
// against the built provider (dev_overrides, no registry), handed to
// tfplugindocs with --providers-schema so that it neither builds the
// provider nor downloads Terraform.
package docsgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ProviderName is the provider's short name, as configurations use it.
const ProviderName = "intelliauth"

// source is the provider's address as a configuration names it; OpenTofu
// reports its schema under registry.opentofu.org/<source>.
const source = "intelliauth/intelliauth"

// Generate renders the docs of the provider in moduleDir (the terraform
// module: examples/ is read from it) into outDir. tofu is the OpenTofu CLI
// and providerDir a directory holding the built
// terraform-provider-intelliauth.
func Generate(tofu, providerDir, moduleDir, outDir string) error {
	work, err := os.MkdirTemp("", "tf-docs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	rc := filepath.Join(work, "tofu.rc")
	if err := os.WriteFile(rc, fmt.Appendf(nil, "provider_installation {\n  dev_overrides {\n    %q = %q\n  }\n  direct {}\n}\n", source, providerDir), 0o600); err != nil {
		return err
	}
	config := fmt.Sprintf("terraform {\n  required_providers {\n    %s = {\n      source = %q\n    }\n  }\n}\n", ProviderName, source)
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(config), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(tofu, "providers", "schema", "-json")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc, "TF_IN_AUTOMATION=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("tofu providers schema -json: %v\n%s", err, stderr.String())
	}

	// tfplugindocs finds the schema under the provider's short name.
	var schemas map[string]json.RawMessage
	if err := json.Unmarshal(out, &schemas); err != nil {
		return fmt.Errorf("tofu providers schema -json: %w", err)
	}
	var byAddress map[string]json.RawMessage
	if err := json.Unmarshal(schemas["provider_schemas"], &byAddress); err != nil {
		return fmt.Errorf("tofu providers schema -json: provider_schemas: %w", err)
	}
	schema, ok := byAddress["registry.opentofu.org/"+source]
	if !ok {
		return fmt.Errorf("tofu providers schema -json has no schema for %s: %s", source, strings.Join(keys(byAddress), ", "))
	}
	schemas["provider_schemas"], _ = json.Marshal(map[string]json.RawMessage{ProviderName: schema})
	schemaFile := filepath.Join(work, "schema.json")
	b, _ := json.Marshal(schemas)
	if err := os.WriteFile(schemaFile, b, 0o600); err != nil {
		return err
	}

	// tfplugindocs takes the output directory relative to the provider's.
	rel, err := filepath.Rel(moduleDir, outDir)
	if err != nil {
		return err
	}
	gen := exec.Command("go", "tool", "tfplugindocs", "generate",
		"--provider-dir", moduleDir,
		"--provider-name", ProviderName,
		"--rendered-provider-name", "IntelliAuth",
		"--providers-schema", schemaFile,
		"--rendered-website-dir", rel,
		"--website-temp-dir", filepath.Join(work, "website"))
	gen.Dir = moduleDir
	if out, err := gen.CombinedOutput(); err != nil {
		return fmt.Errorf("tfplugindocs generate: %v\n%s", err, out)
	}
	return nil
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
