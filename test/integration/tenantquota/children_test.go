package tenantquota

import (
	"context"
	"testing"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"
	utiltestingapi "sigs.k8s.io/kueue/pkg/util/testing/v1beta2"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/accounting"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/controllers/tenantquota"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// A tenant's Kueue objects follow its TenantQuota: hand edits are reverted, deleted children come back, a
// namespace that does not exist yet is picked up when it appears, and a quiet tenant causes no writes.
func TestChildrenAreKeptInLine(t *testing.T) {
	ctx := context.Background()
	startOperator(t, testConfig(), newClock())
	const name = "inline"
	tq := builders.TenantQuota(name).Namespaces(name, "inline-later").Cohort("inline-cohort").
		GPUs(builders.GPUClassH100, 16).GPUs(builders.GPUClassMIG, 14).FairSharingWeight("2").Obj()
	if err := env.CreateNamespaces(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, tq); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := tenant(t, name)
		ready := condition(tq, aifv1.ConditionReady)
		g.Expect(ready.Reason).To(gomega.Equal(aifv1.ReasonNamespaceMissing))
		g.Expect(ready.Message).To(gomega.ContainSubstring("inline-later"))
		g.Expect(ready.ObservedGeneration).To(gomega.Equal(tq.Generation))
		cq := clusterQueue(g, name)
		g.Expect(cq.Spec.CohortName).To(gomega.Equal(kueue.CohortReference("inline-cohort")))
		g.Expect(cq.Spec.NamespaceSelector.MatchExpressions[0].Values).To(gomega.Equal([]string{name, "inline-later"}))
		g.Expect(cq.Spec.ResourceGroups).To(gomega.HaveLen(1))
		g.Expect(cq.Spec.ResourceGroups[0].CoveredResources).To(gomega.ConsistOf(
			corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage, corev1.ResourceName("nvidia.com/gpu"), corev1.ResourceName(builders.MIGResource)))
		g.Expect(cq.Spec.FairSharing.Weight.String()).To(gomega.Equal("2"))
		g.Expect(cq.OwnerReferences).To(gomega.ConsistOf(gomega.HaveField("UID", tq.UID)))
	})

	// The namespace appears: its LocalQueue follows and the tenant is ready.
	if err := env.CreateNamespaces(ctx, "inline-later"); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := tenant(t, name)
		g.Expect(condition(tq, aifv1.ConditionReady).Status).To(gomega.Equal(metav1.ConditionTrue))
		// The last thing the operator settles: both namespaces labelled and probed for Kueue's gate (which this
		// suite's Kueue, running without its webhooks, does not set).
		g.Expect(condition(tq, aifv1.ConditionIsolated).Reason).To(gomega.Equal(aifv1.ReasonPodsNotGated))
		// The status lists what the operator has seen, so each namespace's LocalQueue once its creation was
		// observed.
		g.Expect(tq.Status.Namespaces).To(gomega.HaveEach(gomega.HaveField("LocalQueue", "default")))
		lq := &kueue.LocalQueue{}
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "inline-later", Name: "default"}, lq)).To(gomega.Succeed())
		g.Expect(lq.Spec.ClusterQueue).To(gomega.Equal(kueue.ClusterQueueReference(tenantquota.ClusterQueueName(name))))
	})

	// Nothing changes: nothing is written.
	quiet := func() (string, string) {
		var cq kueue.ClusterQueue
		_ = c.Get(ctx, client.ObjectKey{Name: tenantquota.ClusterQueueName(name)}, &cq)
		return cq.ResourceVersion, tenant(t, name).ResourceVersion
	}
	cqVersion, tqVersion := quiet()
	framework.Consistently(t, func(g gomega.Gomega) {
		cv, tv := quiet()
		g.Expect(cv).To(gomega.Equal(cqVersion), "ClusterQueue rewritten although nothing changed")
		g.Expect(tv).To(gomega.Equal(tqVersion), "TenantQuota rewritten although nothing changed")
	})

	// A hand edit of the ClusterQueue is reverted.
	cq := &kueue.ClusterQueue{}
	if err := c.Get(ctx, client.ObjectKey{Name: tenantquota.ClusterQueueName(name)}, cq); err != nil {
		t.Fatal(err)
	}
	cq.Spec.ResourceGroups[0].Flavors[0].Resources[0].NominalQuota = resource.MustParse("999")
	cq.Spec.StopPolicy = ptr.To(kueue.HoldAndDrain)
	cq.Spec.CohortName = "elsewhere"
	if err := c.Update(ctx, cq); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		cq := clusterQueue(g, name)
		g.Expect(*cq.Spec.StopPolicy).To(gomega.Equal(kueue.None))
		g.Expect(cq.Spec.CohortName).To(gomega.Equal(kueue.CohortReference("inline-cohort")))
		for _, r := range cq.Spec.ResourceGroups[0].Flavors[0].Resources {
			g.Expect(r.NominalQuota.String()).NotTo(gomega.Equal("999"))
		}
	})

	// A deleted LocalQueue comes back.
	lq := utiltestingapi.MakeLocalQueue("default", name).Obj()
	if err := c.Delete(ctx, lq); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		fresh := &kueue.LocalQueue{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(lq), fresh)).To(gomega.Succeed())
		g.Expect(fresh.UID).NotTo(gomega.Equal(lq.UID))
	})
}

