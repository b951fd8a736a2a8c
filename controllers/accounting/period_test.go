package accounting

import (
	"testing"
	"time"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

func TestPeriodAt(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		kind       aifv1.BudgetPeriod
		t          string
		start, end string
	}{
		{aifv1.PeriodDay, "2026-11-26T18:02:17Z", "2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z"},
		{aifv1.PeriodDay, "2026-12-31T23:59:59Z", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"},
		{aifv1.PeriodDay, "2026-11-26T23:30:00-02:00", "2026-11-27T00:00:00Z", "2026-11-28T00:00:00Z"}, // UTC, not local
		{aifv1.PeriodWeek, "2026-11-26T10:00:00Z", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z"},     // Thursday
		{aifv1.PeriodWeek, "2026-11-23T00:00:00Z", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z"},     // Monday 00:00
		{aifv1.PeriodWeek, "2026-11-29T23:59:59Z", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z"},     // Sunday
		{aifv1.PeriodWeek, "2027-01-01T12:00:00Z", "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z"},     // across a year
		{aifv1.PeriodMonth, "2026-11-26T18:02:17Z", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"},
		{aifv1.PeriodMonth, "2028-02-29T12:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"}, // leap year
		{aifv1.PeriodMonth, "2027-02-28T23:59:59Z", "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z"},
		{aifv1.PeriodMonth, "2026-01-31T23:59:59Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"}, // month end
		{aifv1.PeriodMonth, "2026-12-31T23:59:59Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{aifv1.PeriodMonth, "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"}, // boundary belongs to the new period
		{"", "2026-11-26T18:02:17Z", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"},
		{aifv1.PeriodQuarter, "2026-11-26T18:02:17Z", "2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{aifv1.PeriodQuarter, "2026-03-31T23:59:59Z", "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z"},
		{aifv1.PeriodQuarter, "2026-04-01T00:00:00Z", "2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z"},
		{aifv1.PeriodYear, "2028-12-31T23:59:59Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"},
	}
	for _, tc := range cases {
		got := PeriodAt(tc.kind, at(tc.t))
		if !got.Start.Equal(at(tc.start)) || !got.End.Equal(at(tc.end)) {
			t.Errorf("PeriodAt(%s, %s) = [%s, %s), want [%s, %s)", tc.kind, tc.t, got.Start.Format(time.RFC3339),
				got.End.Format(time.RFC3339), tc.start, tc.end)
		}
	}
}
