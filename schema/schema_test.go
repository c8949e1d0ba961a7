package schema

import (
	"io/fs"
	"strings"
	"testing"
)

// Branches that each add "the next" migration collide on its number when
// merged; bun then refuses every migration, so every start fails.
func TestEveryMigrationHasANumberOfItsOwnAndBothDirections(t *testing.T) {
	if _, err := migrator(nil); err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(files, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	ups, downs := map[string]bool{}, map[string]bool{}
	for _, n := range names {
		if base, ok := strings.CutSuffix(n, ".up.sql"); ok {
			ups[base] = true
		} else if base, ok := strings.CutSuffix(n, ".down.sql"); ok {
			downs[base] = true
		}
	}
	for base := range ups {
		if !downs[base] {
			t.Errorf("%s has no down migration", base)
		}
	}
	for base := range downs {
		if !ups[base] {
			t.Errorf("%s has no up migration", base)
		}
	}
}