// A namespace removed from the tenant keeps its LocalQueue while the tenant's work waits or runs there.
func TestRemovedNamespaceWaitsForItsWork(t *testing.T) {
	ctx := context.Background()
	startOperator(t, testConfig(), newClock())
	const name = "shrink"
	setup(t, builders.TenantQuota(name).Namespaces(name, "shrink-old").GPUs(builders.GPUClassH100, 16).Obj())
	job := submit(t, h100Job("shrink-old", "still-running", 1))
	admitted(t, job)

	updateTenant(t, name, func(tq *aifv1.TenantQuota) { tq.Spec.Namespaces = []string{name} })
	framework.Eventually(t, func(g gomega.Gomega) {
		ready := condition(tenant(t, name), aifv1.ConditionReady)
		g.Expect(ready.Reason).To(gomega.Equal(aifv1.ReasonNamespaceInUse))
		g.Expect(ready.Message).To(gomega.ContainSubstring("shrink-old (1 workloads)"))
		g.Expect(clusterQueue(g, name).Spec.NamespaceSelector.MatchExpressions[0].Values).To(gomega.Equal([]string{name}))
	})
	framework.Consistently(t, func(g gomega.Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: "shrink-old", Name: "default"}, &kueue.LocalQueue{})).To(gomega.Succeed())
	})

	complete(t, job) // simulated: no Job controller in envtest
	framework.Eventually(t, func(g gomega.Gomega) {
		err := c.Get(ctx, client.ObjectKey{Namespace: "shrink-old", Name: "default"}, &kueue.LocalQueue{})
		g.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "LocalQueue of the removed namespace should go")
		g.Expect(condition(tenant(t, name), aifv1.ConditionReady).Status).To(gomega.Equal(metav1.ConditionTrue))
	})
}

