package trainingjob

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasets"
	"github.com/aifactory-eu/aifactory-operator/controllers/index"
)

// Surroundings is what a TrainingJob's acceptance depends on, as read from the cluster.
type Surroundings struct {
	// Tenant is the TenantQuota of the namespace, nil if none.
	Tenant *aifv1.TenantQuota
	// QueueExists is true when spec.queueName names a LocalQueue of the namespace.
	QueueExists bool
	// Classes are the known GPU classes by name.
	Classes map[string]classes.Class
	// DatasetMounts are the namespace's DatasetMounts that the job names, by name.
	DatasetMounts map[string]*aifv1.DatasetMount
}

// Verdict says whether a TrainingJob may be handed to Kueue, and if not, why.
type Verdict struct {
	Accepted bool
	Reason   string
	Message  string
}

func refuse(reason, format string, args ...any) Verdict {
	return Verdict{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Accept checks, before anything is created in Kueue, that the namespace belongs to a tenant, the queue exists,
// the pinned GPU class exists and offers the requested resource, every dataset is Ready (and Verified where it
// asks for verification), and the checkpoint is a Ready ReadWrite DatasetMount.
func Accept(tj *aifv1.TrainingJob, s Surroundings) Verdict {
	if s.Tenant == nil {
		return refuse(aifv1.ReasonNoTenant, "namespace %s belongs to no TenantQuota", tj.Namespace)
	}
	if !s.QueueExists {
		return refuse(aifv1.ReasonQueueNotFound, "LocalQueue %s does not exist in namespace %s", tj.Spec.QueueName, tj.Namespace)
	}
	if name := tj.Spec.GPUClass; name != "" {
		c, ok := s.Classes[name]
		switch {
		case !ok:
			return refuse(aifv1.ReasonGPUClassUnknown, "GPU class %s is neither configured nor discovered", name)
		case c.Resource != corev1.ResourceName(tj.Spec.GPUResource):
			return refuse(aifv1.ReasonGPUClassUnknown, "GPU class %s offers %s, not %s", name, c.Resource, tj.Spec.GPUResource)
		}
	}
	var waiting, revoked []string
	for _, name := range index.DatasetsOf(tj) {
		if d := s.DatasetMounts[name]; d != nil && datasets.Revoked(d) {
			revoked = append(revoked, datasetProblem(d, name))
		}
	}
	if len(revoked) > 0 {
		return refuse(aifv1.ReasonDatasetRevoked, "%s", strings.Join(revoked, "; "))
	}
	for _, d := range tj.Spec.Datasets {
		if msg := datasetProblem(s.DatasetMounts[d.Name], d.Name); msg != "" {
			waiting = append(waiting, msg)
		}
	}
	if len(waiting) > 0 {
		reason := aifv1.ReasonDatasetNotReady
		if strings.Contains(strings.Join(waiting, ""), "not verified") {
			reason = aifv1.ReasonDatasetNotVerified
		}
		return refuse(reason, "%s", strings.Join(waiting, "; "))
	}
	if ck := tj.Spec.Checkpoint; ck != nil {
		d := s.DatasetMounts[ck.DatasetMount]
		if d != nil && d.Spec.Access != aifv1.ReadWrite {
			return refuse(aifv1.ReasonCheckpointNotWritable, "checkpoint DatasetMount %s is %s; checkpoints need a ReadWrite DatasetMount", ck.DatasetMount, d.Spec.Access)
		}
		if msg := datasetProblem(d, ck.DatasetMount); msg != "" {
			return refuse(aifv1.ReasonDatasetNotReady, "checkpoint: %s", msg)
		}
	}
	return Verdict{Accepted: true, Reason: aifv1.ReasonAccepted, Message: fmt.Sprintf("queued in LocalQueue %s", tj.Spec.QueueName)}
}

// datasetProblem says why a DatasetMount cannot be mounted yet; empty when it can.
func datasetProblem(d *aifv1.DatasetMount, name string) string {
	if d == nil {
		return fmt.Sprintf("DatasetMount %s does not exist", name)
	}
	if ready := apimeta.FindStatusCondition(d.Status.Conditions, aifv1.ConditionReady); ready == nil || ready.Status != metav1.ConditionTrue {
		msg := "not ready"
		if ready != nil {
			msg = ready.Reason + ": " + ready.Message
		}
		return fmt.Sprintf("DatasetMount %s is %s", name, msg)
	}
	if d.Spec.Verification != "" && d.Spec.Verification != aifv1.VerificationNone &&
		!apimeta.IsStatusConditionTrue(d.Status.Conditions, aifv1.ConditionVerified) {
		return fmt.Sprintf("DatasetMount %s is not verified yet", name)
	}
	return ""
}
