package archtest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
)

// auditFamilies are the families of the audit trail's actions.
var auditFamilies = []string{"audit_stream", "billing", "invitation", "member", "organization", "service_account", "session", "tenant", "user"}

// auditActionLiteral is a quoted family.action of those families, as code
// writes an event's action.
var auditActionLiteral = regexp.MustCompile(`"((?:` + strings.Join(auditFamilies, "|") + `)\.[a-z_]+)"`)

// TestEveryAuditActionTheCodeWritesIsOneAStreamCanName reads every Go file
// of the module but tests, and fails on a quoted action of an audit
// family (tenant.suspended, member.added, …) that domain.AuditActions
// does not list: a stream's actions filter is checked against that list,
// so an action missing from it could never be asked for. Policy actions
// (tenant.write) are not audit actions.
func TestEveryAuditActionTheCodeWritesIsOneAStreamCanName(t *testing.T) {
	root := moduleRoot(t)
	if got := domain.AuditFamilies(); !slices.Equal(got, auditFamilies) {
		t.Errorf("the audit families are %v, want %v: a new family is added here too", got, auditFamilies)
	}
	known := domain.AuditActions()
	policy := map[string]bool{}
	for _, a := range domain.Actions() {
		policy[string(a)] = true
	}
	found := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git" || d.Name() == "testdata" || path == filepath.Join(root, "integration")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range auditActionLiteral.FindAllStringSubmatch(string(b), -1) {
			found++
			if !policy[m[1]] && !slices.Contains(known, m[1]) && m[1] != domain.ActionStreamTest {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s writes the audit action %s, which domain.AuditActions does not list: add it there", rel, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 50 {
		t.Fatalf("only %d audit actions found in the code: the pattern no longer matches how events are written", found)
	}
}
