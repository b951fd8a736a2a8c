package trainingjob

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/controllers/jobs"
	"github.com/aifactory-eu/aifactory-operator/controllers/progress"
)

// Observed is what one pass read of a TrainingJob's surroundings and of its current attempt.
type Observed struct {
	// Verdict is the acceptance check. It gates the creation of a Job; a Job that exists is followed whatever
	// the verdict says now.
	Verdict Verdict
	// Shape is the shape hash of the Job the run asks for now (empty while not accepted).
	Shape string
	// Job is the current attempt's Job, nil while it does not exist.
	Job *batchv1.Job
	// Superseded are the run's unfinished Jobs of earlier attempts.
	Superseded []*batchv1.Job
	// Workload is Kueue's workload of Job, nil until Kueue created it.
	Workload *kueue.Workload
	// Pods are the current Job's pods.
	Pods []corev1.Pod
	// DatasetMounts are the run's DatasetMounts by name, for the run record.
	DatasetMounts map[string]*aifv1.DatasetMount
	// Tenant is the name of the namespace's TenantQuota, for metrics.
	Tenant string
	// Hold is why the tenant admits no new work (its budget is spent); empty while it admits work.
	Hold string
	// Classes are the known GPU classes by name, for the energy estimate.
	Classes map[string]classes.Class
	// Bound is the run's bound on admitted time, summed over attempts (see RunBound); nil for none.
	Bound *time.Duration
	// ServiceExists is true once the run's headless Service exists.
	ServiceExists bool
	// Now is the time of the pass.
	Now time.Time
}

// Actions are the writes to children that follow the status write of a pass.
type Actions struct {
	// CreateJob asks for the Job of the current attempt (the last entry of status.usage.attempts).
	CreateJob bool
	// DeleteJobs are unfinished Jobs of earlier attempts: a queued Job replaced after the run changed, or one
	// left over when a pass ended between the status write and the delete.
	DeleteJobs []*batchv1.Job
	// SetActive sets the current workload's spec.active: false to suspend the run or stop it at its deadline,
	// true to resume it.
	SetActive *bool
	// Deactivation is the reason recorded on a workload that SetActive deactivates (aifv1.DeactivatedAnnotation):
	// Suspended or DeadlineExceeded.
	Deactivation string
	// RequeueAfter is when the run reaches maxRunDuration, while it is admitted.
	RequeueAfter time.Duration
}

// outcome is a phase with its reason and message.
type outcome struct {
	phase   aifv1.TrainingJobPhase
	reason  string
	message string
}

// Step derives a TrainingJob's next status, and the writes to its children, from what a pass observed. It is a
// pure function of the old status and the observation: the decision to start a new attempt is recorded in the
// status (a new usage entry, and the restart count) before the attempt's Job is created, so a pass that is
// repeated after a crash reaches the same Job by name.
func Step(tj *aifv1.TrainingJob, obs Observed) (aifv1.TrainingJobStatus, Actions) {
	if done(tj.Status.Phase) {
		return ended(tj, obs)
	}
	st := *tj.Status.DeepCopy()
	st.ObservedGeneration = tj.Generation
	st.GPUs = tj.Spec.Nodes * tj.Spec.GPUsPerNode
	if st.Usage == nil {
		st.Usage = &aifv1.Usage{}
	}
	act := Actions{DeleteJobs: obs.Superseded}
	var o outcome
	if obs.Job == nil {
		o = start(tj, obs, &st, &act)
	} else {
		if c := apimeta.FindStatusCondition(st.Conditions, aifv1.ConditionAccepted); c == nil || c.Reason == aifv1.ReasonChildRefused {
			setCondition(&st, tj, aifv1.ConditionAccepted, true, aifv1.ReasonAccepted, "the run was handed to Kueue")
		}
		o = follow(tj, obs, &st, &act)
	}
	if obs.Hold != "" && (o.phase == aifv1.PhaseQueued || o.phase == aifv1.PhaseRestarting) {
		// Kueue's own message still names the quota it would need; the tenant's hold is the real reason.
		o.reason, o.message = aifv1.ReasonBudgetExhausted, obs.Hold
	}
	st.Phase, st.Reason, st.Message = o.phase, o.reason, o.message
	conditions(tj, &st, o)
	total(&st, obs.Classes)
	if done(o.phase) {
		if st.CompletionTime == nil {
			st.CompletionTime = ptr.To(metav1.NewTime(obs.Now))
		}
		st.Record = record(tj, obs, &st)
	}
	if len(st.Usage.Attempts) == 0 {
		st.Usage = nil
	}
	return st, act
}

