package tenantquota

import (
	"fmt"
	"strconv"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
	"github.com/aifactory-eu/aifactory-operator/controllers/apply"
)

// maxWorkloadWrites bounds the writes one pass makes to the tenant's workloads, so that a pass stays short
// whatever the number of workloads (a period's start records a baseline on each of them). What the bound leaves
// is written by the next passes, which the writes' own events and moreWritesAfter bring.
const maxWorkloadWrites = 100

// moreWritesAfter is when a pass that left workload writes to the next one runs again at the latest.
const moreWritesAfter = time.Second

// grantedMessage is the budget check's message once the run's reservation is made.
const grantedMessage = "the run's GPU-hours are reserved in its tenant's budget"

// ledgerInput is what the workload writes of a pass are decided from.
type ledgerInput struct {
	Workloads []kueue.Workload
	Account   accounting.Account
	// Reservation is the budget check's verdict; nil for a tenant without a budget.
	Reservation *accounting.Reservation
	Bounds      map[types.UID]int64
	// Leaving is true while the TenantQuota is being deleted: no finalizer is added, no check answered, and
	// every accounting finalizer goes once the ledger is saved.
	Leaving bool
	Now     time.Time
	// Granted and Stopped run after a grant or a stop was written (see apply.Write.Then); either may be nil.
	Granted func(uid types.UID, before string)
	Stopped func(wl *kueue.Workload, bound int64)
}

// ledgerWrites are the workload writes of a pass, on either side of the status write that saves the ledger.
type ledgerWrites struct {
	// Prepare records period baselines and past seconds and adds the accounting finalizer: it is made before
	// the status write, and a workload that needs any of it is not granted in this pass.
	Prepare apply.Plan
	// Answer is made after the status write: stops at the run bound, then budget check answers, then the
	// release of accounting finalizers whose seconds the saved ledger holds.
	Answer apply.Plan
	// More is true when maxWorkloadWrites left writes for the next pass.
	More bool
}

// planLedger decides the workload writes of a pass, at most maxWorkloadWrites of them. The order keeps the
// budget hard across a crash: a workload's accounting is durable before its budget check turns Ready, and the
// ledger that books a workload is saved before its finalizer is released. Stops come before grants, so that the
// bound never delays one.
func planLedger(in ledgerInput) ledgerWrites {
	var out ledgerWrites
	room := maxWorkloadWrites
	add := func(plan *apply.Plan, w apply.Write) {
		if room == 0 {
			out.More = true
			return
		}
		room--
		*plan = append(*plan, w)
	}
	unprepared := map[types.UID]bool{}
	for i := range in.Workloads {
		if w, ok := preparation(&in.Workloads[i], in.Account.Baselines, !in.Leaving); ok {
			unprepared[in.Workloads[i].UID] = true
			add(&out.Prepare, w)
		}
	}
	if res := in.Reservation; res != nil && !in.Leaving {
		stop, grant := set(res.Stop), set(res.Grant)
		for i := range in.Workloads {
			if w, ok := stopWrite(&in.Workloads[i], stop, in.Bounds, in.Stopped); ok {
				add(&out.Answer, w)
			}
		}
		for i := range in.Workloads {
			wl := &in.Workloads[i]
			if w, ok := checkWrite(wl, grant[wl.UID] && !unprepared[wl.UID], res.Wait, in.Now, in.Granted); ok {
				add(&out.Answer, w)
			}
		}
	}
	release := set(in.Account.Release)
	for i := range in.Workloads {
		wl := &in.Workloads[i]
		if (in.Leaving || release[wl.UID]) && controllerutil.ContainsFinalizer(wl, accounting.AccountingFinalizer) {
			want := wl.DeepCopy()
			controllerutil.RemoveFinalizer(want, accounting.AccountingFinalizer)
			add(&out.Answer, apply.Write{Verb: apply.Patch, Lock: true, Object: want, Current: wl, Why: "the saved ledger books the workload"})
		}
	}
	return out
}

