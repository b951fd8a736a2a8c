// Package plugin renders what `kubectl aifactory` prints: a tenant's runs and quota on one screen, why a run
// waits or failed in plain words with Kueue's figures, and GPU-hours per tenant. The functions are pure: they
// take the objects and the time, so that their output can be golden-tested on objects from a real API server.
package plugin

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/trainingjob"
)

// TenantOf returns the tenant whose namespaces include ns.
func TenantOf(tenants []aifv1.TenantQuota, ns string) *aifv1.TenantQuota {
	for i := range tenants {
		for _, n := range tenants[i].Spec.Namespaces {
			if n == ns {
				return &tenants[i]
			}
		}
	}
	return nil
}

// Status prints a namespace's tenant (quota per GPU class, budget, state) and its training runs.
func Status(w io.Writer, ns string, tenant *aifv1.TenantQuota, jobs []aifv1.TrainingJob, now time.Time) {
	p := printer{w: w}
	if tenant == nil {
		p.line("Namespace %s belongs to no TenantQuota: its runs cannot be queued.", ns)
	} else {
		tq := tenant
		name := tq.Name
		if tq.Spec.DisplayName != "" {
			name += " (" + tq.Spec.DisplayName + ")"
		}
		p.line("Tenant %s, namespace %s, ClusterQueue %s%s", name, ns, tq.Status.ClusterQueue, cohortText(tq))
		p.line("State: %s", conditionText(tq.Status.Conditions, aifv1.ConditionReady))
		if b := tq.Status.Budget; b != nil {
			budget := "no budget"
			if tq.Spec.Budget != nil {
				budget = fmt.Sprintf("%s of %s GPU-hours left, %s reserved by admitted work", b.RemainingGPUHours, b.BudgetGPUHours, orZero(b.ReservedGPUHours))
			}
			p.line("Budget: %s GPU-hours used from %s to %s, %s", b.UsedGPUHours, day(b.PeriodStart.Time), day(b.PeriodEnd.Time), budget)
		}
		p.line("")
		tw := p.table("GPU CLASS", "NOMINAL", "ADMITTED", "BORROWED", "FREE")
		for _, g := range tq.Status.GPUs {
			tw.row(g.GPUClass, g.Nominal, g.Admitted, g.Borrowed, max(g.Nominal-g.Admitted, 0))
		}
		tw.flush()
		p.line("Workloads: %d admitted, %d pending", tq.Status.Workloads.Admitted, tq.Status.Workloads.Pending)
	}
	p.line("")
	if len(jobs) == 0 {
		p.line("No TrainingJobs in %s.", ns)
		return
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].Name < jobs[j].Name })
	tw := p.table("TRAININGJOB", "PHASE", "GPUS", "CLASS", "RESTARTS", "GPU-HOURS", "AGE", "REASON")
	for _, tj := range jobs {
		tw.row(tj.Name, orDash(string(tj.Status.Phase)), tj.Status.GPUs, orDash(ClassOf(&tj)), tj.Status.Restarts,
			gpuHours(&tj), duration.HumanDuration(now.Sub(tj.CreationTimestamp.Time)), orDash(tj.Status.Reason))
	}
	tw.flush()
}

// Usage prints the GPU-hours of each tenant in its current budget period.
func Usage(w io.Writer, tenants []aifv1.TenantQuota) {
	p := printer{w: w}
	sort.Slice(tenants, func(i, j int) bool { return tenants[i].Name < tenants[j].Name })
	tw := p.table("TENANT", "PERIOD", "USED GPU-HOURS", "RESERVED", "BUDGET", "REMAINING", "ADMITTED GPUS", "STATE")
	for _, tq := range tenants {
		period, used, reserved, budget, remaining := "-", "-", "-", "-", "-"
		if b := tq.Status.Budget; b != nil {
			period = day(b.PeriodStart.Time) + " to " + day(b.PeriodEnd.Time)
			used = b.UsedGPUHours
			if b.BudgetGPUHours != "" {
				reserved, budget, remaining = orZero(b.ReservedGPUHours), b.BudgetGPUHours, b.RemainingGPUHours
			}
		}
		state := "-"
		if c := apimeta.FindStatusCondition(tq.Status.Conditions, aifv1.ConditionBudgetExhausted); c != nil {
			state = c.Reason
		}
		tw.row(tq.Name, period, used, reserved, budget, remaining, tq.Status.AdmittedGPUs, state)
	}
	tw.flush()
}