func done(p aifv1.TrainingJobPhase) bool { return p == aifv1.PhaseSucceeded || p == aifv1.PhaseFailed }

// ended looks after a run that ended: its status is its record and changes only to say that it has seen the
// latest spec (an edit changes nothing once the run ended); a run that failed at its deadline holds no quota
// (the deadline pass writes the status before it deactivates the workload, so a crash in between is mended here).
func ended(tj *aifv1.TrainingJob, obs Observed) (aifv1.TrainingJobStatus, Actions) {
	st := *tj.Status.DeepCopy()
	if st.ObservedGeneration != tj.Generation {
		st.ObservedGeneration = tj.Generation
		for i := range st.Conditions {
			st.Conditions[i].ObservedGeneration = tj.Generation
		}
	}
	var act Actions
	if st.Reason == aifv1.ReasonDeadlineExceeded && obs.Job != nil && obs.Workload != nil {
		if _, c := finished(obs.Job, obs.Workload); c == nil && ptr.Deref(obs.Workload.Spec.Active, true) {
			act.SetActive, act.Deactivation = ptr.To(false), aifv1.ReasonDeadlineExceeded
		}
	}
	return st, act
}

// start handles a pass without a Job: the run waits for its references, stays suspended, or gets its Job.
func start(tj *aifv1.TrainingJob, obs Observed, st *aifv1.TrainingJobStatus, act *Actions) outcome {
	v := obs.Verdict
	// The same spec was refused before: the write is tried again, and the refusal stands until it succeeds.
	refusedBefore := v.Accepted && !tj.Spec.Suspend &&
		tj.Status.Reason == aifv1.ReasonChildRefused && tj.Status.ObservedGeneration == tj.Generation
	if !refusedBefore {
		setCondition(st, tj, aifv1.ConditionAccepted, v.Accepted, v.Reason, v.Message)
	}
	st.Admission = nil
	switch {
	case tj.Spec.Suspend:
		return outcome{aifv1.PhaseSuspended, aifv1.ReasonSuspended, "spec.suspend is true; the run is not queued"}
	case !v.Accepted:
		return outcome{aifv1.PhasePending, v.Reason, v.Message}
	}
	if len(st.Usage.Attempts) == 0 {
		newAttempt(st)
	}
	act.CreateJob = true
	if refusedBefore {
		return refusedBy(tj, st, tj.Status.Message)
	}
	return waiting(st, "handing the run to Kueue")
}

// Refused is the status of a run whose Service or Job the API server refused with err: Pending and Stalled, with
// the API server's message, until a write for the same spec succeeds or the spec changes.
func Refused(tj *aifv1.TrainingJob, err error) aifv1.TrainingJobStatus {
	st := *tj.Status.DeepCopy()
	msg := "the API server refused a write for this run: " + err.Error()
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "..."
	}
	o := refusedBy(tj, &st, msg)
	st.Phase, st.Reason, st.Message = o.phase, o.reason, o.message
	conditions(tj, &st, o)
	return st
}

func refusedBy(tj *aifv1.TrainingJob, st *aifv1.TrainingJobStatus, msg string) outcome {
	setCondition(st, tj, aifv1.ConditionAccepted, false, aifv1.ReasonChildRefused, msg)
	return outcome{aifv1.PhasePending, aifv1.ReasonChildRefused, msg}
}