// preparation is the patch that records the workload's period baseline and the past seconds Kueue may wipe,
// and, while the tenant counts its work, adds the accounting finalizer to a workload that holds quota or has
// held GPUs, so that its seconds reach the ledger even if it is deleted while the operator is down. A workload
// gets the finalizer while Kueue has reserved its quota, before the budget check lets Kueue admit it.
func preparation(wl *kueue.Workload, baselines map[types.UID]accounting.Baseline, counting bool) (apply.Write, bool) {
	b, record := baselines[wl.UID]
	used := apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadQuotaReserved) ||
		apimeta.IsStatusConditionTrue(wl.Status.Conditions, kueue.WorkloadAdmitted) || wl.Status.AccumulatedPastExecutionTimeSeconds != nil
	addFinalizer := counting && used && wl.DeletionTimestamp == nil && !controllerutil.ContainsFinalizer(wl, accounting.AccountingFinalizer)
	past, recordPast := pastToRecord(wl)
	if !record && !addFinalizer && !recordPast {
		return apply.Write{}, false
	}
	want := wl.DeepCopy()
	if record {
		metav1.SetMetaDataAnnotation(&want.ObjectMeta, accounting.BaselineAnnotation, b.String())
	}
	if recordPast {
		metav1.SetMetaDataAnnotation(&want.ObjectMeta, accounting.PastSecondsAnnotation, past)
	}
	if addFinalizer {
		controllerutil.AddFinalizer(want, accounting.AccountingFinalizer)
	}
	return apply.Write{Verb: apply.Patch, Lock: true, Object: want, Current: wl, Why: "the workload's accounting"}, true
}

// pastToRecord is the admitted seconds to record on a workload whose budget check waits for an answer, before
// it is granted: what Kueue's maximum execution time would wipe (see accounting.PastSeconds). Once Kueue has stopped
// the workload there, the record is what accounting.PastSeconds adds back and stays as it is: recording the sum again
// would count the last admission once more on every pass.
func pastToRecord(wl *kueue.Workload) (string, bool) {
	waiting := false
	for _, c := range wl.Status.AdmissionChecks {
		waiting = waiting || (c.Name == aifv1.BudgetCheckName && c.State == kueue.CheckStatePending)
	}
	if !waiting || wl.DeletionTimestamp != nil || accounting.StoppedAtMaxExecution(wl) {
		return "", false
	}
	past := strconv.FormatInt(int64(ptr.Deref(wl.Status.AccumulatedPastExecutionTimeSeconds, 0)), 10)
	if past == "0" && wl.Annotations[accounting.PastSecondsAnnotation] == "" {
		return "", false
	}
	return past, wl.Annotations[accounting.PastSecondsAnnotation] != past
}

// stopWrite deactivates an admitted workload that reached its run bound and that Kueue does not stop by itself
// (no max-exec-time label, or one beyond the tenant's maximum): its reservation is spent, and the budget is only
// hard if every run ends at its bound.
func stopWrite(wl *kueue.Workload, stop map[types.UID]bool, bounds map[types.UID]int64, stopped func(*kueue.Workload, int64)) (apply.Write, bool) {
	if !stop[wl.UID] || !ptr.Deref(wl.Spec.Active, true) {
		return apply.Write{}, false
	}
	want := wl.DeepCopy()
	want.Spec.Active = ptr.To(false)
	metav1.SetMetaDataAnnotation(&want.ObjectMeta, aifv1.BoundReachedAnnotation, fmt.Sprint(bounds[wl.UID]))
	w := apply.Write{Verb: apply.Patch, Lock: true, Object: want, Current: wl, Why: "the run reached its bound"}
	if stopped != nil {
		w.Then = func() { stopped(want, bounds[wl.UID]) }
	}
	return w, true
}

// checkWrite answers the budget check of a workload that accounting.Reserve judged: Ready when granted (and
// its accounting is durable), Pending with the figures when it waits and the message changed. A granted check
// is never taken back, and a workload whose entry Kueue has not added yet gets nothing.
func checkWrite(wl *kueue.Workload, grant bool, wait map[types.UID]string, now time.Time, granted func(types.UID, string)) (apply.Write, bool) {
	state, msg := kueue.CheckStateReady, grantedMessage
	if !grant {
		var waits bool
		if msg, waits = wait[wl.UID]; !waits {
			return apply.Write{}, false
		}
		state = kueue.CheckStatePending
	}
	i := -1
	for j := range wl.Status.AdmissionChecks {
		if wl.Status.AdmissionChecks[j].Name == aifv1.BudgetCheckName {
			i = j
		}
	}
	if i < 0 {
		return apply.Write{}, false
	}
	if c := wl.Status.AdmissionChecks[i]; c.State == kueue.CheckStateReady || (c.State == state && c.Message == msg) {
		return apply.Write{}, false
	}
	want := wl.DeepCopy()
	c := &want.Status.AdmissionChecks[i]
	if c.State != state {
		c.LastTransitionTime = metav1.NewTime(now)
	}
	c.State, c.Message = state, msg
	w := apply.Write{Verb: apply.Patch, Status: true, Lock: true, Object: want, Current: wl, Why: "the budget check's answer"}
	if state == kueue.CheckStateReady && granted != nil {
		uid, before := wl.UID, wl.ResourceVersion
		w.Then = func() { granted(uid, before) }
	}
	return w, true
}

func set(uids []types.UID) map[types.UID]bool {
	out := make(map[types.UID]bool, len(uids))
	for _, uid := range uids {
		out[uid] = true
	}
	return out
}
