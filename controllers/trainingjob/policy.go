package trainingjob

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	psapi "k8s.io/pod-security-admission/api"
	pspolicy "k8s.io/pod-security-admission/policy"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers/classes"
	"github.com/aifactory-eu/aifactory-operator/controllers/podpolicy"
)

// DefaultServiceAccount is the service account every TrainingJob may run as.
const DefaultServiceAccount = "default"

// MaxTerminationGracePeriodSeconds bounds how long a worker may take to stop, since Kueue frees a run's quota only
// once its pods are gone.
const MaxTerminationGracePeriodSeconds = 300

// maxLifecycleTolerationSeconds bounds how long a worker may stay on a node that is not ready or unreachable.
const maxLifecycleTolerationSeconds = 300

// Label and annotation prefixes that belong to Kueue, the Job controller and network attachment, which a
// template must not set.
var reservedLabelPrefixes = []string{"kueue.x-k8s.io/", "batch.kubernetes.io/"}
var reservedAnnotationPrefixes = []string{"kueue.x-k8s.io/", "k8s.v1.cni.cncf.io/"}

// datasetVolumePrefix starts the names of the volumes the operator adds for spec.datasets and spec.checkpoint.
const datasetVolumePrefix = "dataset-"

// IsGPUResource reports whether a resource name is a GPU or a slice of one: the resource of a known class, the
// NVIDIA device plugin's GPUs (shared ones too) and MIG slices, or AMD's, Intel's and Habana's accelerators: the
// same prefixes as the tenant pod admission policy (config/policy).
func IsGPUResource(name corev1.ResourceName, known map[string]classes.Class) bool {
	n := string(name)
	switch {
	case strings.HasPrefix(n, configv1.DefaultGPUResource), strings.HasPrefix(n, classes.MIGResourcePrefix),
		strings.HasPrefix(n, "amd.com/"), strings.HasPrefix(n, "gpu.intel.com/"), strings.HasPrefix(n, "habana.ai/"):
		return true
	}
	for _, c := range known {
		if c.Resource == name {
			return true
		}
	}
	return false
}

// ValidateTrainingJob checks what the schema cannot: that the run's pod keeps to its tenant's pod policy, and
// that the pod the operator builds from it passes Pod Security at the tenant's level. Each refusal names the
// field and the rule. classes are the known GPU classes by name; tenant is nil for a namespace of no tenant,
// which then gets the configuration's policy.
func ValidateTrainingJob(tj *aifv1.TrainingJob, tenant *aifv1.TenantQuota, cfg *configv1.Configuration, known map[string]classes.Class) field.ErrorList {
	pol := podpolicy.For(cfg, tenant)
	v := &validator{tj: tj, pol: pol, classes: known, tenant: tenant}
	ps := field.NewPath("spec", "template", "spec")
	s := &tj.Spec.Template.Spec
	v.metadata(field.NewPath("spec", "template", "metadata"), &tj.Spec.Template.ObjectMeta)
	v.pod(ps, s)
	v.placement(ps, s)
	v.volumes(ps.Child("volumes"), s.Volumes)
	for i := range s.InitContainers {
		v.container(ps.Child("initContainers").Index(i), &s.InitContainers[i])
	}
	for i := range s.Containers {
		v.container(ps.Child("containers").Index(i), &s.Containers[i])
	}
	if b := budgetOf(tenant); b != nil && b.MaxRunDuration != nil && tj.Spec.MaxRunDuration != nil && tj.Spec.MaxRunDuration.Duration > b.MaxRunDuration.Duration {
		v.errs = append(v.errs, field.Invalid(field.NewPath("spec", "maxRunDuration"), tj.Spec.MaxRunDuration.Duration.String(),
			fmt.Sprintf("exceeds the %s that tenant %s allows a run (its GPUs times this bound are reserved in the GPU-hour budget)", b.MaxRunDuration.Duration, tenant.Name)))
	}
	if len(v.errs) == 0 {
		// What the rules above miss, Pod Security does not: it judges the Job's pod exactly as the namespace will.
		v.podSecurity(field.NewPath("spec", "template"))
	}
	return v.errs
}