// Deleting a tenant holds new admissions, waits for admitted work, then removes its queues, its finalizer and
// the accounting finalizers on its workloads; a tenant re-created under the same name starts afresh.
func TestTenantDeletionWaitsForWorkAndLeavesNothing(t *testing.T) {
	ctx := context.Background()
	startOperator(t, testConfig(), newClock())
	const name = "leaving"
	setup(t, builders.TenantQuota(name).GPUs(builders.GPUClassH100, 8).Obj())
	running := submit(t, h100Job(name, "running", 1))
	admitted(t, running)
	queued := submit(t, h100Job(name, "queued", 1))
	waitsForQuota(t, queued)

	if err := c.Delete(ctx, tenant(t, name)); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		tq := tenant(t, name)
		g.Expect(condition(tq, aifv1.ConditionReady).Reason).To(gomega.Equal(aifv1.ReasonTerminating))
		g.Expect(*clusterQueue(g, name).Spec.StopPolicy).To(gomega.Equal(kueue.Hold))
	})
	var runningVersion string
	framework.Eventually(t, func(g gomega.Gomega) {
		wl := workload(g, running)
		g.Expect(wl.Finalizers).NotTo(gomega.ContainElement(accounting.AccountingFinalizer))
		runningVersion = wl.ResourceVersion
	})
	framework.Consistently(t, func(g gomega.Gomega) {
		g.Expect(tenant(t, name).Finalizers).To(gomega.ContainElement(aifv1.CleanupFinalizer))
		_, err := framework.AdmittedAt(workload(g, queued))
		g.Expect(err).To(gomega.HaveOccurred())
		g.Expect(workload(g, running).ResourceVersion).To(gomega.Equal(runningVersion), "the running workload must not be rewritten over and over")
	})

	complete(t, running) // simulated: no Job controller in envtest
	defer func() {
		if !t.Failed() {
			return
		}
		cq := &kueue.ClusterQueue{}
		err := c.Get(ctx, client.ObjectKey{Name: tenantquota.ClusterQueueName(name)}, cq)
		t.Logf("DEBUG cq err=%v finalizers=%v deletion=%v reserving=%d admitted=%d", err, cq.Finalizers, cq.DeletionTimestamp, cq.Status.ReservingWorkloads, cq.Status.AdmittedWorkloads)
		tq := &aifv1.TenantQuota{}
		err = c.Get(ctx, client.ObjectKey{Name: name}, tq)
		t.Logf("DEBUG tq err=%v finalizers=%v conds=%v", err, tq.Finalizers, tq.Status.Conditions)
		lq := &kueue.LocalQueue{}
		err = c.Get(ctx, client.ObjectKey{Namespace: name, Name: "default"}, lq)
		t.Logf("DEBUG lq err=%v finalizers=%v deletion=%v", err, lq.Finalizers, lq.DeletionTimestamp)
		var wls kueue.WorkloadList
		_ = c.List(ctx, &wls, client.InNamespace(name))
		for _, wl := range wls.Items {
			t.Logf("DEBUG wl %s finalizers=%v deletion=%v conds=%v", wl.Name, wl.Finalizers, wl.DeletionTimestamp, wl.Status.Conditions)
		}
	}()
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Name: name}, &aifv1.TenantQuota{}))).To(gomega.BeTrue())
		g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Name: tenantquota.ClusterQueueName(name)}, &kueue.ClusterQueue{}))).To(gomega.BeTrue())
		g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Namespace: name, Name: "default"}, &kueue.LocalQueue{}))).To(gomega.BeTrue())
		var wls kueue.WorkloadList
		g.Expect(c.List(ctx, &wls, client.InNamespace(name))).To(gomega.Succeed())
		for _, wl := range wls.Items {
			g.Expect(wl.Finalizers).NotTo(gomega.ContainElement(accounting.AccountingFinalizer))
		}
	})

	framework.Consistently(t, func(g gomega.Gomega) {
		err := c.Get(ctx, client.ObjectKey{Name: tenantquota.ClusterQueueName(name)}, &kueue.ClusterQueue{})
		g.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "a late pass over the deleted tenant must not re-create its ClusterQueue")
	})

	// Re-created under the same name: new queues owned by the new object.
	fresh := builders.TenantQuota(name).GPUs(builders.GPUClassH100, 8).Obj()
	if err := c.Create(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(clusterQueue(g, name).OwnerReferences).To(gomega.ConsistOf(gomega.HaveField("UID", fresh.UID)))
		g.Expect(condition(tenant(t, name), aifv1.ConditionReady).Status).To(gomega.Equal(metav1.ConditionTrue))
	})
}

