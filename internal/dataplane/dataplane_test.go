package dataplane

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
)

func TestAFailedStepTellsMembersNothingOfTheDataPlanesInternals(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"a fault drill is named", ErrInjected{Step: domain.StepKeys}, "fault drill: step keys failed (CP_FAULTS)"},
		{"a timeout says so", fmt.Errorf("insert route: %w", context.DeadlineExceeded), "the data plane did not answer in time"},
		{"a database error is not shown", errors.New(`insert route: ERROR: duplicate key value violates unique constraint "routes_pkey" (SQLSTATE=23505)`),
			"the data plane refused the step; operators find the cause in the worker log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PublicError(tc.err); got != tc.want {
				t.Fatalf("PublicError = %q, want %q", got, tc.want)
			}
		})
	}
}