type validator struct {
	tj      *aifv1.TrainingJob
	pol     podpolicy.Policy
	classes map[string]classes.Class
	tenant  *aifv1.TenantQuota
	errs    field.ErrorList
}

func (v *validator) forbid(p *field.Path, format string, args ...any) {
	v.errs = append(v.errs, field.Forbidden(p, fmt.Sprintf(format, args...)))
}

func (v *validator) restricted() bool { return v.pol.Level == aifv1.PodSecurityRestricted }

// metadata refuses labels and annotations that steer Kueue, the Job controller or the pod network.
func (v *validator) metadata(p *field.Path, m *metav1.ObjectMeta) {
	for _, k := range slices.Sorted(maps.Keys(m.Labels)) {
		if slices.ContainsFunc(reservedLabelPrefixes, func(pre string) bool { return strings.HasPrefix(k, pre) }) {
			v.forbid(p.Child("labels").Key(k), "labels under %s are set by Kueue and the Job controller", strings.Join(reservedLabelPrefixes, ", "))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.Annotations)) {
		if slices.ContainsFunc(reservedAnnotationPrefixes, func(pre string) bool { return strings.HasPrefix(k, pre) }) {
			v.forbid(p.Child("annotations").Key(k), "annotations under %s are not allowed: they steer Kueue or attach the pod to networks", strings.Join(reservedAnnotationPrefixes, ", "))
		}
	}
}

// pod checks host namespaces, identity, priority and the pod-level security context.
func (v *validator) pod(ps *field.Path, s *corev1.PodSpec) {
	for _, h := range []struct {
		name string
		on   bool
	}{{"hostNetwork", s.HostNetwork}, {"hostPID", s.HostPID}, {"hostIPC", s.HostIPC}} {
		if h.on {
			v.forbid(ps.Child(h.name), "host namespaces are not allowed")
		}
	}
	if g := s.TerminationGracePeriodSeconds; g != nil && *g > MaxTerminationGracePeriodSeconds {
		v.forbid(ps.Child("terminationGracePeriodSeconds"), "at most %d: a worker that ignores its stop keeps its GPUs from the next run", MaxTerminationGracePeriodSeconds)
	}
	if rc := s.RuntimeClassName; rc != nil && !slices.Contains(v.pol.RuntimeClasses, *rc) {
		v.forbid(ps.Child("runtimeClassName"), "runtime class %s is not allowed for this tenant (allowed: %s)", *rc, orNone(v.pol.RuntimeClasses))
	}
	if s.PriorityClassName != "" {
		v.forbid(ps.Child("priorityClassName"), "pod priority classes are not allowed: set spec.priorityClassName, a Kueue WorkloadPriorityClass")
	}
	if s.Priority != nil {
		v.forbid(ps.Child("priority"), "pod priority is not allowed: set spec.priorityClassName, a Kueue WorkloadPriorityClass")
	}
	sa := s.ServiceAccountName
	if sa == "" {
		sa = s.DeprecatedServiceAccount
	}
	if s.DeprecatedServiceAccount != "" && s.ServiceAccountName != "" && s.DeprecatedServiceAccount != s.ServiceAccountName {
		v.forbid(ps.Child("serviceAccount"), "must equal serviceAccountName")
	}
	if sa != "" && sa != DefaultServiceAccount && !slices.Contains(v.pol.ServiceAccounts, sa) {
		v.forbid(ps.Child("serviceAccountName"), "service account %s is not allowed for this tenant (allowed: %s)", sa,
			strings.Join(append([]string{DefaultServiceAccount}, v.pol.ServiceAccounts...), ", "))
	}
	if len(s.EphemeralContainers) > 0 {
		v.forbid(ps.Child("ephemeralContainers"), "ephemeral containers are not allowed")
	}
	if len(s.ResourceClaims) > 0 {
		v.forbid(ps.Child("resourceClaims"), "dynamic resource claims are not allowed: they reach devices outside the tenant's Kueue quota")
	}
	if s.Resources != nil {
		v.noGPUs(ps.Child("resources"), s.Resources)
	}
	if sc := s.SecurityContext; sc != nil {
		p := ps.Child("securityContext")
		v.runAs(p, sc.RunAsNonRoot, sc.RunAsUser)
		v.profiles(p, sc.SeccompProfile, sc.AppArmorProfile, sc.WindowsOptions)
	}
}

