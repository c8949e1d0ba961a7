package workflows

import (
	"slices"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
)

// TestARunGoesOnWithoutTheStepsALaterRevisionAdded is how a step added to
// the lifecycle table reaches only the runs that know it.
func TestARunGoesOnWithoutTheStepsALaterRevisionAdded(t *testing.T) {
	stepsSince[domain.StepKeys] = RevisionCurrent + 1
	defer delete(stepsSince, domain.StepKeys)
	list := domain.MustTransition(domain.OpProvision).StepsFrom("")
	if got := (revision{n: RevisionCurrent}).steps(list); !slices.Equal(got, []domain.Step{domain.StepSchema, domain.StepRoute}) {
		t.Errorf("a run of the current revision runs %v", got)
	}
	if got := (revision{n: RevisionCurrent + 1}).steps(list); !slices.Equal(got, list) {
		t.Errorf("a run of the revision that added keys runs %v, want %v", got, list)
	}
}