// maxMessage bounds the API server messages that a status repeats.
const maxMessage = 2048

// follow mirrors the current attempt's Job and workload, and decides restarts, deadlines and suspension.
func follow(tj *aifv1.TrainingJob, obs Observed, st *aifv1.TrainingJobStatus, act *Actions) outcome {
	if len(st.Usage.Attempts) == 0 {
		newAttempt(st) // the status was lost; the Job found by name is attempt 0
	}
	cur := &st.Usage.Attempts[len(st.Usage.Attempts)-1]
	u := usageOf(tj, obs.Workload)
	refresh(tj, cur, u, obs.Workload)
	if end, c := finished(obs.Job, obs.Workload); c != nil {
		if end == nil {
			return keep(st) // Kueue has not finished the workload yet; its end time is what the tenant is charged
		}
		settle(cur, u, *end)
		if c.Type == batchv1.JobComplete {
			return outcome{aifv1.PhaseSucceeded, aifv1.ReasonCompleted, fmt.Sprintf("all %d workers finished", tj.Spec.Nodes)}
		}
		return failed(tj, obs.Bound, st, act, c.Message, *end)
	}
	if left, bounded := remaining(obs.Bound, st, u, obs.Now); bounded {
		if left <= 0 {
			settle(cur, u, obs.Now)
			if obs.Workload != nil && ptr.Deref(obs.Workload.Spec.Active, true) {
				act.SetActive, act.Deactivation = ptr.To(false), aifv1.ReasonDeadlineExceeded
			}
			return outcome{aifv1.PhaseFailed, aifv1.ReasonDeadlineExceeded, fmt.Sprintf("the run was admitted for its whole run bound of %s", *obs.Bound)}
		}
		if admitted(obs.Workload) {
			act.RequeueAfter = left
		}
	}
	if !reserved(obs.Workload) && obs.Verdict.Reason == aifv1.ReasonDatasetRevoked {
		// No new run may use a revoked dataset: a Job that Kueue has not admitted yet is withdrawn, and the run
		// waits with the reason; it is queued again as a new attempt once the dataset is permitted again.
		settle(cur, u, obs.Now)
		newAttempt(st)
		act.DeleteJobs = append(act.DeleteJobs, obs.Job)
		st.Admission = nil
		return outcome{aifv1.PhasePending, obs.Verdict.Reason, obs.Verdict.Message + "; the queued Job was withdrawn"}
	}
	if !reserved(obs.Workload) && !tj.Spec.Suspend && obs.Verdict.Accepted && obs.Shape != "" && obs.Job.Annotations[aifv1.ShapeAnnotation] != obs.Shape {
		settle(cur, u, obs.Now)
		newAttempt(st)
		act.DeleteJobs, act.CreateJob = append(act.DeleteJobs, obs.Job), true
		st.Admission = nil
		return waiting(st, "the run was changed while it waited; it is queued again with the new shape")
	}
	return mirror(tj, obs, st, act)
}

// failed ends an attempt whose worker failed: a new attempt while restarts are left, else the end of the run.
func failed(tj *aifv1.TrainingJob, bound *time.Duration, st *aifv1.TrainingJobStatus, act *Actions, why string, at time.Time) outcome {
	attempt := st.Usage.Attempts[len(st.Usage.Attempts)-1].Attempt
	if why == "" {
		why = "a worker failed"
	}
	if left, bounded := remaining(bound, st, accounting.WorkloadUsage{}, at); bounded && left <= 0 {
		return outcome{aifv1.PhaseFailed, aifv1.ReasonDeadlineExceeded, fmt.Sprintf("attempt %d failed (%s) after its run bound of %s was used up", attempt, why, *bound)}
	}
	if st.Restarts >= tj.Spec.MaxRestarts {
		return outcome{aifv1.PhaseFailed, aifv1.ReasonRestartsExhausted, fmt.Sprintf("attempt %d failed (%s) after %d of %d restarts", attempt, why, st.Restarts, tj.Spec.MaxRestarts)}
	}
	st.Restarts++
	newAttempt(st)
	act.CreateJob = true
	st.Admission = nil
	return outcome{aifv1.PhaseRestarting, aifv1.ReasonWorkerFailed, fmt.Sprintf("attempt %d failed (%s); restart %d of %d", attempt, why, st.Restarts, tj.Spec.MaxRestarts)}
}

