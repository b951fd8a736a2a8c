package trainingjob

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
)

func withConditions(d *aifv1.DatasetMount, conds ...metav1.Condition) *aifv1.DatasetMount {
	d.Status.Conditions = conds
	return d
}

func TestAccept(t *testing.T) {
	ready := metav1.Condition{Type: aifv1.ConditionReady, Status: metav1.ConditionTrue, Reason: aifv1.ReasonClaimBound}
	pending := metav1.Condition{Type: aifv1.ConditionReady, Status: metav1.ConditionFalse, Reason: aifv1.ReasonClaimPending, Message: "claim waits"}
	verified := metav1.Condition{Type: aifv1.ConditionVerified, Status: metav1.ConditionTrue, Reason: aifv1.ReasonVerificationSucceeded}
	xray := withConditions(builders.DatasetMount("ns", "xray", "/medai/xray").Obj(), ready)
	xrayPending := withConditions(builders.DatasetMount("ns", "xray", "/medai/xray").Obj(), pending)
	xrayUnverified := withConditions(builders.DatasetMount("ns", "xray", "/medai/xray").Verification(aifv1.VerificationContent).Obj(), ready)
	xrayVerified := withConditions(builders.DatasetMount("ns", "xray", "/medai/xray").Verification(aifv1.VerificationContent).Obj(), ready, verified)
	ckptRW := withConditions(builders.DatasetMount("ns", "ckpt", "/medai/ckpt").Access(aifv1.ReadWrite).Obj(), ready)
	ckptRO := withConditions(builders.DatasetMount("ns", "ckpt", "/medai/ckpt").Obj(), ready)
	notPermitted := metav1.Condition{Type: aifv1.ConditionReady, Status: metav1.ConditionFalse, Reason: aifv1.ReasonNotPermitted, Message: "root taken away"}
	xrayRevoked := withConditions(builders.DatasetMount("ns", "xray", "/medai/xray").Obj(), notPermitted)
	ckptRevoked := withConditions(builders.DatasetMount("ns", "ckpt", "/medai/ckpt").Access(aifv1.ReadWrite).Obj(), metav1.Condition{
		Type: aifv1.ConditionReady, Status: metav1.ConditionFalse, Reason: aifv1.ReasonTenantChanged, Message: "moved"})
	classes := map[string]classes.Class{builders.GPUClassH100: {Name: builders.GPUClassH100, Resource: "nvidia.com/gpu"}}
	base := func(dsms ...*aifv1.DatasetMount) Surroundings {
		s := Surroundings{Tenant: builders.TenantQuota("medai").Obj(), QueueExists: true, Classes: classes, DatasetMounts: map[string]*aifv1.DatasetMount{}}
		for _, d := range dsms {
			s.DatasetMounts[d.Name] = d
		}
		return s
	}
	job := func() *builders.TrainingJobBuilder { return builders.TrainingJob("ns", "run") }
	noTenant := base()
	noTenant.Tenant = nil
	noQueue := base()
	noQueue.QueueExists = false
	cases := []struct {
		name   string
		tj     *aifv1.TrainingJob
		s      Surroundings
		reason string
	}{
		{"everything in place", job().GPUClass(builders.GPUClassH100).Dataset("xray", "/data").Checkpoint("ckpt", "/ckpt").Obj(), base(xray, ckptRW), aifv1.ReasonAccepted},
		{"namespace of no tenant", job().Obj(), noTenant, aifv1.ReasonNoTenant},
		{"revoked dataset", job().Dataset("xray", "/data").Obj(), base(xrayRevoked), aifv1.ReasonDatasetRevoked},
		{"revoked checkpoint", job().Dataset("xray", "/data").Checkpoint("ckpt", "/ckpt").Obj(), base(xray, ckptRevoked), aifv1.ReasonDatasetRevoked},
		{"missing queue", job().Obj(), noQueue, aifv1.ReasonQueueNotFound},
		{"unknown class", job().GPUClass("b200").Obj(), base(), aifv1.ReasonGPUClassUnknown},
		{"class of another resource", job().GPUClass(builders.GPUClassH100).GPUResource(builders.MIGResource).Obj(), base(), aifv1.ReasonGPUClassUnknown},
		{"missing dataset", job().Dataset("xray", "/data").Obj(), base(), aifv1.ReasonDatasetNotReady},
		{"dataset not bound", job().Dataset("xray", "/data").Obj(), base(xrayPending), aifv1.ReasonDatasetNotReady},
		{"dataset not verified", job().Dataset("xray", "/data").Obj(), base(xrayUnverified), aifv1.ReasonDatasetNotVerified},
		{"dataset verified", job().Dataset("xray", "/data").Obj(), base(xrayVerified), aifv1.ReasonAccepted},
		{"read-only checkpoint", job().Checkpoint("ckpt", "/ckpt").Obj(), base(ckptRO), aifv1.ReasonCheckpointNotWritable},
		{"missing checkpoint", job().Checkpoint("ckpt", "/ckpt").Obj(), base(), aifv1.ReasonDatasetNotReady},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Accept(tc.tj, tc.s)
			if v.Reason != tc.reason || v.Accepted != (tc.reason == aifv1.ReasonAccepted) || v.Message == "" {
				t.Fatalf("got %+v, want reason %s", v, tc.reason)
			}
		})
	}
}