// runAs refuses root under the restricted level.
func (v *validator) runAs(p *field.Path, nonRoot *bool, user *int64) {
	if !v.restricted() {
		return
	}
	if nonRoot != nil && !*nonRoot {
		v.forbid(p.Child("runAsNonRoot"), "must not be false: Pod Security %q runs containers as a non-root user", v.pol.Level)
	}
	if user != nil && *user == 0 {
		v.forbid(p.Child("runAsUser"), "must not be 0 (root) under Pod Security %q", v.pol.Level)
	}
}

func (v *validator) profiles(p *field.Path, seccomp *corev1.SeccompProfile, apparmor *corev1.AppArmorProfile, win *corev1.WindowsSecurityContextOptions) {
	if seccomp != nil && seccomp.Type == corev1.SeccompProfileTypeUnconfined {
		v.forbid(p.Child("seccompProfile", "type"), "Unconfined is not allowed: use RuntimeDefault or Localhost")
	}
	if apparmor != nil && apparmor.Type == corev1.AppArmorProfileTypeUnconfined {
		v.forbid(p.Child("appArmorProfile", "type"), "Unconfined is not allowed: use RuntimeDefault or Localhost")
	}
	if win != nil && win.HostProcess != nil && *win.HostProcess {
		v.forbid(p.Child("windowsOptions", "hostProcess"), "host processes are not allowed")
	}
}

// placement keeps node choice with Kueue and the GPU class: no node name or other scheduler, tolerations only
// the class's, and GPU node labels only as the pinned class has them.
func (v *validator) placement(ps *field.Path, s *corev1.PodSpec) {
	if s.NodeName != "" {
		v.forbid(ps.Child("nodeName"), "placement belongs to Kueue and the GPU class: set spec.gpuClass instead of a node")
	}
	if s.SchedulerName != "" && s.SchedulerName != corev1.DefaultSchedulerName {
		v.forbid(ps.Child("schedulerName"), "only %s places the pods of a run", corev1.DefaultSchedulerName)
	}
	allowed := v.allowedTolerations()
	for i, t := range s.Tolerations {
		switch {
		case !slices.ContainsFunc(allowed, func(a corev1.Toleration) bool { return sameToleration(a, t) }):
			v.forbid(ps.Child("tolerations").Index(i), "toleration %s is not one of the GPU class's: %s", describeToleration(t), describeTolerations(allowed))
		case (t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable) &&
			(t.TolerationSeconds == nil || *t.TolerationSeconds > maxLifecycleTolerationSeconds):
			v.forbid(ps.Child("tolerations").Index(i).Child("tolerationSeconds"), "must be set and at most %d for %s", maxLifecycleTolerationSeconds, t.Key)
		}
	}
	pinned, gpuLabels := v.pinnedClass(), v.gpuLabelKeys()
	for _, k := range slices.Sorted(maps.Keys(s.NodeSelector)) {
		if !gpuLabels[k] {
			continue
		}
		if pinned == nil || pinned.NodeLabels[k] != s.NodeSelector[k] {
			v.forbid(ps.Child("nodeSelector").Key(k), "GPU node labels come from the GPU class: set spec.gpuClass instead")
		}
	}
	if s.Affinity == nil || s.Affinity.NodeAffinity == nil {
		return
	}
	na, p := s.Affinity.NodeAffinity, ps.Child("affinity", "nodeAffinity")
	if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
		for i, term := range req.NodeSelectorTerms {
			v.nodeTerm(p.Child("requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms").Index(i), term, gpuLabels)
		}
	}
	for i, pref := range na.PreferredDuringSchedulingIgnoredDuringExecution {
		v.nodeTerm(p.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i).Child("preference"), pref.Preference, gpuLabels)
	}
}

func (v *validator) nodeTerm(p *field.Path, term corev1.NodeSelectorTerm, gpuLabels map[string]bool) {
	if len(term.MatchFields) > 0 {
		v.forbid(p.Child("matchFields"), "selecting nodes by name is not allowed: placement belongs to Kueue and the GPU class")
	}
	for i, e := range term.MatchExpressions {
		if gpuLabels[e.Key] {
			v.forbid(p.Child("matchExpressions").Index(i).Child("key"), "GPU node labels come from the GPU class: set spec.gpuClass instead")
		}
	}
}

