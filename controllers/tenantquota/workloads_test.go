package tenantquota

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"
	utiltestingapi "sigs.k8s.io/kueue/pkg/util/testing/v1beta2"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
	"github.com/aifactory-eu/aifactory-operator/controllers/apply"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
)

// ledgerStep is one write of planLedger as the tests compare it.
type ledgerStep struct {
	Verb   apply.Verb
	Name   string
	Status bool
	What   string
}

// what tells which change a workload write makes.
func what(w apply.Write) string {
	before, after := w.Current.(*kueue.Workload), w.Object.(*kueue.Workload)
	switch {
	case w.Status:
		for _, c := range after.Status.AdmissionChecks {
			if c.Name == aifv1.BudgetCheckName {
				return "check " + string(c.State) + ": " + c.Message
			}
		}
	case after.Spec.Active != nil && !*after.Spec.Active && (before.Spec.Active == nil || *before.Spec.Active):
		return "stop"
	case controllerutil.ContainsFinalizer(before, accounting.AccountingFinalizer) && !controllerutil.ContainsFinalizer(after, accounting.AccountingFinalizer):
		return "release"
	}
	var parts []string
	if after.Annotations[accounting.BaselineAnnotation] != before.Annotations[accounting.BaselineAnnotation] {
		parts = append(parts, "baseline")
	}
	if after.Annotations[accounting.PastSecondsAnnotation] != before.Annotations[accounting.PastSecondsAnnotation] {
		parts = append(parts, "past")
	}
	if !controllerutil.ContainsFinalizer(before, accounting.AccountingFinalizer) && controllerutil.ContainsFinalizer(after, accounting.AccountingFinalizer) {
		parts = append(parts, "finalizer")
	}
	return fmt.Sprint(parts)
}

func steps(plan apply.Plan) []ledgerStep {
	var out []ledgerStep
	for _, w := range plan {
		if !w.Lock {
			panic("a workload write without the resource version lock: " + w.Object.GetName())
		}
		out = append(out, ledgerStep{w.Verb, w.Object.GetName(), w.Status, what(w)})
	}
	return out
}

