package framework

import (
	"testing"
	"time"

	"github.com/onsi/gomega"
)

// ConsistentlyFor is how long Consistently watches a state that must hold.
const ConsistentlyFor = 3 * time.Second

// Eventually waits until check passes, at most Timeout.
func Eventually(t testing.TB, check func(g gomega.Gomega)) {
	t.Helper()
	gomega.NewWithT(t).Eventually(check).WithTimeout(Timeout).WithPolling(Interval).Should(gomega.Succeed())
}

// Consistently checks that check keeps passing for ConsistentlyFor.
func Consistently(t testing.TB, check func(g gomega.Gomega)) {
	t.Helper()
	gomega.NewWithT(t).Consistently(check).WithTimeout(ConsistentlyFor).WithPolling(Interval).Should(gomega.Succeed())
}

// EventuallyWithin waits until check passes, at most within: for promises about how fast a state shows.
func EventuallyWithin(t testing.TB, within time.Duration, check func(g gomega.Gomega)) {
	t.Helper()
	gomega.NewWithT(t).Eventually(check).WithTimeout(within).WithPolling(Interval / 2).Should(gomega.Succeed())
}