// A namespace claimed by an older tenant is not given to a newer one.
func TestNamespaceBelongsToTheOlderTenant(t *testing.T) {
	startOperator(t, testConfig(), newClock())
	setup(t, builders.TenantQuota("first-owner").Namespaces("shared-ns").Obj())
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(condition(tenant(t, "first-owner"), aifv1.ConditionReady).Status).To(gomega.Equal(metav1.ConditionTrue))
	})
	setup(t, builders.TenantQuota("second-owner").Namespaces("shared-ns").Obj())
	framework.Eventually(t, func(g gomega.Gomega) {
		ready := condition(tenant(t, "second-owner"), aifv1.ConditionReady)
		g.Expect(ready.Reason).To(gomega.Equal(aifv1.ReasonNamespaceConflict))
		g.Expect(ready.Message).To(gomega.ContainSubstring("shared-ns (TenantQuota first-owner)"))
		g.Expect(clusterQueue(g, "second-owner").Spec.NamespaceSelector.MatchExpressions[0].Operator).To(gomega.Equal(metav1.LabelSelectorOpDoesNotExist))
		lq := &kueue.LocalQueue{}
		g.Expect(c.Get(context.Background(), client.ObjectKey{Namespace: "shared-ns", Name: "default"}, lq)).To(gomega.Succeed())
		g.Expect(lq.Labels[aifv1.TenantLabel]).To(gomega.Equal("first-owner"))
	})
}

// GPU classes: configured ones become flavors; a class dropped from the configuration goes only once no
// ClusterQueue uses it; discovered classes come from GPU Feature Discovery labels and MIG capacity.
func TestGPUClassFlavors(t *testing.T) {
	ctx := context.Background()
	withSpare := testConfig()
	withSpare.GPUClasses = append(withSpare.GPUClasses, configv1.GPUClass{Name: "l40s-48gb", NodeLabels: map[string]string{"nvidia.com/gpu.product": "NVIDIA-L40S"}})
	op := startOperator(t, withSpare, newClock())
	setup(t, builders.TenantQuota("flavor-user").GPUs("l40s-48gb", 4).Obj())
	framework.Eventually(t, func(g gomega.Gomega) {
		rf := &kueue.ResourceFlavor{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: "l40s-48gb"}, rf)).To(gomega.Succeed())
		g.Expect(rf.Spec.NodeLabels).To(gomega.Equal(map[string]string{"nvidia.com/gpu.product": "NVIDIA-L40S"}))
		g.Expect(rf.Spec.Tolerations).To(gomega.ConsistOf(configv1.DefaultGPUToleration()))
		g.Expect(condition(tenant(t, "flavor-user"), aifv1.ConditionReady).Status).To(gomega.Equal(metav1.ConditionTrue))
	})
	if err := op.Stop(); err != nil {
		t.Fatal(err)
	}

	// The class leaves the configuration while a ClusterQueue uses it: the flavor stays.
	discovery := testConfig()
	discovery.Discovery.Enabled = true
	startOperator(t, discovery, newClock())
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gpu-node-b200", Labels: map[string]string{
		classes.ProductLabel: "NVIDIA-B200", classes.MemoryLabel: "183359"}}}
	if err := c.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	node.Status.Capacity = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("8"), "nvidia.com/mig-1g.23gb": resource.MustParse("7")}
	if err := c.Status().Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		for _, n := range []string{"nvidia-b200", "nvidia-b200-mig-1g-23gb"} {
			rf := &kueue.ResourceFlavor{}
			g.Expect(c.Get(ctx, client.ObjectKey{Name: n}, rf)).To(gomega.Succeed(), n)
			g.Expect(rf.Spec.NodeLabels).To(gomega.HaveKeyWithValue(classes.ProductLabel, "NVIDIA-B200"))
		}
	})
	framework.Consistently(t, func(g gomega.Gomega) {
		rf := &kueue.ResourceFlavor{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: "l40s-48gb"}, rf)).To(gomega.Succeed())
		g.Expect(rf.DeletionTimestamp).To(gomega.BeNil())
	})

	// Once no ClusterQueue uses it, it goes.
	if err := c.Delete(ctx, tenant(t, "flavor-user")); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		err := c.Get(ctx, client.ObjectKey{Name: "l40s-48gb"}, &kueue.ResourceFlavor{})
		g.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "unused flavor of a dropped class should go")
	})
}