func (v *validator) pinnedClass() *classes.Class {
	if c, ok := v.classes[v.tj.Spec.GPUClass]; ok && v.tj.Spec.GPUClass != "" {
		return &c
	}
	return nil
}

// allowedTolerations are the pinned class's tolerations, or without a pinned class those of every class the
// tenant has quota of (Kueue adds the admitted class's own), and the node lifecycle tolerations that the API
// server adds to every pod.
func (v *validator) allowedTolerations() []corev1.Toleration {
	out := []corev1.Toleration{
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	}
	if c := v.pinnedClass(); c != nil {
		return append(out, c.Tolerations...)
	}
	if v.tenant == nil {
		return out
	}
	for _, g := range v.tenant.Spec.GPUs {
		if c, ok := v.classes[g.GPUClass]; ok {
			out = append(out, c.Tolerations...)
		}
	}
	return out
}

func sameToleration(allowed, t corev1.Toleration) bool {
	op := func(o corev1.TolerationOperator) corev1.TolerationOperator {
		if o == "" {
			return corev1.TolerationOpEqual
		}
		return o
	}
	return allowed.Key == t.Key && op(allowed.Operator) == op(t.Operator) && allowed.Value == t.Value && allowed.Effect == t.Effect
}

func describeToleration(t corev1.Toleration) string {
	s := t.Key
	if s == "" {
		s = "(every taint)"
	}
	if t.Operator == corev1.TolerationOpExists {
		s += " Exists"
	} else {
		s += "=" + t.Value
	}
	if t.Effect != "" {
		s += ":" + string(t.Effect)
	}
	return s
}

func describeTolerations(ts []corev1.Toleration) string {
	parts := make([]string, 0, len(ts))
	for _, t := range ts {
		parts = append(parts, describeToleration(t))
	}
	return strings.Join(parts, ", ")
}

// gpuLabelKeys are the node label keys that GPU classes select on.
func (v *validator) gpuLabelKeys() map[string]bool {
	out := map[string]bool{classes.ProductLabel: true}
	for _, c := range v.classes {
		for k := range c.NodeLabels {
			out[k] = true
		}
	}
	return out
}

// allowedVolumeKinds are the volume sources that cannot reach outside the pod.
var allowedVolumeKinds = []string{"emptyDir", "configMap", "secret", "projected", "downwardAPI", "ephemeral"}

func (v *validator) volumes(p *field.Path, vols []corev1.Volume) {
	for i := range vols {
		vol, vp := &vols[i], p.Index(i)
		if strings.HasPrefix(vol.Name, datasetVolumePrefix) {
			v.forbid(vp.Child("name"), "names starting with %q are the operator's dataset volumes", datasetVolumePrefix)
		}
		kind := volumeKind(vol)
		if !slices.Contains(allowedVolumeKinds, kind) {
			v.forbid(vp.Child(kind), "%s volumes are not allowed (allowed: %s); data from the parallel filesystem comes through spec.datasets and spec.checkpoint",
				kind, strings.Join(allowedVolumeKinds, ", "))
			continue
		}
		if e := vol.Ephemeral; e != nil && e.VolumeClaimTemplate != nil {
			cs, cp := &e.VolumeClaimTemplate.Spec, vp.Child("ephemeral", "volumeClaimTemplate", "spec")
			if cs.StorageClassName == nil || !slices.Contains(v.pol.StorageClasses, *cs.StorageClassName) {
				v.forbid(cp.Child("storageClassName"), "ephemeral volumes must name a storage class the tenant may use (allowed: %s)", orNone(v.pol.StorageClasses))
			}
			if cs.DataSource != nil || cs.DataSourceRef != nil {
				v.forbid(cp.Child("dataSource"), "ephemeral volumes start empty; data comes through spec.datasets")
			}
			if cs.VolumeName != "" || cs.Selector != nil {
				v.forbid(cp.Child("volumeName"), "ephemeral volumes must not bind an existing PersistentVolume (volumeName, selector)")
			}
			if cs.VolumeAttributesClassName != nil {
				v.forbid(cp.Child("volumeAttributesClassName"), "ephemeral volumes take their storage class's attributes")
			}
		}
	}
}

