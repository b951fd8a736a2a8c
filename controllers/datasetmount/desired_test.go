package datasetmount

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/controllers/datasets"
	"github.com/aifactory-eu/aifactory-operator/test/builders"
)

func TestWithin(t *testing.T) {
	cases := []struct {
		path, root string
		want       bool
	}{
		{"/medai", "/medai", true},
		{"/medai/x", "/medai", true},
		{"/medai/x/y", "/medai/x", true},
		{"/medai-other", "/medai", false},
		{"/medaix/y", "/medai", false},
		{"/med", "/medai", false},
		{"/gridlab/x", "/medai", false},
		{"/anything", "/", true},
		{"/", "/medai", false},
	}
	for _, tc := range cases {
		if got := Within(tc.path, tc.root); got != tc.want {
			t.Errorf("Within(%q, %q) = %v, want %v", tc.path, tc.root, got, tc.want)
		}
	}
}

func TestValidateDatasetMount(t *testing.T) {
	cfg := &configv1.Configuration{Filesystems: []configv1.Filesystem{
		{Name: "lustre", HostPath: &configv1.HostPathFilesystem{Root: "/lustre"}},
		{Name: "scratch", HostPath: &configv1.HostPathFilesystem{Root: "/scratch"}},
	}}
	tenant := builders.TenantQuota("medai").Storage("lustre", "/medai", aifv1.ReadOnly).Storage("lustre", "/medai/out", aifv1.ReadWrite).
		Storage("scratch", "/medai", aifv1.ReadWrite).Obj()
	d := func(fs, path string) *builders.DatasetMountBuilder {
		return builders.DatasetMount("medai", "d", path).Filesystem(fs)
	}
	cases := []struct {
		name   string
		dsm    *aifv1.DatasetMount
		tenant *aifv1.TenantQuota
		want   string // empty: valid
	}{
		{"under a read-only root", d("lustre", "/medai/xray").Obj(), tenant, ""},
		{"the root itself", d("lustre", "/medai").Obj(), tenant, ""},
		{"read-write under a nested read-write root", d("lustre", "/medai/out/run1").Access(aifv1.ReadWrite).Obj(), tenant, ""},
		{"read-write under only a read-only root", d("lustre", "/medai/xray").Access(aifv1.ReadWrite).Obj(), tenant, "spec.access"},
		{"read-write on the scratch filesystem", d("scratch", "/medai/ckpt").Access(aifv1.ReadWrite).Obj(), tenant, ""},
		{"sibling prefix", d("lustre", "/medai-other").Obj(), tenant, "spec.path"},
		{"other filesystem's root does not count", d("scratch", "/gridlab").Obj(), tenant, "spec.path"},
		{"unclean path (defence in depth)", d("lustre", "/medai/../x").Obj(), tenant, "spec.path"},
		{"unknown filesystem", d("nfs", "/medai/x").Obj(), tenant, "spec.filesystem"},
		{"default classes exclude health", d("lustre", "/medai/x").Classification(aifv1.ClassificationHealth).Obj(), tenant, "spec.classification"},
		{"no tenant", d("lustre", "/medai/x").Obj(), nil, "metadata.namespace"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateDatasetMount(tc.dsm, tc.tenant, cfg)
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Fatalf("want valid, got %v", errs)
			case tc.want != "" && (len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), tc.want)):
				t.Fatalf("want an error on %s, got %v", tc.want, errs)
			}
		})
	}
}