// A ClusterQueue deleted by hand comes back, and a tenant whose namespace never appeared goes away at once.
func TestMoreDeletionOrders(t *testing.T) {
	ctx := context.Background()
	startOperator(t, testConfig(), newClock())
	setup(t, builders.TenantQuota("hand-deleted").Obj())
	var uid string
	framework.Eventually(t, func(g gomega.Gomega) { uid = string(clusterQueue(g, "hand-deleted").UID) })
	if err := c.Delete(ctx, &kueue.ClusterQueue{ObjectMeta: metav1.ObjectMeta{Name: tenantquota.ClusterQueueName("hand-deleted")}}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(string(clusterQueue(g, "hand-deleted").UID)).NotTo(gomega.Equal(uid))
	})

	ghost := builders.TenantQuota("ghost").Namespaces("never-created").Obj()
	if err := c.Create(ctx, ghost); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(condition(tenant(t, "ghost"), aifv1.ConditionReady).Reason).To(gomega.Equal(aifv1.ReasonNamespaceMissing))
		g.Expect(tenant(t, "ghost").Finalizers).To(gomega.ContainElement(aifv1.CleanupFinalizer))
	})
	if err := c.Delete(ctx, ghost); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Name: "ghost"}, &aifv1.TenantQuota{}))).To(gomega.BeTrue())
		g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKey{Name: tenantquota.ClusterQueueName("ghost")}, &kueue.ClusterQueue{}))).To(gomega.BeTrue())
	})
}

// A child write the API server turns down shows in the tenant's status, naming the write and giving the API
// server's answer; the tenant's other queues are still made, and the write succeeds once the obstacle is gone.
// Here a LocalQueue that someone else made holds the name of the tenant's queue in one of its namespaces.
func TestRefusedChildShowsInTheStatus(t *testing.T) {
	ctx := context.Background()
	startOperator(t, testConfig(), newClock())
	const name = "squatted"
	if err := env.CreateNamespaces(ctx, name); err != nil {
		t.Fatal(err)
	}
	foreign := utiltestingapi.MakeLocalQueue("default", name).ClusterQueue("elsewhere").Obj()
	if err := c.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	setup(t, builders.TenantQuota(name).GPUs(builders.GPUClassH100, 8).Obj())
	framework.Eventually(t, func(g gomega.Gomega) {
		ready := condition(tenant(t, name), aifv1.ConditionReady)
		g.Expect(ready.Status).To(gomega.Equal(metav1.ConditionFalse))
		g.Expect(ready.Reason).To(gomega.Equal(aifv1.ReasonWriteFailed))
		g.Expect(ready.Message).To(gomega.HavePrefix("create LocalQueue " + name + "/default: "))
		g.Expect(ready.Message).To(gomega.ContainSubstring("already exists"))
		clusterQueue(g, name) // the writes before the failed one were made
	})
	got := &kueue.LocalQueue{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(foreign), got); err != nil || got.Spec.ClusterQueue != "elsewhere" {
		t.Fatalf("the existing LocalQueue was changed: %v %v", got.Spec, err)
	}

	if err := c.Delete(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(condition(tenant(t, name), aifv1.ConditionReady).Status).To(gomega.Equal(metav1.ConditionTrue))
		lq := &kueue.LocalQueue{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(foreign), lq)).To(gomega.Succeed())
		g.Expect(lq.Spec.ClusterQueue).To(gomega.Equal(kueue.ClusterQueueReference(tenantquota.ClusterQueueName(name))))
	})
}
