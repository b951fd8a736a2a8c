package factory

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/internal/plugin"
)

// Follow prints a line each time a TrainingJob changes phase, reason, class or restarts, until every run has
// ended or waits only for a spent budget, or until timeout. Then it prints the table of all runs.
func (f *Factory) Follow(ctx context.Context, out io.Writer, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	jobs := map[string]aifv1.TrainingJob{}
	shown := map[string]string{}
	_, _ = fmt.Fprintf(out, "%6s  %-28s %-11s %4s  %-16s %-16s %s\n", "TIME", "TRAININGJOB", "PHASE", "GPUS", "CLASS", "REASON", "MESSAGE")
	defer func() { _, _ = fmt.Fprintf(out, "\n%s", RunTable(jobs)) }()
	for ctx.Err() == nil {
		var list aifv1.TrainingJobList
		w, err := f.Client.Watch(ctx, &list)
		if err != nil {
			return err
		}
		for ev := range w.ResultChan() {
			tj, ok := ev.Object.(*aifv1.TrainingJob)
			if !ok || ev.Type == watch.Deleted || tj.Status.Phase == "" {
				continue
			}
			key := tj.Namespace + "/" + tj.Name
			jobs[key] = *tj
			line := fmt.Sprintf("%-28s %-11s %4d  %-16s %-16s %s", key, orDash(string(tj.Status.Phase)), tj.Status.GPUs,
				orDash(plugin.ClassOf(tj)), orDash(tj.Status.Reason), shorten(tj.Status.Message, 60))
			if shown[key] == line {
				continue
			}
			shown[key] = line
			_, _ = fmt.Fprintf(out, "%5.0fs  %s\n", time.Since(t0).Seconds(), line)
			if settled, err := f.settled(ctx, jobs); err != nil || settled {
				w.Stop()
				return err
			}
		}
		w.Stop()
	}
	return nil
}

// settled is true when every run has ended, or waits for its tenant's budget (spent, or too little left for the
// run's reservation).
func (f *Factory) settled(ctx context.Context, jobs map[string]aifv1.TrainingJob) (bool, error) {
	if len(jobs) == 0 {
		return false, nil
	}
	var tenants aifv1.TenantQuotaList
	if err := f.Client.List(ctx, &tenants); err != nil {
		return false, err
	}
	spent := map[string]bool{}
	for _, tq := range tenants.Items {
		if apimeta.IsStatusConditionTrue(tq.Status.Conditions, aifv1.ConditionBudgetExhausted) {
			for _, ns := range tq.Spec.Namespaces {
				spent[ns] = true
			}
		}
	}
	for _, tj := range jobs {
		switch tj.Status.Phase {
		case aifv1.PhaseSucceeded, aifv1.PhaseFailed:
		case aifv1.PhaseQueued, aifv1.PhasePending:
			if !spent[tj.Namespace] && tj.Status.Reason != aifv1.ReasonWaitingForBudget {
				return false, nil
			}
		default:
			return false, nil
		}
	}
	return true, nil
}

// RunTable renders TrainingJobs sorted by namespace and name.
func RunTable(jobs map[string]aifv1.TrainingJob) string {
	keys := make([]string, 0, len(jobs))
	for k := range jobs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "NAMESPACE\tTRAININGJOB\tPHASE\tGPUS\tCLASS\tRESTARTS\tGPU-HOURS\tREASON")
	for _, k := range keys {
		tj := jobs[k]
		class := plugin.ClassOf(&tj)
		used := "-"
		if u := tj.Status.Usage; u != nil {
			used = fmt.Sprintf("%.2f", float64(u.GPUSeconds)/3600)
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", tj.Namespace, tj.Name, orDash(string(tj.Status.Phase)),
			tj.Status.GPUs, orDash(class), tj.Status.Restarts, used, orDash(tj.Status.Reason))
	}
	_ = tw.Flush()
	return b.String()
}

// Tenants prints each tenant's GPUs in use and budget, and fails if a tenant used more than its budget. Called
// when no run holds GPUs any more, it first gives the tenants' status up to a few seconds to book the last runs.
func (f *Factory) Tenants(ctx context.Context, out io.Writer) error {
	var tenants aifv1.TenantQuotaList
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := f.Client.List(ctx, &tenants); err != nil {
			return false, err
		}
		for _, tq := range tenants.Items {
			if tq.Status.AdmittedGPUs != 0 {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && !wait.Interrupted(err) {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "TENANT\tADMITTED GPUS\tUSED GPU-HOURS\tRESERVED\tBUDGET\tREMAINING\tBUDGET STATE")
	var over []string
	for _, tq := range tenants.Items {
		used, reserved, budget, remaining, state := "-", "-", "-", "-", "-"
		if b := tq.Status.Budget; b != nil {
			used, reserved, budget, remaining = b.UsedGPUHours, orDash(b.ReservedGPUHours), b.BudgetGPUHours, b.RemainingGPUHours
			if tq.Spec.Budget != nil && b.UsedGPUSeconds > tq.Spec.Budget.GPUHours*3600 {
				over = append(over, fmt.Sprintf("%s used %d GPU-seconds of %d", tq.Name, b.UsedGPUSeconds, tq.Spec.Budget.GPUHours*3600))
			}
		}
		if tq.Spec.Budget != nil {
			budget += " per " + strings.ToLower(string(tq.Spec.Budget.Period))
		}
		if c := apimeta.FindStatusCondition(tq.Status.Conditions, aifv1.ConditionBudgetExhausted); c != nil {
			state = c.Reason
		}
		_, _ = fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", tq.Name, tq.Status.AdmittedGPUs, used, reserved, budget, remaining, state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(over) > 0 {
		return fmt.Errorf("tenants over their GPU-hour budget: %s", strings.Join(over, "; "))
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
