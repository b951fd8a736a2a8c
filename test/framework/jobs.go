package framework

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kueue "sigs.k8s.io/kueue/apis/kueue/v1beta2"
)

// WorkloadOf returns the Kueue workload that Kueue created for a Job.
func WorkloadOf(ctx context.Context, c client.Client, job *batchv1.Job) (*kueue.Workload, error) {
	var wls kueue.WorkloadList
	if err := c.List(ctx, &wls, client.InNamespace(job.Namespace)); err != nil {
		return nil, err
	}
	for i := range wls.Items {
		for _, o := range wls.Items[i].OwnerReferences {
			if o.UID == job.UID {
				return &wls.Items[i], nil
			}
		}
	}
	return nil, fmt.Errorf("no workload for job %s/%s yet", job.Namespace, job.Name)
}

// AdmittedAt returns when Kueue admitted the workload, or an error while it is not admitted.
func AdmittedAt(wl *kueue.Workload) (time.Time, error) {
	c := apimeta.FindStatusCondition(wl.Status.Conditions, kueue.WorkloadAdmitted)
	if c == nil || c.Status != metav1.ConditionTrue {
		return time.Time{}, fmt.Errorf("workload %s is not admitted: %s", wl.Name, PendingMessage(wl))
	}
	return c.LastTransitionTime.UTC(), nil
}

// PendingMessage is Kueue's reason for not admitting the workload.
func PendingMessage(wl *kueue.Workload) string {
	if c := apimeta.FindStatusCondition(wl.Status.Conditions, kueue.WorkloadQuotaReserved); c != nil {
		return c.Reason + ": " + c.Message
	}
	return "no QuotaReserved condition"
}

// CompleteJob marks an admitted Job as succeeded, as the Job controller would once its pods finished.
// envtest runs no Job controller and no kubelet, so this is simulated; Kueue then finishes the workload.
func CompleteJob(ctx context.Context, c client.Client, job *batchv1.Job) error {
	return finishJob(ctx, c, job, func(st *batchv1.JobStatus, now metav1.Time) {
		n := ptr.Deref(job.Spec.Completions, 1)
		st.CompletionTime = &now
		st.Succeeded = n
		st.CompletedIndexes = "0"
		if n > 1 {
			st.CompletedIndexes = fmt.Sprintf("0-%d", n-1)
		}
		st.Conditions = append(st.Conditions, jobCondition(batchv1.JobSuccessCriteriaMet, "CompletionsReached", "", now),
			jobCondition(batchv1.JobComplete, "CompletionsReached", "", now))
	})
}

// FailJob marks an admitted Job as failed, as the Job controller would once a pod failed with the Job's
// backoffLimit of 0. envtest runs no Job controller, so this is simulated; Kueue then finishes the workload.
func FailJob(ctx context.Context, c client.Client, job *batchv1.Job, message string) error {
	return finishJob(ctx, c, job, func(st *batchv1.JobStatus, now metav1.Time) {
		st.Failed = 1
		st.Conditions = append(st.Conditions, jobCondition(batchv1.JobFailureTarget, "BackoffLimitExceeded", message, now),
			jobCondition(batchv1.JobFailed, "BackoffLimitExceeded", message, now))
	})
}

// finishJob reads an admitted Job, ends its pods' counts and lets end write the outcome, as the Job controller
// would.
func finishJob(ctx context.Context, c client.Client, job *batchv1.Job, end func(*batchv1.JobStatus, metav1.Time)) error {
	if err := c.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
		return err
	}
	if ptr.Deref(job.Spec.Suspend, false) {
		return fmt.Errorf("job %s is still suspended", job.Name)
	}
	now := metav1.Now()
	if job.Status.StartTime == nil {
		job.Status.StartTime = ptr.To(metav1.NewTime(now.Add(-time.Second)))
	}
	job.Status.Active, job.Status.Ready, job.Status.Terminating = 0, ptr.To[int32](0), ptr.To[int32](0)
	end(&job.Status, now)
	return c.Status().Update(ctx, job)
}

func jobCondition(t batchv1.JobConditionType, reason, message string, now metav1.Time) batchv1.JobCondition {
	return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastTransitionTime: now, LastProbeTime: now}
}

// SetJobReady sets how many of an admitted Job's pods are ready, as the Job controller would report once the
// kubelet ran them. envtest runs neither, so this is simulated.
func SetJobReady(ctx context.Context, c client.Client, job *batchv1.Job, ready int32) error {
	if err := c.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
		return err
	}
	if ptr.Deref(job.Spec.Suspend, false) {
		return fmt.Errorf("job %s is still suspended", job.Name)
	}
	if job.Status.StartTime == nil {
		job.Status.StartTime = ptr.To(metav1.Now())
	}
	job.Status.Active, job.Status.Ready = ready, ptr.To(ready)
	return c.Status().Update(ctx, job)
}

// Unprotect removes the storage-protection finalizers from deleted volumes and claims, as kube-controller-
// manager's pv-protection and pvc-protection controllers (not running in envtest) do once nothing uses them.
func Unprotect(t testing.TB, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		Eventually(t, func(g gomega.Gomega) {
			err := c.Get(context.Background(), client.ObjectKeyFromObject(o), o)
			if apierrors.IsNotFound(err) {
				return
			}
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(o.GetDeletionTimestamp()).NotTo(gomega.BeNil(), "only deleted objects lose their protection")
			o.SetFinalizers(slices.DeleteFunc(o.GetFinalizers(), func(f string) bool {
				return f == "kubernetes.io/pv-protection" || f == "kubernetes.io/pvc-protection"
			}))
			g.Expect(c.Update(context.Background(), o)).To(gomega.Succeed())
		})
	}
}

// Gone waits until the objects are deleted for good, standing in for the storage protection controllers on the
// way (see Unprotect): the objects must be deleted already.
func Gone(t testing.TB, c client.Client, objs ...client.Object) {
	t.Helper()
	Unprotect(t, c, objs...)
	Eventually(t, func(g gomega.Gomega) {
		for _, o := range objs {
			g.Expect(apierrors.IsNotFound(c.Get(context.Background(), client.ObjectKeyFromObject(o), o))).To(gomega.BeTrue(), "%s is still there", o.GetName())
		}
	})
}