// mirror reads the phase of a Job that neither finished nor must be replaced, and suspends or resumes it.
func mirror(tj *aifv1.TrainingJob, obs Observed, st *aifv1.TrainingJobStatus, act *Actions) outcome {
	wl := obs.Workload
	st.Admission = nil
	st.Queue = queueStatus(tj, wl, st.Queue)
	if o, ok := activation(tj, obs, st, act); ok {
		return o
	}
	if c := evicted(wl); c != nil {
		reason := aifv1.ReasonEvicted
		if c.Reason == kueue.WorkloadEvictedByPreemption {
			reason = aifv1.ReasonPreempted
		}
		return outcome{aifv1.PhaseQueued, reason, fmt.Sprintf("%s by Kueue: %s", c.Reason, c.Message)}
	}
	if !admitted(wl) {
		if c := budgetCheck(wl); c != nil && c.State == kueue.CheckStatePending && c.Message != "" && reserved(wl) {
			o := waiting(st, "Kueue reserved quota; the budget check holds admission: "+c.Message)
			o.reason = aifv1.ReasonWaitingForBudget
			return o
		}
		msg := "waiting for Kueue to see the job"
		if st.Queue != nil && st.Queue.Message != "" {
			msg = st.Queue.Message
		}
		return waiting(st, msg)
	}
	st.Admission = admission(tj, wl.Status.Admission, obs.Pods)
	for _, a := range st.Usage.Attempts {
		if st.StartTime == nil {
			st.StartTime = a.AdmittedAt
		}
	}
	// Workers that finished count as having run, so that a run does not fall back to Admitted while its
	// workers end one by one.
	ready, finished := ptr.Deref(obs.Job.Status.Ready, 0), obs.Job.Status.Succeeded
	switch {
	case ready+finished >= tj.Spec.Nodes && finished > 0:
		return outcome{aifv1.PhaseRunning, aifv1.ReasonWorkersRunning, fmt.Sprintf("%d of %d workers finished", finished, tj.Spec.Nodes)}
	case ready >= tj.Spec.Nodes:
		return outcome{aifv1.PhaseRunning, aifv1.ReasonWorkersRunning, fmt.Sprintf("%d workers run", tj.Spec.Nodes)}
	}
	return outcome{aifv1.PhaseAdmitted, aifv1.ReasonWorkersStarting, fmt.Sprintf("admitted by Kueue; %d of %d workers run", ready, tj.Spec.Nodes)}
}

// queueStatus is where the workload waits or runs, in Kueue's terms.
func queueStatus(tj *aifv1.TrainingJob, wl *kueue.Workload, old *aifv1.QueueStatus) *aifv1.QueueStatus {
	if wl == nil {
		return old
	}
	q := &aifv1.QueueStatus{LocalQueue: tj.Spec.QueueName, Workload: wl.Name}
	if c := apimeta.FindStatusCondition(wl.Status.Conditions, kueue.WorkloadQuotaReserved); c != nil {
		q.Reason, q.Message = c.Reason, c.Message
	}
	if a := wl.Status.Admission; a != nil {
		q.ClusterQueue = string(a.ClusterQueue)
	}
	return q
}