// needed matches Kueue's "insufficient unused quota for <resource> in flavor <flavor>, <n> more needed".
var needed = regexp.MustCompile(`insufficient (?:unused )?quota for (\S+) in flavor ([^,\s]+), (\d+) more needed`)

// Why explains in plain words why a run is where it is, with what it needs, what its tenant and cohort have
// free, and what to change.
func Why(w io.Writer, tj *aifv1.TrainingJob, tenant *aifv1.TenantQuota, cohort []aifv1.TenantQuota) {
	p := printer{w: w}
	st := tj.Status
	p.line("TrainingJob %s/%s is %s (%s).", tj.Namespace, tj.Name, orDash(string(st.Phase)), orDash(st.Reason))
	if st.Message != "" {
		p.line("  %s", st.Message)
	}
	p.line("")
	switch {
	case st.Phase == "":
		p.line("The operator has not looked at it yet. Is the operator running?")
	case st.Phase == aifv1.PhaseSucceeded:
		p.line("It finished: %s.", usageText(tj))
	case st.Phase == aifv1.PhaseFailed:
		whyFailed(&p, tj)
	case st.Phase == aifv1.PhaseSuspended:
		p.line("spec.suspend is true: it holds no GPUs. Resume it with:")
		p.line("  kubectl patch trainingjob %s -n %s --type=merge -p '{\"spec\":{\"suspend\":false}}'", tj.Name, tj.Namespace)
	case st.Phase == aifv1.PhasePending:
		whyPending(&p, tj)
	case st.Reason == aifv1.ReasonBudgetExhausted:
		whyBudget(&p, tenant)
	case st.Reason == aifv1.ReasonWaitingForBudget:
		whyReservation(&p, tj, tenant)
	case st.Phase == aifv1.PhaseQueued || st.Phase == aifv1.PhaseRestarting:
		whyQueued(&p, tj, tenant, cohort)
	default:
		p.line("It runs on %d %s GPUs%s, admitted at %s.", st.GPUs, orDash(ClassOf(tj)), nodesText(tj), admittedText(tj))
		p.line("Its GPU-hours are added to status.usage when the attempt ends; the tenant's ledger counts them as they run.")
	}
}

func whyFailed(p *printer, tj *aifv1.TrainingJob) {
	st := tj.Status
	switch st.Reason {
	case aifv1.ReasonRestartsExhausted:
		p.line("A worker failed in each of %d attempts (spec.maxRestarts is %d). The last attempt's Job keeps its pods:", st.Restarts+1, tj.Spec.MaxRestarts)
		p.line("  kubectl logs -n %s -l batch.kubernetes.io/job-name=%s --prefix", tj.Namespace, trainingjob.JobName(tj, lastAttempt(tj)))
		p.line("Fix the cause, then delete and apply the TrainingJob again; it resumes from its checkpoint folder if it has one.")
	case aifv1.ReasonDeadlineExceeded:
		p.line("It was admitted for its whole run bound (%s), summed over its attempts: spec.maxRunDuration, or without", durationText(tj))
		p.line("it the tenant's spec.budget.defaultMaxRunDuration. A finished run does not start again: raise")
		p.line("spec.maxRunDuration (or make the run resume from its checkpoint), then delete the TrainingJob and apply it again.")
	default:
		p.line("It failed and will not be restarted.")
	}
	p.line("It used %s.", usageText(tj))
}

