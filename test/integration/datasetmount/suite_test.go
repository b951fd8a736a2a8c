// Package datasetmount tests the DatasetMount controller and webhook on a real kube-apiserver and etcd, with
// the webhook registered by URL on 127.0.0.1. envtest runs no PersistentVolume binder, Job controller or
// kubelet, and there is no parallel filesystem: where a test needs a claim bound or a verification pod
// finished, it writes that status itself and says so.
package datasetmount

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasetmount"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

const (
	ns         = "medai-dev"
	otherNS    = "gridlab"
	image      = "registry.example.eu/aifactory-operator:test"
	fsGPFS     = "gpfs-projects"
	fsBeeGFS   = "beegfs-data"
	fsWhole    = "lustre-whole"
	fsDatasets = builders.FilesystemData
	fsScratch  = builders.FilesystemScratch
)

var (
	// clk is the operator's clock; verification deadlines are reached by stepping it.
	clk = testingclock.NewFakeClock(time.Now())
	env *framework.Env
	c   client.Client
	cfg *configv1.Configuration
	// filesystems holds a folder per filesystem, where the operator sees it (operatorMountPath): this
	// machine has no parallel filesystem, so the datasets' folders and links are made here.
	filesystems string
)

// config has one filesystem of each kind the operator supports, with the handle formats of the CSI drivers'
// static provisioning (see docs/datasets.md).
func config() *configv1.Configuration {
	c := &configv1.Configuration{
		TypeMeta: metav1.TypeMeta{APIVersion: configv1.APIVersion, Kind: configv1.Kind},
		Filesystems: []configv1.Filesystem{
			{Name: fsDatasets, Type: "Lustre", CSI: &configv1.CSIFilesystem{Driver: "lustre.csi.hpe.com",
				VolumeHandle: "mgs01@o2ib:/datasets{path}", MountOptions: []string{"flock"}}},
			{Name: fsGPFS, Type: "GPFS", CSI: &configv1.CSIFilesystem{Driver: "spectrumscale.csi.ibm.com",
				VolumeHandle: "0;0;7118073361626808055;09000B0A:5E8C3BE4;;;/ibm/projects{path}"}},
			{Name: fsBeeGFS, Type: "BeeGFS", CSI: &configv1.CSIFilesystem{Driver: "beegfs.csi.netapp.com",
				VolumeHandle: "beegfs://mgmtd.example.eu/data{path}"}},
			{Name: fsWhole, Type: "Lustre", CSI: &configv1.CSIFilesystem{Driver: "lustre.csi.example.eu",
				VolumeHandle: "lustre-whole", WholeFilesystem: true, VolumeAttributes: map[string]string{"fs": "lustre-whole"}}},
			{Name: fsScratch, Type: "Lustre", HostPath: &configv1.HostPathFilesystem{Root: "/lustre/scratch"}},
		},
		GPUClasses:   []configv1.GPUClass{{Name: "h100", NodeLabels: map[string]string{"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}}},
		Verification: configv1.Verification{Image: image},
	}
	for i := range c.Filesystems {
		c.Filesystems[i].OperatorMountPath = filepath.Join(filesystems, c.Filesystems[i].Name)
	}
	return c
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	if filesystems, err = os.MkdirTemp("", "aifactory-filesystems-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(filesystems) }()
	if env, err = framework.Start(framework.WithWebhooks()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	c = env.Client
	ctx := context.Background()
	if err := env.CreateNamespaces(ctx, ns, otherNS, "no-tenant"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg = config()
	op, err := env.StartOperator(cfg, clk)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = op.Stop() }()
	tenants := []*aifv1.TenantQuota{
		builders.TenantQuota("medai").Namespaces(ns).
			Storage(fsDatasets, "/medai", aifv1.ReadOnly).Storage(fsScratch, "/medai", aifv1.ReadWrite).
			Storage(fsGPFS, "/medai", aifv1.ReadOnly).Storage(fsBeeGFS, "/medai", aifv1.ReadOnly).Storage(fsWhole, "/medai", aifv1.ReadOnly).
			Classifications(aifv1.ClassificationPublic, aifv1.ClassificationInternal, aifv1.ClassificationHealth).Obj(),
		builders.TenantQuota(otherNS).Storage(fsDatasets, "/gridlab", aifv1.ReadOnly).Obj(),
	}
	for _, tq := range tenants {
		if err := c.Create(ctx, tq); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// create creates the object through the webhook; the webhook needs the operator's cache to have seen the
// tenants, so a refusal for want of a tenant is retried for a while. A DatasetMount's folder is made first.
func create(t *testing.T, obj client.Object) {
	t.Helper()
	if d, ok := obj.(*aifv1.DatasetMount); ok {
		if err := framework.DatasetFolder(cfg, d); err != nil {
			t.Fatal(err)
		}
	}
	framework.Eventually(t, func(g gomega.Gomega) { g.Expect(c.Create(context.Background(), obj)).To(gomega.Succeed()) })
}

func dsm(g gomega.Gomega, name string) *aifv1.DatasetMount {
	d := &aifv1.DatasetMount{}
	g.Expect(c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d)).To(gomega.Succeed())
	return d
}

func condition(conds []metav1.Condition, t string) metav1.Condition {
	for _, cond := range conds {
		if cond.Type == t {
			return cond
		}
	}
	return metav1.Condition{}
}

// bind marks the dataset's volume and claim bound, as the PersistentVolume controller would (not running in
// envtest).
func bind(t *testing.T, d *aifv1.DatasetMount) {
	t.Helper()
	ctx := context.Background()
	framework.Eventually(t, func(g gomega.Gomega) {
		pv := &corev1.PersistentVolume{}
		g.Expect(c.Get(ctx, client.ObjectKey{Name: datasetmount.VolumeName(d)}, pv)).To(gomega.Succeed())
		pv.Status.Phase = corev1.VolumeBound
		g.Expect(c.Status().Update(ctx, pv)).To(gomega.Succeed())
		pvc := &corev1.PersistentVolumeClaim{}
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: datasetmount.ClaimName(d)}, pvc)).To(gomega.Succeed())
		pvc.Status.Phase = corev1.ClaimBound
		g.Expect(c.Status().Update(ctx, pvc)).To(gomega.Succeed())
	})
}

// unprotect stands in for kube-controller-manager's storage protection controllers (see framework.Unprotect).
func unprotect(t *testing.T, objs ...client.Object) {
	t.Helper()
	framework.Unprotect(t, c, objs...)
}