// activation suspends and resumes the workload through spec.active. It returns the outcome when suspension,
// resumption or a deactivation by Kueue decides the phase.
func activation(tj *aifv1.TrainingJob, obs Observed, st *aifv1.TrainingJobStatus, act *Actions) (outcome, bool) {
	wl := obs.Workload
	active := wl == nil || ptr.Deref(wl.Spec.Active, true)
	switch {
	case tj.Spec.Suspend:
		if wl != nil && active {
			act.SetActive, act.Deactivation = ptr.To(false), aifv1.ReasonSuspended
		}
		if admitted(wl) {
			return outcome{aifv1.PhaseSuspended, aifv1.ReasonSuspended, "spec.suspend is true; Kueue is stopping the workers"}, true
		}
		return outcome{aifv1.PhaseSuspended, aifv1.ReasonSuspended, "spec.suspend is true; the run holds no quota and keeps its place in its attempt"}, true
	case active:
		return outcome{}, false
	case wl.Annotations[aifv1.DeactivatedAnnotation] != "":
		act.SetActive = ptr.To(true)
		return waiting(st, "resumed; queued again"), true
	}
	// Kueue itself deactivated the workload (requeuing limit, rejected admission check, maximum execution time),
	// or the tenant's budget stopped it at its bound: it will not run again, and undoing that is not the
	// operator's to do.
	settle(&st.Usage.Attempts[len(st.Usage.Attempts)-1], usageOf(tj, wl), obs.Now)
	if b := wl.Annotations[aifv1.BoundReachedAnnotation]; b != "" {
		return outcome{aifv1.PhaseFailed, aifv1.ReasonDeadlineExceeded, fmt.Sprintf("the run was admitted for its tenant's run bound of %ss", b)}, true
	}
	msg := "Kueue deactivated the workload"
	reason := aifv1.ReasonEvicted
	if c := evicted(wl); c != nil {
		msg = fmt.Sprintf("Kueue deactivated the workload: %s: %s", c.Reason, c.Message)
		if strings.HasSuffix(c.Reason, kueue.WorkloadMaximumExecutionTimeExceeded) { // "DeactivatedDueTo..."
			reason = aifv1.ReasonDeadlineExceeded
		}
	}
	return outcome{aifv1.PhaseFailed, reason, msg}, true
}

// waiting is the outcome of an attempt that waits for Kueue: Queued, or Restarting after a worker failure
// until the new attempt is admitted.
func waiting(st *aifv1.TrainingJobStatus, msg string) outcome {
	cur := st.Usage.Attempts[len(st.Usage.Attempts)-1]
	if st.Restarts > 0 && cur.AdmittedAt == nil {
		return outcome{aifv1.PhaseRestarting, aifv1.ReasonPending, fmt.Sprintf("restart %d, attempt %d: %s", st.Restarts, cur.Attempt, msg)}
	}
	return outcome{aifv1.PhaseQueued, aifv1.ReasonPending, msg}
}

func keep(st *aifv1.TrainingJobStatus) outcome {
	return outcome{st.Phase, st.Reason, st.Message}
}

// newAttempt opens the usage entry of the next attempt; the Job of the last entry is the current attempt.
func newAttempt(st *aifv1.TrainingJobStatus) {
	st.Usage.Attempts = append(st.Usage.Attempts, aifv1.AttemptUsage{Attempt: int32(len(st.Usage.Attempts))})
}

// CurrentAttempt is the number of the attempt whose Job the run follows.
func CurrentAttempt(st *aifv1.TrainingJobStatus) int32 {
	if st.Usage == nil || len(st.Usage.Attempts) == 0 {
		return 0
	}
	return st.Usage.Attempts[len(st.Usage.Attempts)-1].Attempt
}

func usageOf(tj *aifv1.TrainingJob, wl *kueue.Workload) accounting.WorkloadUsage {
	if wl == nil {
		return accounting.WorkloadUsage{}
	}
	res := corev1.ResourceName(tj.Spec.GPUResource)
	return accounting.UsageOf(wl, func(r corev1.ResourceName) bool { return r == res })
}

