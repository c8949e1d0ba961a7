package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
)

// Usage metering's daily close (SPEC §10; docs/billing.md) is a Temporal
// Schedule that starts UsageCloseWorkflow after each UTC midnight; each
// run closes every day not closed yet up to yesterday, every
// organisation's figures written once (activities.CloseUsageDay), then
// hands each closed day to the billing engine (activities.ReportUsageDay).

// UsageCloseWorkflowType is the close workflow's type name.
const UsageCloseWorkflowType = "UsageCloseWorkflow"

// UsageScheduleID is the Schedule that starts the close runs; each run's
// workflow id is UsageWorkflowID followed by the time it was due.
const (
	UsageScheduleID = "usage-close"
	UsageWorkflowID = "usage-close"
)

// The Schedule's timing: daily at 00:15 UTC (after store.UsageCloseDelay,
// when every API process has added the day's request counts), a run
// skipped while the last still runs, and a run missed while Temporal was
// down taken up to a day late (a later run closes the days missed
// anyway).
const (
	usageEvery         = 24 * time.Hour
	usageOffset        = 15 * time.Minute
	usageCatchupWindow = 24 * time.Hour
)

// A day's close is one activity: an attempt runs at most usageAttempt,
// is given to another worker when it stops heartbeating for
// usageHeartbeat (it resumes after the last page it heartbeated; a page
// written twice is written once), and gives up within usageDayClose.
const (
	usageAttempt   = time.Hour
	usageHeartbeat = 30 * time.Second
	usageDayClose  = 6 * time.Hour
)

// UsageMaxDays is the most days one run closes (the oldest first), after
// a long outage; the next run goes on.
const UsageMaxDays = 60

// UsageParams is a close run's input, as the Schedule gives it.
type UsageParams struct {
	// Revision is the workflow code the Schedule was written for
	// (UsageRevisionCurrent); a worker refuses one it does not know.
	Revision int
	// PageSize is how many organisations one transaction closes
	// (activities.DefaultUsagePage when 0).
	PageSize int
}

func (p UsageParams) validate() error {
	if p.PageSize < 0 {
		return temporal.NewNonRetryableApplicationError("invalid usage close parameters: PageSize must not be negative", "INVALID_PARAMS", nil)
	}
	return nil
}
