package opsgate

import (
	"testing"

	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/intelliauth/controlplane/internal/operator"
	"github.com/intelliauth/controlplane/workflows"
)

func TestAnOperatorPatchesTheRetentionScheduleOnlyAndAsTheirCertificateSays(t *testing.T) {
	g := &Gateway{}
	if !forwarded["PatchSchedule"] || forwarded["DescribeSchedule"] {
		t.Fatal("PatchSchedule is a write, DescribeSchedule a read")
	}
	ok := &workflowservice.PatchScheduleRequest{ScheduleId: workflows.RetentionScheduleID, Identity: "someone else"}
	if id, err := g.Stamp(ok, "ops@example.test"); err != nil || id != workflows.RetentionScheduleID || ok.Identity != operator.IdentityPrefix+"ops@example.test" {
		t.Fatalf("stamp %q %v, identity %q", id, err, ok.Identity)
	}
	usage := &workflowservice.PatchScheduleRequest{ScheduleId: workflows.UsageScheduleID}
	if id, err := g.Stamp(usage, "ops@example.test"); err != nil || id != workflows.UsageScheduleID {
		t.Fatalf("the usage close schedule: %q %v", id, err)
	}
	other := &workflowservice.PatchScheduleRequest{ScheduleId: "another"}
	if _, err := g.Stamp(other, "ops@example.test"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("another schedule: %v", err)
	}
}