// refresh brings the current attempt's entry up to date with its workload: GPUs, class, first admission, and
// the GPU-seconds of admissions that have ended. The running admission is added by settle, so that a running
// attempt's status does not change with the clock.
func refresh(tj *aifv1.TrainingJob, a *aifv1.AttemptUsage, u accounting.WorkloadUsage, wl *kueue.Workload) {
	if wl == nil {
		return
	}
	if u.GPUs > 0 {
		a.GPUs = int32(u.GPUs)
	}
	if adm := wl.Status.Admission; adm != nil {
		if c := admission(tj, adm, nil).GPUClass; c != "" {
			a.GPUClass = c
		}
	}
	if a.AdmittedAt == nil && u.AdmittedAt != nil {
		a.AdmittedAt = ptr.To(metav1.NewTime(*u.AdmittedAt))
	}
	if u.AdmittedAt != nil && u.EndedAt != nil {
		a.GPUSeconds = u.GPUSecondsAt(*u.EndedAt)
	} else {
		a.GPUSeconds = u.PastSeconds * u.GPUs
	}
}

// settle closes an attempt's entry at end.
func settle(a *aifv1.AttemptUsage, u accounting.WorkloadUsage, end time.Time) {
	if u.GPUs > 0 {
		a.GPUSeconds = u.GPUSecondsAt(end)
	}
	if a.EndedAt == nil {
		a.EndedAt = ptr.To(metav1.NewTime(end))
	}
}

// remaining is the admitted time left before the run's bound, counting ended attempts and the current workload
// up to now; bounded is false for a run without a bound.
func remaining(bound *time.Duration, st *aifv1.TrainingJobStatus, u accounting.WorkloadUsage, now time.Time) (time.Duration, bool) {
	if bound == nil {
		return 0, false
	}
	var secs int64
	for i, a := range st.Usage.Attempts {
		if i == len(st.Usage.Attempts)-1 && u.GPUs > 0 {
			secs += u.GPUSecondsAt(now) / u.GPUs
		} else if a.GPUs > 0 {
			secs += a.GPUSeconds / int64(a.GPUs)
		}
	}
	return *bound - time.Duration(secs)*time.Second, true
}

// RunBound is a run's bound on admitted time: its maxRunDuration, else its tenant's default where the tenant has
// a budget, never more than the tenant's maximum; nil without either.
func RunBound(tj *aifv1.TrainingJob, tenant *aifv1.TenantQuota) *time.Duration {
	b := budgetOf(tenant)
	if b == nil {
		if tj.Spec.MaxRunDuration == nil {
			return nil
		}
		return ptr.To(tj.Spec.MaxRunDuration.Duration)
	}
	var asked *int32
	if tj.Spec.MaxRunDuration != nil {
		asked = ptr.To(int32(min(tj.Spec.MaxRunDuration.Duration/time.Second, 1<<31-1)))
	}
	secs, _ := accounting.RunBound(b, asked)
	return ptr.To(time.Duration(secs) * time.Second)
}

func budgetOf(tenant *aifv1.TenantQuota) *aifv1.Budget {
	if tenant == nil {
		return nil
	}
	return tenant.Spec.Budget
}

// MaxExecSeconds is what Kueue's maximum execution time of an attempt's Job is set to: what is left of the run's
// bound before the attempt, so that Kueue stops the attempt there even while the operator is down. Zero for a
// run without a bound.
func MaxExecSeconds(bound *time.Duration, st *aifv1.TrainingJobStatus) int32 {
	if bound == nil {
		return 0
	}
	prior := *st.DeepCopy()
	if prior.Usage == nil {
		prior.Usage = &aifv1.Usage{}
	}
	left, _ := remaining(bound, &prior, accounting.WorkloadUsage{}, time.Time{})
	return int32(max(min((left+time.Second-1)/time.Second, 1<<31-1), 1))
}