func TestPersistentVolume(t *testing.T) {
	dsm := builders.DatasetMount("medai-dev", "xray", "/medai/xray/v3").Obj()
	csi := &configv1.Filesystem{Name: "lustre", CSI: &configv1.CSIFilesystem{Driver: "lustre.csi.hpe.com",
		VolumeHandle: "mgs@tcp:/fs{path}", VolumeAttributes: map[string]string{"subdir": "{path}", "fixed": "x"}, MountOptions: []string{"ro"}}}
	pv := PersistentVolume(dsm, csi, "")
	if pv.Spec.CSI.VolumeHandle != "mgs@tcp:/fs/medai/xray/v3" || pv.Spec.CSI.VolumeAttributes["subdir"] != "/medai/xray/v3" ||
		pv.Spec.CSI.VolumeAttributes["fixed"] != "x" || !pv.Spec.CSI.ReadOnly || pv.Spec.MountOptions[0] != "ro" {
		t.Fatalf("CSI source: %+v", pv.Spec.CSI)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain || pv.Spec.AccessModes[0] != corev1.ReadOnlyMany ||
		pv.Spec.ClaimRef.Name != ClaimName(dsm) || pv.Spec.ClaimRef.Namespace != "medai-dev" {
		t.Fatalf("volume: %+v", pv.Spec)
	}
	if datasets.SubPath(dsm, csi) != "" {
		t.Fatal("a per-dataset handle needs no subPath")
	}
	csi.CSI.WholeFilesystem = true
	if got := datasets.SubPath(dsm, csi); got != "medai/xray/v3" {
		t.Fatalf("whole-filesystem subPath = %q", got)
	}

	rw := builders.DatasetMount("medai-dev", "ckpt", "/medai/ckpt").Access(aifv1.ReadWrite).Obj()
	host := &configv1.Filesystem{Name: "scratch", HostPath: &configv1.HostPathFilesystem{Root: "/lustre/scratch"}}
	pv = PersistentVolume(rw, host, "")
	if pv.Spec.HostPath.Path != "/lustre/scratch/medai/ckpt" || *pv.Spec.HostPath.Type != corev1.HostPathDirectory || pv.Spec.AccessModes[0] != corev1.ReadWriteMany {
		t.Fatalf("hostPath volume: %+v", pv.Spec)
	}
	claim := PersistentVolumeClaim(rw)
	if claim.Spec.VolumeName != VolumeName(rw) || ptr.Deref(claim.Spec.StorageClassName, "x") != "" || claim.Spec.AccessModes[0] != corev1.ReadWriteMany {
		t.Fatalf("claim: %+v", claim.Spec)
	}
}

func TestNamesAreBoundedAndDistinct(t *testing.T) {
	long := strings.Repeat("a", 253)
	a := builders.DatasetMount(strings.Repeat("n", 63), long, "/x").Obj()
	b := builders.DatasetMount(strings.Repeat("n", 63), long[:252]+"b", "/x").Obj()
	for _, name := range []string{VolumeName(a), ClaimName(a)} {
		if len(name) > 253 {
			t.Errorf("name longer than 253: %d", len(name))
		}
	}
	if VolumeName(a) == VolumeName(b) || ClaimName(a) == ClaimName(b) {
		t.Error("long names must stay distinct")
	}
	a.Generation = 12
	if j := VerificationJobName(a); len(j) > 63 || !strings.HasSuffix(j, "-12") {
		t.Errorf("job name %q must be a label value ending in the generation", j)
	}
	short := builders.DatasetMount("medai-dev", "xray", "/x").Obj()
	if !strings.HasPrefix(VolumeName(short), "dataset-medai-dev-xray-") || ClaimName(short) != "dataset-xray" {
		t.Errorf("short names: %s %s", VolumeName(short), ClaimName(short))
	}
	// The same joined name from different namespaces must not share a cluster-wide volume.
	x, y := builders.DatasetMount("a-b", "c", "/x").Obj(), builders.DatasetMount("a", "b-c", "/x").Obj()
	if VolumeName(x) == VolumeName(y) {
		t.Errorf("volumes of %s/%s and %s/%s collide: %s", x.Namespace, x.Name, y.Namespace, y.Name, VolumeName(x))
	}
}

// A ReadOnly dataset's volume is read-only on the node: CSI readOnly and the ro mount option, which replaces a
// configured rw. A ReadWrite one keeps the configured options.
func TestReadOnlyVolumesCarryTheMountOption(t *testing.T) {
	fs := &configv1.Filesystem{Name: "lustre", CSI: &configv1.CSIFilesystem{Driver: "d", VolumeHandle: "h{path}", MountOptions: []string{"flock", "rw"}}}
	ro := PersistentVolume(builders.DatasetMount("ns", "a", "/a").Obj(), fs, "")
	if !ro.Spec.CSI.ReadOnly || !slices.Equal(ro.Spec.MountOptions, []string{"flock", "ro"}) {
		t.Errorf("ReadOnly volume: readOnly %v, options %v", ro.Spec.CSI.ReadOnly, ro.Spec.MountOptions)
	}
	rw := PersistentVolume(builders.DatasetMount("ns", "b", "/b").Access(aifv1.ReadWrite).Obj(), fs, "")
	if rw.Spec.CSI.ReadOnly || !slices.Equal(rw.Spec.MountOptions, []string{"flock", "rw"}) {
		t.Errorf("ReadWrite volume: readOnly %v, options %v", rw.Spec.CSI.ReadOnly, rw.Spec.MountOptions)
	}
	if !slices.Equal(fs.CSI.MountOptions, []string{"flock", "rw"}) {
		t.Errorf("the configuration was changed: %v", fs.CSI.MountOptions)
	}
}

// Verification pods go to any GPU class's nodes with all their tolerations, unless the platform configured a
// selector and tolerations of its own.
func TestVerificationPlacement(t *testing.T) {
	dsm := builders.DatasetMount("ns", "a", "/a").Verification(aifv1.VerificationContent).Obj()
	gpu := configv1.DefaultGPUToleration()
	classes := map[string]classes.Class{
		"h100": {Name: "h100", NodeLabels: map[string]string{"nvidia.com/gpu.product": "H100"}, Tolerations: []corev1.Toleration{gpu}},
		"a100": {Name: "a100", NodeLabels: map[string]string{"nvidia.com/gpu.product": "A100"}, Tolerations: []corev1.Toleration{gpu}},
	}
	cfg := &configv1.Verification{Image: "op:1", RunAsUser: ptr.To[int64](4001), RunAsGroup: ptr.To[int64](4002), DeadlineSeconds: ptr.To[int64](600)}
	job := VerificationJob(dsm, "", cfg, classes)
	spec := job.Spec.Template.Spec
	terms := spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 2 || terms[0].MatchExpressions[0].Values[0] != "A100" || terms[1].MatchExpressions[0].Values[0] != "H100" {
		t.Errorf("node selector terms, one per class in name order: %+v", terms)
	}
	if len(spec.Tolerations) != 1 || spec.NodeSelector != nil {
		t.Errorf("tolerations %+v (the shared one once), node selector %v", spec.Tolerations, spec.NodeSelector)
	}
	if *spec.SecurityContext.RunAsUser != 4001 || *spec.SecurityContext.RunAsGroup != 4002 || *job.Spec.ActiveDeadlineSeconds != 600 {
		t.Errorf("identity %d:%d, deadline %d", *spec.SecurityContext.RunAsUser, *spec.SecurityContext.RunAsGroup, *job.Spec.ActiveDeadlineSeconds)
	}
	cfg.NodeSelector = map[string]string{"lustre.example.eu/client": "true"}
	cfg.Tolerations = []corev1.Toleration{{Key: "lustre", Operator: corev1.TolerationOpExists}}
	spec = VerificationJob(dsm, "", cfg, classes).Spec.Template.Spec
	if spec.Affinity != nil || spec.NodeSelector["lustre.example.eu/client"] != "true" || spec.Tolerations[0].Key != "lustre" || len(spec.Tolerations) != 1 {
		t.Errorf("configured placement: affinity %+v, selector %v, tolerations %+v", spec.Affinity, spec.NodeSelector, spec.Tolerations)
	}
	if a, b := VerificationJob(dsm, "", cfg, classes), VerificationJob(dsm, "", cfg, nil); a.Annotations[VerificationSpecAnnotation] != b.Annotations[VerificationSpecAnnotation] {
		t.Error("the spec hash must not change with the GPU classes known: a running verification would be replaced")
	}
	if !RunsVerification(&spec, &spec) {
		t.Error("a pod spec runs the verification it was built from")
	}
	other := spec.DeepCopy()
	other.Containers[0].Args[1] = "--root=/"
	if RunsVerification(other, &spec) {
		t.Error("other arguments are another program")
	}
}
