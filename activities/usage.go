package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/intelliauth/controlplane/internal/store"
)

// UsageReporter sends a closed day's billable usage to the billing engine; nil when billing is off.
type UsageReporter interface {
	ReportClosedDay(ctx context.Context, day time.Time) error
}

// UsageDaysInput asks for the days the close has to close.
type UsageDaysInput struct {
	// Limit is the most days answered, the oldest first.
	Limit int
}

// UsageDaysToClose answers the days not closed yet up to yesterday
// (store.UsageDaysToClose).
func (a *Activities) UsageDaysToClose(ctx context.Context, in UsageDaysInput) ([]time.Time, error) {
	return store.UsageDaysToClose(ctx, a.DB, max(in.Limit, 1))
}

// UsageDayInput is one day's close, or its report.
type UsageDayInput struct {
	// Day is the UTC day's midnight.
	Day time.Time
	// PageSize is how many organisations one transaction closes
	// (DefaultUsagePage when 0).
	PageSize int
}

// DefaultUsagePage is how many organisations one transaction of a close
// writes.
const DefaultUsagePage = 500

// UsageCloseProgress is how far a day's close got: the activity's
// heartbeat, from which a retried attempt resumes, and its result.
type UsageCloseProgress struct {
	// After is the last organisation closed (they go in id order).
	After string
	// Orgs is how many organisations this close wrote or found written.
	Orgs int
}

// CloseUsageDay closes the day for every organisation that existed that
// day, a page per transaction in id order, heartbeating after each, then
// marks the day closed. A retried attempt resumes after the last page
// its heartbeat names; a page written again (an attempt that stopped
// before its heartbeat) leaves the rows already written as they are.
func (a *Activities) CloseUsageDay(ctx context.Context, in UsageDayInput) (UsageCloseProgress, error) {
	var p UsageCloseProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
			p = UsageCloseProgress{}
		}
	}
	limit := in.PageSize
	if limit <= 0 {
		limit = DefaultUsagePage
	}
	for {
		page, err := store.CloseUsagePage(ctx, a.DB, store.CloseUsageInput{Day: in.Day, After: p.After, Limit: limit})
		if err != nil {
			return p, err
		}
		if page.Orgs > 0 {
			p.After = page.Last
			p.Orgs += page.Orgs
		}
		activity.RecordHeartbeat(ctx, p)
		if !page.More {
			break
		}
	}
	if err := store.MarkUsageDayClosed(ctx, a.DB, in.Day, p.Orgs); err != nil {
		return p, err
	}
	return p, nil
}

// ReportUsageDay hands the closed day to the billing engine, when there
// is one; the reporter is idempotent per day (a retry reports the same
// day again).
func (a *Activities) ReportUsageDay(ctx context.Context, in UsageDayInput) error {
	if a.UsageReporter == nil {
		return nil
	}
	return a.UsageReporter.ReportClosedDay(ctx, store.UTCDay(in.Day))
}