// finished returns the Job's final condition, if any, and when the attempt ended: the time Kueue finished the
// workload (what the tenant's ledger charges), or the Job's own time when Kueue no longer has the workload. The
// end is nil while Kueue has yet to finish the workload.
func finished(job *batchv1.Job, wl *kueue.Workload) (*time.Time, *batchv1.JobCondition) {
	c := jobs.Ended(job)
	switch {
	case c == nil:
		return nil, nil
	case wl == nil:
		return ptr.To(c.LastTransitionTime.UTC()), c
	}
	if f := apimeta.FindStatusCondition(wl.Status.Conditions, kueue.WorkloadFinished); f != nil && f.Status == metav1.ConditionTrue {
		return ptr.To(f.LastTransitionTime.UTC()), c
	}
	return nil, c
}

func admitted(wl *kueue.Workload) bool {
	return wl != nil && apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadAdmitted)
}

func reserved(wl *kueue.Workload) bool {
	return wl != nil && (admitted(wl) || apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadQuotaReserved))
}

// budgetCheck is the budget AdmissionCheck's state on the workload, nil without one.
func budgetCheck(wl *kueue.Workload) *kueue.AdmissionCheckState {
	if wl == nil {
		return nil
	}
	for i := range wl.Status.AdmissionChecks {
		if wl.Status.AdmissionChecks[i].Name == aifv1.BudgetCheckName {
			return &wl.Status.AdmissionChecks[i]
		}
	}
	return nil
}

func evicted(wl *kueue.Workload) *metav1.Condition {
	if wl == nil {
		return nil
	}
	if c := apimeta.FindStatusCondition(wl.Status.Conditions, kueue.WorkloadEvicted); c != nil && c.Status == metav1.ConditionTrue {
		return c
	}
	return nil
}

// admission reads what Kueue granted: the flavor of the GPU resource, the GPUs, and the nodes of the workers.
func admission(tj *aifv1.TrainingJob, a *kueue.Admission, pods []corev1.Pod) *aifv1.AdmissionStatus {
	out := &aifv1.AdmissionStatus{GPUs: tj.Spec.Nodes * tj.Spec.GPUsPerNode, Nodes: nodesOf(pods)}
	for _, ps := range a.PodSetAssignments {
		if f, ok := ps.Flavors[corev1.ResourceName(tj.Spec.GPUResource)]; ok {
			out.GPUClass = string(f)
		}
	}
	return out
}

// nodesOf lists the nodes of the workers in completion-index order, once every worker has one.
func nodesOf(pods []corev1.Pod) []string {
	byIndex := map[int]string{}
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.DeletionTimestamp != nil {
			continue
		}
		if i, err := strconv.Atoi(p.Annotations[batchv1.JobCompletionIndexAnnotation]); err == nil {
			byIndex[i] = p.Spec.NodeName
		}
	}
	idx := make([]int, 0, len(byIndex))
	for i := range byIndex {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		out = append(out, byIndex[i])
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func setCondition(st *aifv1.TrainingJobStatus, tj *aifv1.TrainingJob, t string, ok bool, reason, msg string) {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: tj.Generation})
}