func whyPending(p *printer, tj *aifv1.TrainingJob) {
	switch tj.Status.Reason {
	case aifv1.ReasonDatasetNotReady, aifv1.ReasonDatasetNotVerified:
		p.line("It waits for its data; nothing is queued in Kueue yet. Look at the dataset:")
		p.line("  kubectl get datasetmounts -n %s", tj.Namespace)
		p.line("A DatasetMount that does not exist must be created; one that waits for verification goes on by itself.")
	case aifv1.ReasonCheckpointNotWritable:
		p.line("spec.checkpoint must name a ReadWrite DatasetMount. Point it at one, or create one on a ReadWrite root of the tenant.")
	case aifv1.ReasonQueueNotFound:
		p.line("spec.queueName names no LocalQueue of the namespace. The operator creates the LocalQueue \"default\" in every namespace of a tenant.")
	case aifv1.ReasonNoTenant:
		p.line("The namespace belongs to no TenantQuota. Ask the platform team to add it to one.")
	case aifv1.ReasonGPUClassUnknown:
		p.line("spec.gpuClass is not a GPU class of this factory, or does not offer spec.gpuResource. List the classes:")
		p.line("  kubectl get resourceflavors")
	default:
		p.line("It has not been handed to Kueue yet.")
	}
}

func whyBudget(p *printer, tenant *aifv1.TenantQuota) {
	if tenant == nil || tenant.Status.Budget == nil {
		p.line("The tenant's GPU-hour budget is spent.")
		return
	}
	b := tenant.Status.Budget
	p.line("Tenant %s has used %s of its %s GPU-hours for %s to %s. Kueue admits none of its runs until the period ends",
		tenant.Name, b.UsedGPUHours, b.BudgetGPUHours, day(b.PeriodStart.Time), day(b.PeriodEnd.Time))
	p.line("(%s) or the platform team raises spec.budget.gpuHours of TenantQuota %s.", b.PeriodEnd.UTC().Format(time.RFC3339), tenant.Name)
}

// whyReservation explains a run whose quota Kueue reserved and whose admission the budget check holds.
func whyReservation(p *printer, tj *aifv1.TrainingJob, tenant *aifv1.TenantQuota) {
	p.line("Kueue has reserved its GPUs, and the budget check (AdmissionCheck %s) holds its admission: a run is", aifv1.BudgetCheckName)
	p.line("admitted only if its GPUs times its run bound fit what is left of the tenant's GPU-hours after the use so far")
	p.line("and the reservations of admitted work, so that no run can take the budget past its end.")
	bound := "the tenant's spec.budget.defaultMaxRunDuration"
	if tj.Spec.MaxRunDuration != nil {
		bound = "spec.maxRunDuration " + tj.Spec.MaxRunDuration.Duration.String()
	}
	p.line("Its run bound is %s; it is stopped there, and only what it uses is charged.", bound)
	if tenant != nil && tenant.Status.Budget != nil {
		b := tenant.Status.Budget
		p.line("Tenant %s, %s to %s: %s of %s GPU-hours used, %s reserved by admitted work.", tenant.Name,
			day(b.PeriodStart.Time), day(b.PeriodEnd.Time), b.UsedGPUHours, b.BudgetGPUHours, orZero(b.ReservedGPUHours))
	}
	p.line("")
	p.line("What would change it:")
	p.line("  - wait: admitted runs that end before their bound give back what they did not use;")
	p.line("  - a shorter spec.maxRunDuration, if the run needs less (it fails when it reaches it);")
	if tenant != nil && tenant.Status.Budget != nil {
		p.line("  - the next period, from %s;", tenant.Status.Budget.PeriodEnd.UTC().Format(time.RFC3339))
	}
	p.line("  - ask the platform team for a larger spec.budget.gpuHours in TenantQuota %s.", tenantName(tenant))
}

func orZero(s string) string {
	if s == "" {
		return "0.00"
	}
	return s
}

