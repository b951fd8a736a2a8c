package trainingjob

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount"
	"github.com/aifactory-eu/aifactory-operator/controllers/trainingjob"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// A storage root taken from a tenant while a run reads a dataset under it: the DatasetMount is Stalled at
// once, no new run may use it (a queued run's Job is withdrawn), and its claim and volume stay until the
// running run ends, then go.
func TestRevokedDatasetServesOnlyTheRunningRun(t *testing.T) {
	ctx := context.Background()
	ns := tenant(t, "revoke")
	dsm := builders.DatasetMount(ns, "scans", "/revoke/scans").Obj()
	readyDataset(t, dsm)
	reader := builders.TrainingJob(ns, "reader").Shape(1, 4).Dataset("scans", "/data").Obj()
	create(t, reader)
	job, _ := admittedJob(t, reader, 0)
	if err := framework.SetJobReady(ctx, c, job, 1); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(get(g, ns, "reader").Status.Phase).To(gomega.Equal(aifv1.PhaseRunning))
	})
	// A second run that waits in the queue (more GPUs than the tenant's 16) with a Job of its own.
	waiter := builders.TrainingJob(ns, "waiter").Shape(4, 8).Dataset("scans", "/data").Obj()
	create(t, waiter)
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(get(g, ns, "waiter").Status.Phase).To(gomega.Equal(aifv1.PhaseQueued))
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: trainingjob.JobName(waiter, 0)}, &batchv1.Job{})).To(gomega.Succeed())
	})

	framework.Eventually(t, func(g gomega.Gomega) {
		tq := &aifv1.TenantQuota{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: ns}, tq)).To(gomega.Succeed())
		tq.Spec.Storage = slices.DeleteFunc(tq.Spec.Storage, func(r aifv1.StorageRoot) bool { return r.Filesystem == builders.FilesystemData })
		g.Expect(c.Update(ctx, tq)).To(gomega.Succeed())
	})
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: datasetmount.VolumeName(dsm)}}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: datasetmount.ClaimName(dsm)}}
	framework.Eventually(t, func(g gomega.Gomega) {
		got := &aifv1.DatasetMount{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(dsm), got)).To(gomega.Succeed())
		g.Expect(apimeta.FindStatusCondition(got.Status.Conditions, aifv1.ConditionReady).Reason).To(gomega.Equal(aifv1.ReasonNotPermitted))
		g.Expect(apimeta.IsStatusConditionTrue(got.Status.Conditions, aifv1.ConditionStalled)).To(gomega.BeTrue())
	})
	// A new run may not use it, and the queued one loses its Job before Kueue admits it.
	create(t, builders.TrainingJob(ns, "latecomer").Shape(1, 4).Dataset("scans", "/data").Obj())
	framework.Eventually(t, func(g gomega.Gomega) {
		for _, name := range []string{"latecomer", "waiter"} {
			got := get(g, ns, name)
			g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhasePending), name)
			g.Expect(got.Status.Reason).To(gomega.Equal(aifv1.ReasonDatasetRevoked), name)
			g.Expect(got.Status.Message).To(gomega.ContainSubstring("NotPermitted"), name)
		}
		queued := &batchv1.Job{}
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: trainingjob.JobName(waiter, 0)}, queued)
		g.Expect(apierrors.IsNotFound(err) || err == nil && queued.DeletionTimestamp != nil).To(gomega.BeTrue(), "the queued Job is withdrawn: %v", err)
	})
	// The running run keeps reading: claim and volume are still there, not being deleted.
	for _, o := range []client.Object{pv, pvc} {
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil || o.GetDeletionTimestamp() != nil {
			t.Fatalf("%s went while a run still reads it: %v, deleted at %v", o.GetName(), err, o.GetDeletionTimestamp())
		}
	}
	if err := framework.CompleteJob(ctx, c, job); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, func(g gomega.Gomega) {
		g.Expect(get(g, ns, "reader").Status.Phase).To(gomega.Equal(aifv1.PhaseSucceeded))
	})
	framework.Gone(t, c, pvc, pv)
}

// A dataset folder swapped for a symbolic link after its DatasetMount became Ready does not reach a run: the
// path is resolved again before each attempt's Job is made.
func TestPathsAreResolvedBeforeEachAttempt(t *testing.T) {
	ctx := context.Background()
	ns := tenant(t, "relink")
	dsm := builders.DatasetMount(ns, "cohort", "/relink/cohort").Obj()
	readyDataset(t, dsm)
	framework.Eventually(t, func(g gomega.Gomega) {
		got := &aifv1.DatasetMount{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(dsm), got)).To(gomega.Succeed())
		g.Expect(apimeta.IsStatusConditionTrue(got.Status.Conditions, aifv1.ConditionReady)).To(gomega.BeTrue())
	})
	root := cfg.Filesystems[0].HostPath.Root
	other := filepath.Join(root, "someone-else", "cohort")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(root, "relink", "cohort")
	if err := os.Remove(folder); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, folder); err != nil {
		t.Fatal(err)
	}
	tj := builders.TrainingJob(ns, "through-link").Shape(1, 4).Dataset("cohort", "/data").Obj()
	create(t, tj)
	framework.Eventually(t, func(g gomega.Gomega) {
		got := get(g, ns, "through-link")
		g.Expect(got.Status.Phase).To(gomega.Equal(aifv1.PhasePending))
		g.Expect(got.Status.Reason).To(gomega.Equal(aifv1.ReasonDatasetRevoked))
		g.Expect(got.Status.Message).To(gomega.ContainSubstring("/relink/cohort is a symbolic link"))
	})
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: trainingjob.JobName(tj, 0)}, &batchv1.Job{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("a Job was made for a dataset path through a symbolic link: %v", err)
	}
}
