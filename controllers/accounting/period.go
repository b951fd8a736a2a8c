package accounting

import (
	"time"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

// Period is a calendar period in UTC: [Start, End).
type Period struct {
	Start, End time.Time
}

// PeriodAt returns the calendar period of kind p (UTC) that contains t. Weeks start on Monday (ISO 8601).
// An empty kind counts by month.
func PeriodAt(p aifv1.BudgetPeriod, t time.Time) Period {
	t = t.UTC()
	y, m, d := t.Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	switch p {
	case aifv1.PeriodDay:
		return Period{day, day.AddDate(0, 0, 1)}
	case aifv1.PeriodWeek:
		start := day.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7))
		return Period{start, start.AddDate(0, 0, 7)}
	case aifv1.PeriodQuarter:
		start := time.Date(y, m-(m-1)%3, 1, 0, 0, 0, 0, time.UTC)
		return Period{start, start.AddDate(0, 3, 0)}
	case aifv1.PeriodYear:
		start := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		return Period{start, start.AddDate(1, 0, 0)}
	default:
		start := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		return Period{start, start.AddDate(0, 1, 0)}
	}
}