func whyQueued(p *printer, tj *aifv1.TrainingJob, tenant *aifv1.TenantQuota, cohort []aifv1.TenantQuota) {
	st := tj.Status
	if st.Reason == aifv1.ReasonPreempted || st.Reason == aifv1.ReasonEvicted {
		p.line("Kueue stopped it to make room (%s); it is queued again and resumes as the same attempt, from its checkpoint", st.Reason)
		p.line("folder if it has one. Nothing to change: it is admitted again when GPUs free up.")
		p.line("")
	}
	queueMsg := st.Message
	if st.Queue != nil && st.Queue.Message != "" {
		queueMsg = st.Queue.Message
	}
	m := needed.FindStringSubmatch(queueMsg)
	if m == nil {
		p.line("It waits in Kueue for quota. It needs %d GPUs (%s x %d %s).", st.GPUs, nodes(tj.Spec.Nodes), tj.Spec.GPUsPerNode, tj.Spec.GPUResource)
		return
	}
	resource, class, more := m[1], m[2], m[3]
	p.line("It needs %d x %s in class %s: %s x %d. Kueue is short of %s.", st.GPUs, resource, class, nodes(tj.Spec.Nodes), tj.Spec.GPUsPerNode, more)
	if tenant != nil {
		for _, g := range tenant.Status.GPUs {
			if g.GPUClass == class {
				borrowed := ""
				if tenant.Spec.Cohort != "" {
					borrowed = fmt.Sprintf(", %d borrowed from its cohort", g.Borrowed)
				}
				p.line("Tenant %s: %d nominal, %d admitted%s, %d free%s.", tenant.Name, g.Nominal, g.Admitted, borrowed,
					max(g.Nominal-g.Admitted, 0), borrowText(tenant, class, g.Borrowed))
			}
		}
		if tenant.Spec.Cohort != "" {
			free, lenders := cohortFree(tenant, cohort, class)
			p.line("Cohort %s: %d unused in the other tenants' quota of %s (%s).", tenant.Spec.Cohort, free, class, lenders)
		}
	}
	p.line("")
	p.line("What would change it:")
	p.line("  - wait: it is admitted when runs of the tenant%s finish;", map[bool]string{true: " or its cohort", false: ""}[tenant != nil && tenant.Spec.Cohort != ""])
	if tj.Spec.Nodes > 1 {
		p.line("  - ask for fewer GPUs: spec.nodes or spec.gpusPerNode (allowed while it is queued);")
	}
	if tj.Spec.GPUClass != "" {
		p.line("  - leave spec.gpuClass unset so that Kueue may place it in another class of the queue;")
	}
	p.line("  - ask the platform team for a higher nominal quota or borrowing limit of %s in TenantQuota %s.", class, tenantName(tenant))
}

// cohortFree sums what the other tenants of the cohort leave unused of a class, within their lending limits.
func cohortFree(tenant *aifv1.TenantQuota, all []aifv1.TenantQuota, class string) (int32, string) {
	var free int32
	var parts []string
	for _, other := range all {
		if other.Name == tenant.Name || other.Spec.Cohort != tenant.Spec.Cohort {
			continue
		}
		for _, g := range other.Status.GPUs {
			if g.GPUClass != class {
				continue
			}
			unused := max(g.Nominal-g.Admitted, 0)
			for _, q := range other.Spec.GPUs {
				if q.GPUClass == class && q.LendingLimit != nil {
					unused = min(unused, *q.LendingLimit)
				}
			}
			free += unused
			part := fmt.Sprintf("%s %d", other.Name, unused)
			if apimeta.IsStatusConditionTrue(other.Status.Conditions, aifv1.ConditionBudgetExhausted) {
				part += ", its queue held by its spent budget"
			}
			parts = append(parts, part)
		}
	}
	if len(parts) == 0 {
		return 0, "no other tenant has this class"
	}
	return free, strings.Join(parts, ", ")
}