// conditions sets the conditions that follow from the phase. Reconciling and Stalled follow kstatus: a run is
// Reconciling until it ends or is suspended, and Stalled when it failed.
func conditions(tj *aifv1.TrainingJob, st *aifv1.TrainingJobStatus, o outcome) {
	p := o.phase
	in := func(ps ...aifv1.TrainingJobPhase) bool {
		for _, x := range ps {
			if p == x {
				return true
			}
		}
		return false
	}
	isAdmitted := in(aifv1.PhaseAdmitted, aifv1.PhaseRunning, aifv1.PhaseSucceeded)
	setCondition(st, tj, aifv1.ConditionAdmitted, isAdmitted, reasonOr(isAdmitted, aifv1.ReasonAdmitted, o.reason), o.message)
	setCondition(st, tj, aifv1.ConditionRunning, p == aifv1.PhaseRunning, reasonOr(p == aifv1.PhaseRunning, aifv1.ReasonWorkersRunning, o.reason), o.message)
	setCondition(st, tj, aifv1.ConditionSucceeded, p == aifv1.PhaseSucceeded, o.reason, o.message)
	setCondition(st, tj, aifv1.ConditionFailed, p == aifv1.PhaseFailed, o.reason, o.message)
	state := progress.Working
	switch p {
	case aifv1.PhaseSucceeded, aifv1.PhaseSuspended:
		state = progress.Done
	case aifv1.PhaseFailed:
		state = progress.Stuck
	}
	if o.reason == aifv1.ReasonChildRefused {
		state = progress.Stuck
	}
	progress.Set(&st.Conditions, tj.Generation, state, o.reason, o.message)
}

func reasonOr(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

// total sums the attempts' GPU-seconds, and estimates energy from each attempt's GPU class power.
func total(st *aifv1.TrainingJobStatus, classes map[string]classes.Class) {
	st.Usage.GPUSeconds, st.Usage.EnergyJoules = 0, 0
	for _, a := range st.Usage.Attempts {
		st.Usage.GPUSeconds += a.GPUSeconds
		st.Usage.EnergyJoules += a.GPUSeconds * int64(classes[a.GPUClass].PowerWatts)
	}
}

// record is the run's evidence, taken when it ends: images (by digest where the runtime reported one), the
// datasets with their verified digests, the GPUs and nodes, the times and the result.
func record(tj *aifv1.TrainingJob, obs Observed, st *aifv1.TrainingJobStatus) *aifv1.RunRecord {
	r := &aifv1.RunRecord{
		Images:         images(tj, obs.Pods),
		GPUs:           st.GPUs,
		StartTime:      st.StartTime,
		CompletionTime: st.CompletionTime,
		Result:         st.Phase,
	}
	if n := len(st.Usage.Attempts); n > 0 {
		r.GPUClass = st.Usage.Attempts[n-1].GPUClass
		r.GPUs = st.Usage.Attempts[n-1].GPUs
	}
	if st.Admission != nil {
		r.Nodes = st.Admission.Nodes
	}
	if r.Nodes == nil {
		r.Nodes = nodesOf(obs.Pods)
	}
	add := func(name string, access aifv1.Access) {
		d := obs.DatasetMounts[name]
		if d == nil {
			r.Datasets = append(r.Datasets, aifv1.DatasetRecord{Name: name, Access: access})
			return
		}
		rec := aifv1.DatasetRecord{Name: name, Filesystem: d.Spec.Filesystem, Path: d.Spec.Path, Access: access, Version: d.Spec.Version}
		if m := d.Status.Manifest; m != nil {
			rec.ManifestDigest = m.Digest
		}
		r.Datasets = append(r.Datasets, rec)
	}
	for _, d := range tj.Spec.Datasets {
		add(d.Name, aifv1.ReadOnly)
	}
	if ck := tj.Spec.Checkpoint; ck != nil {
		add(ck.DatasetMount, aifv1.ReadWrite)
	}
	return r
}

// images lists each container's image by the digest the runtime reported, else by its reference.
func images(tj *aifv1.TrainingJob, pods []corev1.Pod) []string {
	ids := map[string]string{}
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			if id := cs.ImageID; strings.Contains(id, "@sha256:") {
				if _, after, ok := strings.Cut(id, "://"); ok {
					id = after // runtimes prefix the ID with a scheme such as docker-pullable://
				}
				ids[cs.Name] = id
			}
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, c := range tj.Spec.Template.Spec.Containers {
		img := c.Image
		if id, ok := ids[c.Name]; ok {
			img = id
		}
		if !seen[img] {
			seen[img] = true
			out = append(out, img)
		}
	}
	return out
}