// volumeKind is the name of the volume source a volume sets, as it is spelled in YAML.
func volumeKind(vol *corev1.Volume) string {
	b, err := json.Marshal(vol.VolumeSource)
	if err != nil {
		return "unknown"
	}
	var m map[string]json.RawMessage
	switch err := json.Unmarshal(b, &m); {
	case err != nil || len(m) > 1:
		return "unknown"
	case len(m) == 0:
		return "emptyDir" // the API server defaults a volume without a source to an emptyDir
	}
	for k := range m {
		return k
	}
	return "unknown"
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// container checks one container (or init container): privilege, capabilities, root, host ports, GPUs and
// mounts.
func (v *validator) container(p *field.Path, c *corev1.Container) {
	if sc := c.SecurityContext; sc != nil {
		v.containerSecurity(p.Child("securityContext"), sc)
	}
	for i, port := range c.Ports {
		if port.HostPort != 0 {
			v.forbid(p.Child("ports").Index(i).Child("hostPort"), "host ports are not allowed")
		}
	}
	v.noGPUs(p.Child("resources"), &c.Resources)
	for i, e := range c.Env {
		if strings.HasPrefix(e.Name, "NVIDIA_") {
			v.forbid(p.Child("env").Index(i).Child("name"), "NVIDIA_ variables steer the NVIDIA container runtime's choice of GPUs; GPUs come only from spec.gpusPerNode")
		}
	}
	v.mounts(p, c)
}

func (v *validator) containerSecurity(sp *field.Path, sc *corev1.SecurityContext) {
	if sc.Privileged != nil && *sc.Privileged {
		v.forbid(sp.Child("privileged"), "privileged containers are not allowed")
	}
	if v.restricted() && sc.AllowPrivilegeEscalation != nil && *sc.AllowPrivilegeEscalation {
		v.forbid(sp.Child("allowPrivilegeEscalation"), "must not be true under Pod Security %q", v.pol.Level)
	}
	if caps := sc.Capabilities; caps != nil {
		for i, add := range caps.Add {
			if !v.pol.MayAdd(string(add)) {
				v.forbid(sp.Child("capabilities", "add").Index(i), "capability %s is not allowed for this tenant (allowed: %s)", add, v.pol.Addable())
			}
		}
		if v.restricted() && len(caps.Drop) > 0 && !slices.Contains(caps.Drop, "ALL") {
			v.forbid(sp.Child("capabilities", "drop"), "must include ALL under Pod Security %q (or be left out: the operator then drops ALL)", v.pol.Level)
		}
	}
	v.runAs(sp, sc.RunAsNonRoot, sc.RunAsUser)
	v.profiles(sp, sc.SeccompProfile, sc.AppArmorProfile, sc.WindowsOptions)
	if sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
		v.forbid(sp.Child("procMount"), "only the Default proc mount is allowed")
	}
}

// mounts keeps a container's mounts off the dataset volumes and their mount paths.
func (v *validator) mounts(p *field.Path, c *corev1.Container) {
	taken := map[string]string{}
	for i, d := range v.tj.Spec.Datasets {
		taken[path.Clean(d.MountPath)] = field.NewPath("spec", "datasets").Index(i).Child("mountPath").String()
	}
	if ck := v.tj.Spec.Checkpoint; ck != nil {
		taken[path.Clean(ck.MountPath)] = "spec.checkpoint.mountPath"
	}
	for i, m := range c.VolumeMounts {
		mp := p.Child("volumeMounts").Index(i)
		if strings.HasPrefix(m.Name, datasetVolumePrefix) {
			v.forbid(mp.Child("name"), "the operator mounts the dataset volumes itself, from spec.datasets and spec.checkpoint")
		}
		if by, ok := taken[path.Clean(m.MountPath)]; ok {
			v.forbid(mp.Child("mountPath"), "%s is where %s mounts a dataset", m.MountPath, by)
		}
		if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional {
			v.forbid(mp.Child("mountPropagation"), "Bidirectional mount propagation is not allowed")
		}
	}
	if len(c.VolumeDevices) > 0 {
		v.forbid(p.Child("volumeDevices"), "raw block devices are not allowed")
	}
}