// borrowText says how much more the tenant may borrow of a class under its borrowing limit.
func borrowText(tq *aifv1.TenantQuota, class string, borrowed int32) string {
	if tq.Spec.Cohort == "" {
		return ""
	}
	for _, q := range tq.Spec.GPUs {
		if q.GPUClass == class {
			if q.BorrowingLimit == nil {
				return "; it may borrow without limit"
			}
			return fmt.Sprintf("; it may borrow %d more (borrowingLimit %d)", max(*q.BorrowingLimit-borrowed, 0), *q.BorrowingLimit)
		}
	}
	return ""
}

func tenantName(tq *aifv1.TenantQuota) string {
	if tq == nil {
		return "of this namespace"
	}
	return tq.Name
}

func cohortText(tq *aifv1.TenantQuota) string {
	if tq.Spec.Cohort == "" {
		return ""
	}
	return ", cohort " + tq.Spec.Cohort
}

func conditionText(conds []metav1.Condition, t string) string {
	c := apimeta.FindStatusCondition(conds, t)
	if c == nil {
		return "unknown (no " + t + " condition yet)"
	}
	state := t
	if c.Status != "True" {
		state = "not " + t
	}
	return fmt.Sprintf("%s, %s: %s", state, c.Reason, c.Message)
}

// ClassOf is the GPU class of a run: the one Kueue admitted it to, or the one its record names.
func ClassOf(tj *aifv1.TrainingJob) string {
	if a := tj.Status.Admission; a != nil {
		return a.GPUClass
	}
	if r := tj.Status.Record; r != nil {
		return r.GPUClass
	}
	return ""
}

func gpuHours(tj *aifv1.TrainingJob) string {
	if tj.Status.Usage == nil {
		return "-"
	}
	return strconv.FormatFloat(float64(tj.Status.Usage.GPUSeconds)/3600, 'f', 2, 64)
}

func usageText(tj *aifv1.TrainingJob) string {
	u := tj.Status.Usage
	if u == nil {
		return "no GPU time yet"
	}
	s := fmt.Sprintf("%s GPU-hours over %d attempts", gpuHours(tj), len(u.Attempts))
	if len(u.Attempts) == 1 {
		s = fmt.Sprintf("%s GPU-hours", gpuHours(tj))
	}
	if u.EnergyJoules > 0 {
		s += fmt.Sprintf(", about %.2f kWh", float64(u.EnergyJoules)/3.6e6)
	}
	return s
}

func admittedText(tj *aifv1.TrainingJob) string {
	if u := tj.Status.Usage; u != nil && len(u.Attempts) > 0 {
		if a := u.Attempts[len(u.Attempts)-1].AdmittedAt; a != nil {
			return a.UTC().Format(time.RFC3339)
		}
	}
	return "an unknown time"
}

func nodes(n int32) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}

func nodesText(tj *aifv1.TrainingJob) string {
	if a := tj.Status.Admission; a != nil && len(a.Nodes) > 0 {
		return " on " + strings.Join(a.Nodes, ", ")
	}
	return ""
}

func durationText(tj *aifv1.TrainingJob) string {
	if tj.Spec.MaxRunDuration == nil {
		return "unset"
	}
	return tj.Spec.MaxRunDuration.Duration.String()
}

func lastAttempt(tj *aifv1.TrainingJob) int32 {
	if u := tj.Status.Usage; u != nil && len(u.Attempts) > 0 {
		return u.Attempts[len(u.Attempts)-1].Attempt
	}
	return 0
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type printer struct{ w io.Writer }

func (p *printer) line(format string, args ...any) { _, _ = fmt.Fprintf(p.w, format+"\n", args...) }

type table struct{ tw *tabwriter.Writer }

func (p *printer) table(header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)}
	_, _ = fmt.Fprintln(t.tw, strings.Join(header, "\t"))
	return t
}

func (t *table) row(cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
	}
	_, _ = fmt.Fprintln(t.tw, strings.Join(s, "\t"))
}

func (t *table) flush() { _ = t.tw.Flush() }
