package billing

import (
	"context"
	"time"

	"github.com/intelliauth/controlplane/internal/store"
)

// reportPage is how many organisation-days one read of the day's
// unreported usage answers.
const reportPage = 200

// ReportClosedDay reports a closed day's tenant hours (the day's
// tenant_hours_total, as the usage API shows it) of every organisation
// with a Stripe customer, one meter event each, and marks each one
// reported once Stripe has taken it: the daily close calls it after the
// day is closed (activities.UsageReporter). A retry sends only what was
// not marked, and a day marked but lost on the way back is sent again
// with the same identifier, which Stripe counts once. Nothing when
// billing is off.
func (s *Stripe) ReportClosedDay(ctx context.Context, day time.Time) error {
	if s == nil {
		return nil
	}
	after := ""
	for {
		days, err := store.UsageToReport(ctx, s.db, day, after, reportPage)
		if err != nil {
			return err
		}
		for _, u := range days {
			if err := s.ReportUsage(ctx, u.OrgID, u.Day, u.BilledHours()); err != nil {
				return err
			}
			if err := store.MarkUsageReported(ctx, s.db, u.OrgID, u.Day); err != nil {
				return err
			}
		}
		if len(days) < reportPage {
			return nil
		}
		after = days[len(days)-1].OrgID
	}
}