// noGPUs refuses GPU resources in a template's requests and limits: a run's GPUs are spec.gpusPerNode, given to
// the first container by the operator, so that Kueue's quota and the budget see every one.
func (v *validator) noGPUs(p *field.Path, r *corev1.ResourceRequirements) {
	for _, part := range []struct {
		name string
		list corev1.ResourceList
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		for _, name := range slices.Sorted(maps.Keys(part.list)) {
			if IsGPUResource(name, v.classes) {
				v.forbid(p.Child(part.name).Key(string(name)), "GPUs come only from spec.gpusPerNode, which the operator gives to the first container")
			}
		}
	}
}

var podSecurityEvaluator = sync.OnceValues(func() (pspolicy.Evaluator, error) {
	return pspolicy.NewEvaluator(pspolicy.DefaultChecks(), nil)
})

// podSecurity evaluates the pod of the run's Job, as the operator would build it, at the tenant's level.
func (v *validator) podSecurity(p *field.Path) {
	// At privileged, which Pod Security itself does not check, the pod must still pass baseline but for the
	// capabilities the platform granted.
	level, tj := v.pol.Level, v.tj
	if level == aifv1.PodSecurityPrivileged {
		level, tj = aifv1.PodSecurityBaseline, withoutCapabilities(v.tj, v.pol.Capabilities)
	}
	results, err := PodSecurityOf(tj, v.pinnedClass(), level)
	if err != nil {
		v.errs = append(v.errs, field.InternalError(p, err))
		return
	}
	for _, r := range results {
		msg := r.ForbiddenReason
		if r.ForbiddenDetail != "" {
			msg += " (" + r.ForbiddenDetail + ")"
		}
		v.forbid(p, "the worker pod would violate Pod Security %q: %s", level, msg)
	}
}

// withoutCapabilities is tj with the granted capabilities taken out of its containers' added ones.
func withoutCapabilities(tj *aifv1.TrainingJob, granted []string) *aifv1.TrainingJob {
	out := tj.DeepCopy()
	s := &out.Spec.Template.Spec
	for _, cs := range [][]corev1.Container{s.InitContainers, s.Containers} {
		for i := range cs {
			if sc := cs[i].SecurityContext; sc != nil && sc.Capabilities != nil {
				sc.Capabilities.Add = slices.DeleteFunc(sc.Capabilities.Add, func(c corev1.Capability) bool {
					return slices.Contains(granted, strings.TrimPrefix(string(c), "CAP_"))
				})
			}
		}
	}
	return out
}

// PodSecurityOf evaluates the worker pod that the operator builds for a run against a Pod Security level, as
// the namespace's Pod Security admission will, and returns the checks it fails.
func PodSecurityOf(tj *aifv1.TrainingJob, class *classes.Class, level aifv1.PodSecurityLevel) ([]pspolicy.CheckResult, error) {
	ev, err := podSecurityEvaluator()
	if err != nil {
		return nil, fmt.Errorf("loading the Pod Security checks: %w", err)
	}
	lvl, err := psapi.ParseLevel(string(level))
	if err != nil {
		return nil, fmt.Errorf("pod security level %q: %w", level, err)
	}
	in := Input{Class: class}
	for _, d := range tj.Spec.Datasets {
		in.Datasets = append(in.Datasets, Mount{Name: d.Name, ClaimName: "claim-" + d.Name, MountPath: d.MountPath, ReadOnly: true})
	}
	if ck := tj.Spec.Checkpoint; ck != nil {
		in.Checkpoint = &Mount{Name: ck.DatasetMount, ClaimName: "claim-" + ck.DatasetMount, MountPath: ck.MountPath}
	}
	t := Job(tj, in).Spec.Template
	var failed []pspolicy.CheckResult
	for _, r := range ev.EvaluatePod(psapi.LevelVersion{Level: lvl, Version: psapi.LatestVersion()}, &t.ObjectMeta, &t.Spec) {
		if !r.Allowed {
			failed = append(failed, r)
		}
	}
	return failed, nil
}