// The workload writes of a pass, as data: which, in which order, on which side of the status write.
func TestPlanLedger(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	check := func(state kueue.CheckState, msg string) kueue.AdmissionCheckState {
		return kueue.AdmissionCheckState{Name: aifv1.BudgetCheckName, State: state, Message: msg}
	}
	reserved := func(name string) *utiltestingapi.WorkloadWrapper {
		return utiltestingapi.MakeWorkload(name, "medai-a").UID(types.UID(name)).ResourceVersion("rv-"+name).
			ReserveQuotaAt(utiltestingapi.MakeAdmission("tenant-medai").Obj(), now.Add(-time.Minute))
	}
	fin := accounting.AccountingFinalizer
	workloads := []kueue.Workload{
		*reserved("needs-finalizer").AdmissionCheck(check(kueue.CheckStatePending, "")).Obj(),
		*reserved("granted").Finalizers(fin).AdmissionCheck(check(kueue.CheckStatePending, "")).Obj(),
		*reserved("waits").Finalizers(fin).AdmissionCheck(check(kueue.CheckStatePending, "old figures")).Obj(),
		*reserved("waits-unchanged").Finalizers(fin).AdmissionCheck(check(kueue.CheckStatePending, "same figures")).Obj(),
		*reserved("no-entry-yet").Finalizers(fin).Obj(),
		*reserved("over-bound").Finalizers(fin).AdmittedAt(true, now.Add(-time.Hour)).AdmissionCheck(check(kueue.CheckStateReady, grantedMessage)).Obj(),
		*reserved("booked").Finalizers(fin).DeletionTimestamp(now).Obj(),
	}
	res := &accounting.Reservation{
		Grant: []types.UID{"needs-finalizer", "granted", "no-entry-yet"},
		Wait:  map[types.UID]string{"waits": "new figures", "waits-unchanged": "same figures"},
		Stop:  []types.UID{"over-bound"},
	}
	acc := accounting.Account{Release: []types.UID{"booked"}}
	cases := []struct {
		name        string
		in          ledgerInput
		wantPrepare []ledgerStep
		wantAnswer  []ledgerStep
	}{{
		name: "the finalizer before the grant, the stop first, the release last",
		in:   ledgerInput{Workloads: workloads, Account: acc, Reservation: res, Now: now},
		// needs-finalizer is granted by the next pass, on a cache that shows its finalizer.
		wantPrepare: []ledgerStep{{apply.Patch, "needs-finalizer", false, "[finalizer]"}},
		wantAnswer: []ledgerStep{
			{apply.Patch, "over-bound", false, "stop"},
			{apply.Patch, "granted", true, "check Ready: " + grantedMessage},
			{apply.Patch, "waits", true, "check Pending: new figures"},
			{apply.Patch, "booked", false, "release"},
		},
	}, {
		name:        "a tenant without a budget only prepares and releases",
		in:          ledgerInput{Workloads: workloads, Account: acc, Now: now},
		wantPrepare: []ledgerStep{{apply.Patch, "needs-finalizer", false, "[finalizer]"}},
		wantAnswer:  []ledgerStep{{apply.Patch, "booked", false, "release"}},
	}, {
		name: "a tenant going away adds no finalizer, answers nothing and releases every workload",
		in:   ledgerInput{Workloads: workloads, Account: acc, Reservation: res, Leaving: true, Now: now},
		wantAnswer: []ledgerStep{
			{apply.Patch, "granted", false, "release"}, {apply.Patch, "waits", false, "release"},
			{apply.Patch, "waits-unchanged", false, "release"}, {apply.Patch, "no-entry-yet", false, "release"},
			{apply.Patch, "over-bound", false, "release"}, {apply.Patch, "booked", false, "release"},
		},
	}, {
		name: "a period's baseline and the past seconds Kueue may wipe are recorded before the check is answered",
		in: ledgerInput{
			Workloads: []kueue.Workload{
				*reserved("granted").Finalizers(fin).PastAdmittedTime(90).AdmissionCheck(check(kueue.CheckStatePending, "")).Obj(),
			},
			Account:     accounting.Account{Baselines: map[types.UID]accounting.Baseline{"granted": {PeriodStart: now, GPUSeconds: 360}}},
			Reservation: &accounting.Reservation{Grant: []types.UID{"granted"}, Wait: map[types.UID]string{}},
			Now:         now,
		},
		wantPrepare: []ledgerStep{{apply.Patch, "granted", false, "[baseline past]"}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := planLedger(tc.in)
			if diff := cmp.Diff(tc.wantPrepare, steps(got.Prepare)); diff != "" {
				t.Errorf("before the status (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantAnswer, steps(got.Answer)); diff != "" {
				t.Errorf("after the status (-want +got):\n%s", diff)
			}
			if got.More {
				t.Errorf("More = true with %d writes", len(got.Prepare)+len(got.Answer))
			}
		})
	}
}

// A pass writes at most maxWorkloadWrites workloads, whatever their number; a workload the bound leaves
// unprepared is not granted, and the next pass goes on where this one stopped.
func TestPlanLedgerIsBounded(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	n := maxWorkloadWrites + 30
	var wls []kueue.Workload
	acc := accounting.Account{Baselines: map[types.UID]accounting.Baseline{}}
	res := &accounting.Reservation{Wait: map[types.UID]string{}}
	for i := range n {
		name := fmt.Sprintf("wl-%03d", i)
		wls = append(wls, *utiltestingapi.MakeWorkload(name, "medai-a").UID(types.UID(name)).Finalizers(accounting.AccountingFinalizer).
			ReserveQuotaAt(utiltestingapi.MakeAdmission("tenant-medai").Obj(), now).
			AdmissionCheck(kueue.AdmissionCheckState{Name: aifv1.BudgetCheckName, State: kueue.CheckStatePending}).Obj())
		acc.Baselines[types.UID(name)] = accounting.Baseline{PeriodStart: now, GPUSeconds: int64(i)}
		res.Grant = append(res.Grant, types.UID(name))
	}
	got := planLedger(ledgerInput{Workloads: wls, Account: acc, Reservation: res, Now: now})
	if len(got.Prepare)+len(got.Answer) != maxWorkloadWrites || !got.More {
		t.Fatalf("%d writes before and %d after the status, More = %t; want %d in all and More", len(got.Prepare), len(got.Answer), got.More, maxWorkloadWrites)
	}
	if len(got.Answer) != 0 {
		t.Errorf("%d checks answered for workloads whose baseline is not recorded yet", len(got.Answer))
	}
	if last := got.Prepare[len(got.Prepare)-1].Object.GetName(); last != fmt.Sprintf("wl-%03d", maxWorkloadWrites-1) {
		t.Errorf("the bound stopped after %s, want the workloads in their order", last)
	}
	// The next pass reads the baselines that were written.
	for _, w := range got.Prepare {
		wl := w.Object.(*kueue.Workload)
		for i := range wls {
			if wls[i].Name == wl.Name {
				wls[i] = *wl
				delete(acc.Baselines, wl.UID)
			}
		}
	}
	next := planLedger(ledgerInput{Workloads: wls, Account: acc, Reservation: res, Now: now})
	if len(next.Prepare) != n-maxWorkloadWrites || len(next.Answer) != maxWorkloadWrites-len(next.Prepare) || !next.More {
		t.Errorf("next pass: %d before, %d after, More = %t; want %d, %d and More", len(next.Prepare), len(next.Answer), next.More,
			n-maxWorkloadWrites, maxWorkloadWrites-(n-maxWorkloadWrites))
	}
	for _, w := range next.Answer {
		if _, unprepared := acc.Baselines[w.Object.(*kueue.Workload).UID]; unprepared {
			t.Errorf("%s is granted before its baseline is recorded", w.Object.GetName())
		}
	}
}

// What must follow a grant or a stop runs only once the write was made: a grant remembered for a write that
// never happened would count a reservation forever and keep the check from being answered.
func TestPlanLedgerThen(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	wl := utiltestingapi.MakeWorkload("granted", "medai-a").UID("u1").ResourceVersion("41").Finalizers(accounting.AccountingFinalizer).
		ReserveQuotaAt(utiltestingapi.MakeAdmission("tenant-medai").Obj(), now).
		AdmissionCheck(kueue.AdmissionCheckState{Name: aifv1.BudgetCheckName, State: kueue.CheckStatePending}).Obj()
	stopped := utiltestingapi.MakeWorkload("over", "medai-a").UID("u2").Active(true).Obj()
	var grants []string
	var stops []string
	got := planLedger(ledgerInput{
		Workloads:   []kueue.Workload{*wl, *stopped},
		Reservation: &accounting.Reservation{Grant: []types.UID{"u1"}, Stop: []types.UID{"u2"}, Wait: map[types.UID]string{}},
		Bounds:      map[types.UID]int64{"u2": 600},
		Now:         now,
		Granted:     func(uid types.UID, before string) { grants = append(grants, string(uid)+"@"+before) },
		Stopped:     func(wl *kueue.Workload, bound int64) { stops = append(stops, fmt.Sprintf("%s/%d", wl.Name, bound)) },
	})
	if len(grants)+len(stops) != 0 {
		t.Fatalf("hooks ran while planning: %v %v", grants, stops)
	}
	for _, w := range got.Answer {
		if w.Then == nil {
			t.Fatalf("%s has nothing to run after it", w.Object.GetName())
		}
		w.Then()
	}
	if diff := cmp.Diff([]string{"over/600"}, stops); diff != "" {
		t.Errorf("stops (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"u1@41"}, grants); diff != "" {
		t.Errorf("grants remembered against the version they were written on (-want +got):\n%s", diff)
	}
	if a := got.Answer[0].Object.(*kueue.Workload); a.Annotations[aifv1.BoundReachedAnnotation] != "600" {
		t.Errorf("stop annotation = %q, want 600", a.Annotations[aifv1.BoundReachedAnnotation])
	}
	if c := got.Answer[1].Object.(*kueue.Workload).Status.AdmissionChecks[0]; !c.LastTransitionTime.Equal(&metav1.Time{Time: now}) {
		t.Errorf("grant transition time = %v, want %v", c.LastTransitionTime, now)
	}
}

// The whole pass as one plan: the queues, the workloads' accounting, the status that saves the ledger, then what
// depends on the saved ledger, and for a tenant going away its queues last.
func TestDecideOrdersThePass(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	cfg := &configv1.Configuration{}
	configv1.SetDefaults(cfg)
	r := &Reconciler{Config: cfg}
	observed := func() *Observed {
		return &Observed{
			Existing:        map[string]bool{"medai-a": true},
			Present:         map[string]bool{"medai-a": true},
			NamespaceLabels: map[string]map[string]string{"medai-a": nil},
			Classes:         testClasses,
			LocalQueues:     map[string]*kueue.LocalQueue{"medai-old": utiltestingapi.MakeLocalQueue("default", "medai-old").Obj()},
			Workloads: []kueue.Workload{
				*utiltestingapi.MakeWorkload("new", "medai-a").UID("new").Creation(now).ReserveQuotaAt(utiltestingapi.MakeAdmission("tenant-medai").Obj(), now).
					AdmissionCheck(kueue.AdmissionCheckState{Name: aifv1.BudgetCheckName, State: kueue.CheckStatePending}).Obj(),
				*utiltestingapi.MakeWorkload("gone", "medai-a").UID("gone").Creation(now).Finalizers(accounting.AccountingFinalizer).DeletionTimestamp(now).Obj(),
			},
		}
	}
	type step struct{ Verb, Kind, Name string }
	kinds := func(plan apply.Plan) []step {
		var out []step
		for _, w := range plan {
			kind := fmt.Sprintf("%T", w.Object)
			if w.Status {
				kind += " status"
			}
			out = append(out, step{string(w.Verb), kind, w.Object.GetName()})
		}
		return out
	}
	tq := builders.TenantQuota("medai").Namespaces("medai-a").GPUs(builders.GPUClassH100, 8).Budget(100, aifv1.PeriodMonth, aifv1.ExhaustedHold).Obj()
	d, err := r.decide(tq, observed(), now)
	if err != nil {
		t.Fatal(err)
	}
	want := []step{
		{"create", "*v1beta2.AdmissionCheck", aifv1.BudgetCheckName},
		{"create", "*v1beta2.ClusterQueue", "tenant-medai"},
		{"patch", "*v1.PartialObjectMetadata", "medai-a"},
		{"create", "*v1beta2.LocalQueue", "default"},
		{"patch", "*v1beta2.Workload", "new"}, // its finalizer, before any grant
		{"update", "*v1alpha1.TenantQuota status", "medai"},
		{"patch", "*v1beta2.Workload", "gone"},       // released once the ledger that books it is saved
		{"delete", "*v1beta2.LocalQueue", "default"}, // medai-old left the spec and has no work left
	}
	if diff := cmp.Diff(want, kinds(d.Plan)); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	if d.Finalize {
		t.Error("a tenant that stays is finalized")
	}

	leaving := tq.DeepCopy()
	leaving.DeletionTimestamp = &metav1.Time{Time: now}
	obs := observed()
	obs.ClusterQueue = utiltestingapi.MakeClusterQueue("tenant-medai").Obj()
	obs.LocalQueues["medai-a"] = utiltestingapi.MakeLocalQueue("default", "medai-a").Obj()
	d, err = r.decide(leaving, obs, now)
	if err != nil {
		t.Fatal(err)
	}
	want = []step{
		{"update", "*v1beta2.ClusterQueue", "tenant-medai"}, // held
		{"update", "*v1alpha1.TenantQuota status", "medai"},
		{"patch", "*v1beta2.Workload", "gone"},
		{"delete", "*v1beta2.LocalQueue", "default"}, {"delete", "*v1beta2.LocalQueue", "default"},
		{"delete", "*v1beta2.ClusterQueue", "tenant-medai"},
	}
	if diff := cmp.Diff(want, kinds(d.Plan)); diff != "" {
		t.Errorf("plan of a tenant going away (-want +got):\n%s", diff)
	}
	if !d.Finalize {
		t.Error("the plan removes the last queue but the finalizer stays")
	}
	obs.ClusterQueue.Status.ReservingWorkloads = 1
	if d, _ = r.decide(leaving, obs, now); d.Finalize || len(d.Plan) != 3 {
		t.Errorf("with a workload holding quota: Finalize = %t and %d writes, want the queues kept", d.Finalize, len(d.Plan))
	}
}
