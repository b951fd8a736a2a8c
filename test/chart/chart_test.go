// Package chart checks the Helm chart: helm lint and helm template (helm built from the Go module proxy) with
// the default values and each preset in charts/aifactory-operator/ci, the rendered objects accepted by a real
// API server (server-side dry run), the operator configuration it renders accepted by the operator's own
// loader, its RBAC equal to what the markers generate, and the dashboard's metrics registered by the operator.
package chart

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	_ "github.com/aifactory-eu/aifactory-operator/controllers" // registers the operator's metrics
	operatorconfig "github.com/aifactory-eu/aifactory-operator/internal/config"
	"github.com/aifactory-eu/aifactory-operator/internal/factory"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

// kubeVersion is the version of the test API server; helm checks the chart's kubeVersion against it.
const kubeVersion = "v1.35.4"

var (
	chartDir = filepath.Join(framework.RepoRoot(), "charts", "aifactory-operator")
	env      *framework.Env
	helm     string
)

// valueSets are the default values and the presets.
var valueSets = map[string]string{"default": "", "lustre": "ci/lustre-values.yaml", "scale": "ci/scale-values.yaml", "beegfs": "ci/beegfs-values.yaml"}

func TestMain(m *testing.M) { os.Exit(setup(m)) }

func setup(m *testing.M) int {
	helm = filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "helm")
	if _, err := os.Stat(helm); err != nil {
		fmt.Fprintln(os.Stderr, "helm is not built: run the tests with `make unit` (hack/ensure-bins.sh helm)")
		return 1
	}
	var err error
	if env, err = framework.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	return m.Run()
}

func helmRun(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(helm, args...)
	cmd.Dir = chartDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}

func render(t *testing.T, values string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", "aifactory", ".", "--namespace", "aifactory-system", "--kube-version", kubeVersion}
	if values != "" {
		args = append(args, "-f", values)
	}
	objs, err := factory.Decode(bytes.NewReader(helmRun(t, args...)))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestLint(t *testing.T) {
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", ".", "--strict", "--kube-version", kubeVersion}
			if values != "" {
				args = append(args, "-f", values)
			}
			if out := helmRun(t, args...); !bytes.Contains(out, []byte("0 chart(s) failed")) {
				t.Fatalf("helm lint: %s", out)
			}
		})
	}
}

// Wrong values are refused by the schema, with the field named.
func TestSchemaRefusesBadValues(t *testing.T) {
	for _, bad := range []string{"replicas=0", "config.filesystems[0].name=Data,config.filesystems[0].preset=nfs", "webhook.certManager.enabld=true"} {
		cmd := exec.Command(helm, "template", "x", ".", "--kube-version", kubeVersion, "--set", bad)
		cmd.Dir = chartDir
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "values don't meet the specifications of the schema") {
			t.Errorf("--set %s: want a schema error, got %v: %s", bad, err, out)
		}
	}
}

// Every rendered object the API server knows is accepted by it (server-side dry run); cert-manager and
// Prometheus Operator objects need those projects' CRDs, which the test API server does not have.
func TestRenderedObjectsAreAccepted(t *testing.T) {
	ctx := context.Background()
	if err := env.CreateNamespaces(ctx, "aifactory-system"); err != nil {
		t.Fatal(err)
	}
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			kinds := map[string]int{}
			for _, u := range render(t, values) {
				kinds[u.GetKind()]++
				if g := u.GroupVersionKind().Group; g == "cert-manager.io" || g == "monitoring.coreos.com" {
					continue
				}
				if namespaced, err := env.Client.IsObjectNamespaced(u); err == nil && namespaced && u.GetNamespace() == "" {
					u.SetNamespace("aifactory-system") // as helm install does
				}
				err := env.Client.Patch(ctx, u, client.Apply, client.FieldOwner("chart-test"), client.ForceOwnership, client.DryRunAll) //nolint:staticcheck // unstructured objects have no apply configurations
				if err != nil {
					t.Errorf("%s %s: %v", u.GetKind(), u.GetName(), err)
				}
			}
			for _, k := range []string{"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "ConfigMap", "ValidatingWebhookConfiguration"} {
				if kinds[k] == 0 {
					t.Errorf("no %s rendered", k)
				}
			}
		})
	}
}

// The rendered operator configuration loads in the operator and has the preset's CSI volumes.
func TestConfigurationFromPresets(t *testing.T) {
	want := map[string]map[string]string{
		"default": {},
		"lustre":  {"lustre-datasets": "10.10.0.1@o2ib,10.10.0.2@o2ib:/datasets{path}", "lustre-scratch": "10.10.0.1@o2ib:/scratch"},
		"scale":   {"scale-projects": "0;0;17517390815936123441;0A0A0B0C:64F1A2B3;;;/gpfs/projects{path}"},
		"beegfs":  {"beegfs-scratch": "beegfs://beegfs-mgmt.hpc.example.eu/scratch{path}", "node-local": ""},
	}
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			var cfg *configv1.Configuration
			for _, u := range render(t, values) {
				if u.GetKind() == "ConfigMap" && strings.HasSuffix(u.GetName(), "-config") {
					data, _, _ := unstructured.NestedString(u.Object, "data", "config.yaml")
					var err error
					if cfg, err = operatorconfig.Decode([]byte(data)); err != nil {
						t.Fatalf("the operator refuses the rendered configuration: %v\n%s", err, data)
					}
				}
			}
			if cfg == nil {
				t.Fatal("no configuration rendered")
			}
			got := map[string]string{}
			for _, fs := range cfg.Filesystems {
				got[fs.Name] = ""
				if fs.CSI != nil {
					got[fs.Name] = fs.CSI.VolumeHandle
				}
			}
			if !equality.Semantic.DeepEqual(got, want[name]) {
				t.Errorf("filesystems %v, want %v", got, want[name])
			}
			if cfg.Verification.Image != "ghcr.io/aifactory-eu/aifactory-operator:0.1.0" {
				t.Errorf("verification image %q, want the operator's own", cfg.Verification.Image)
			}
			checkFilesystemMounts(t, render(t, values), cfg)
		})
	}
}

// checkFilesystemMounts checks that the Deployment mounts every filesystem read-only where the configuration
// says the operator sees it, a CSI one through the chart's read-only claim of the whole filesystem.
func checkFilesystemMounts(t *testing.T, objs []*unstructured.Unstructured, cfg *configv1.Configuration) {
	t.Helper()
	claims := map[string]*corev1.PersistentVolume{}
	var pod corev1.PodSpec
	for _, u := range objs {
		switch u.GetKind() {
		case "Deployment":
			spec, _, _ := unstructured.NestedMap(u.Object, "spec", "template", "spec")
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &pod); err != nil {
				t.Fatal(err)
			}
		case "PersistentVolume":
			pv := &corev1.PersistentVolume{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, pv); err != nil {
				t.Fatal(err)
			}
			claims[pv.Spec.ClaimRef.Name] = pv
		}
	}
	for _, fs := range cfg.Filesystems {
		var vol *corev1.Volume
		for _, m := range pod.Containers[0].VolumeMounts {
			if m.MountPath == fs.OperatorMountPath && m.ReadOnly {
				for i := range pod.Volumes {
					if pod.Volumes[i].Name == m.Name {
						vol = &pod.Volumes[i]
					}
				}
			}
		}
		switch {
		case vol == nil:
			t.Errorf("filesystem %s: nothing is mounted read-only at %s", fs.Name, fs.OperatorMountPath)
		case fs.CSI != nil:
			pv := claims[ptr.Deref(vol.PersistentVolumeClaim, corev1.PersistentVolumeClaimVolumeSource{}).ClaimName]
			if pv == nil || !vol.PersistentVolumeClaim.ReadOnly || !pv.Spec.CSI.ReadOnly || strings.Contains(pv.Spec.CSI.VolumeHandle, "{path}") ||
				pv.Spec.CSI.Driver != fs.CSI.Driver || !slices.Contains(pv.Spec.MountOptions, "ro") {
				t.Errorf("filesystem %s: want a read-only claim of a read-only volume of the whole filesystem, got %+v and %+v", fs.Name, vol, pv)
			}
		case vol.HostPath == nil || vol.HostPath.Path != fs.HostPath.Root:
			t.Errorf("filesystem %s: want the hostPath root %s, got %+v", fs.Name, fs.HostPath.Root, vol)
		}
	}
}

// The chart grants what the markers generate (config/rbac/role.yaml), no more and no less.
func TestRBACMatchesTheMarkers(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	generated, err := factory.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	rules := func(objs []*unstructured.Unstructured, kind string) []rbacv1.PolicyRule {
		for _, u := range objs {
			if u.GetKind() == kind && strings.HasSuffix(u.GetName(), "-manager") {
				var r rbacv1.ClusterRole
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &r); err != nil {
					t.Fatal(err)
				}
				return r.Rules
			}
		}
		t.Fatalf("no %s", kind)
		return nil
	}
	chart := render(t, "")
	for _, kind := range []string{"ClusterRole", "Role"} {
		if !equality.Semantic.DeepEqual(rules(chart, kind), rules(generated, kind)) {
			t.Errorf("the chart's %s differs from config/rbac/role.yaml: run make manifests", kind)
		}
	}
}

// The chart ships the same tenant pod admission policy as config/policy, which the factory and kustomize use.
func TestTenantPodPolicyMatchesConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "config", "policy", "tenant-gpu-pods.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := factory.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	chart := map[string]*unstructured.Unstructured{}
	for _, u := range render(t, "") {
		chart[u.GetKind()+"/"+u.GetName()] = u
	}
	for _, w := range want {
		got := chart[w.GetKind()+"/"+w.GetName()]
		if got == nil {
			t.Fatalf("the chart has no %s %s", w.GetKind(), w.GetName())
		}
		if !equality.Semantic.DeepEqual(got.Object["spec"], w.Object["spec"]) {
			t.Errorf("the chart's %s %s differs from config/policy", w.GetKind(), w.GetName())
		}
	}
}

// The Deployment runs non-root with a read-only root filesystem, requests resources, probes, and elects a
// leader among its two replicas.
func TestDeploymentHardening(t *testing.T) {
	for _, u := range render(t, "") {
		if u.GetKind() != "Deployment" {
			continue
		}
		var d struct {
			Spec struct {
				Replicas int32 `json:"replicas"`
				Template struct {
					Spec corev1.PodSpec `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
			t.Fatal(err)
		}
		s := d.Spec.Template.Spec
		c := s.Containers[0]
		if d.Spec.Replicas != 2 || !strings.Contains(strings.Join(c.Args, " "), "--leader-elect=true") {
			t.Errorf("replicas %d, args %v", d.Spec.Replicas, c.Args)
		}
		if !*s.SecurityContext.RunAsNonRoot || !*c.SecurityContext.ReadOnlyRootFilesystem || *c.SecurityContext.AllowPrivilegeEscalation {
			t.Errorf("security context: %+v %+v", s.SecurityContext, c.SecurityContext)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("resources or probes missing: %+v", c)
		}
		return
	}
	t.Fatal("no Deployment rendered")
}

// Every metric the Grafana dashboard queries is one the operator registers.
func TestDashboardUsesRegisteredMetrics(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "dashboards", "aifactory-operator.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := yaml.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`aifactory_[a-z_]+`).FindAllString(string(b), -1) {
		used[strings.TrimSuffix(m, "_bucket")] = true
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) < 5 {
		t.Fatalf("the dashboard queries only %v", names)
	}
	for _, n := range names {
		if !registered(n) {
			t.Errorf("the dashboard queries %s, which the operator does not register", n)
		}
	}
}

// registered reports whether the operator's registry holds a metric named name: registering another metric
// of that name with other help fails exactly then.
func registered(name string) bool {
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe"})
	if err := metrics.Registry.Register(probe); err != nil {
		return strings.Contains(err.Error(), "same fully-qualified name")
	}
	metrics.Registry.Unregister(probe)
	return false
}

// Without cert-manager, the webhook configuration trusts the CA that signed the Secret's certificate, and that
// certificate names the webhook Service.
func TestChartWebhookCertificate(t *testing.T) {
	var caBundle, caCrt, tlsCrt, svc string
	for _, u := range render(t, "") {
		switch u.GetKind() {
		case "ValidatingWebhookConfiguration":
			hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
			hook, _ := hooks[0].(map[string]any)
			caBundle, _, _ = unstructured.NestedString(hook, "clientConfig", "caBundle")
			svc, _, _ = unstructured.NestedString(hook, "clientConfig", "service", "name")
		case "Secret":
			caCrt, _, _ = unstructured.NestedString(u.Object, "data", "ca.crt")
			tlsCrt, _, _ = unstructured.NestedString(u.Object, "data", "tls.crt")
		}
	}
	if caBundle == "" || caBundle != caCrt {
		t.Fatalf("the webhook's caBundle is not the Secret's CA")
	}
	ca, err := base64.StdEncoding.DecodeString(caCrt)
	if err != nil {
		t.Fatal(err)
	}
	crtPEM, err := base64.StdEncoding.DecodeString(tlsCrt)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(crtPEM)
	if block == nil {
		t.Fatal("tls.crt is not PEM")
	}
	crt, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	if _, err := crt.Verify(x509.VerifyOptions{Roots: pool, DNSName: svc + ".aifactory-system.svc"}); err != nil {
		t.Fatalf("the serving certificate does not verify for the webhook Service: %v", err)
	}
}

// The chart reuses its certificate until the renew-after time on its Secret, then makes a new one; during that
// upgrade the webhook trusts the old and the new CA. Helm's lookup reads the Secret from the test API server
// (helm template --dry-run=server).
func TestChartWebhookCertificateRenewal(t *testing.T) {
	ctx := context.Background()
	if err := env.CreateNamespaces(ctx, "aifactory-system"); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: env.Config.CertData, ClientKeyData: env.Config.KeyData, Token: env.Config.BearerToken}
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	cfg.CurrentContext = "envtest"
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	renderLive := func() (secret *unstructured.Unstructured, caBundle string) {
		out := helmRun(t, "template", "aifactory", ".", "--namespace", "aifactory-system", "--kube-version", kubeVersion,
			"--dry-run=server", "--kubeconfig", kubeconfig)
		objs, err := factory.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range objs {
			switch u.GetKind() {
			case "Secret":
				secret = u
			case "ValidatingWebhookConfiguration":
				hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
				hook, _ := hooks[0].(map[string]any)
				caBundle, _, _ = unstructured.NestedString(hook, "clientConfig", "caBundle")
			}
		}
		return secret, caBundle
	}
	first, _ := renderLive()
	first.SetNamespace("aifactory-system")
	first.SetAnnotations(map[string]string{"aifactory.eu/renew-after": "4102444800"}) // 2100: keep it
	if err := env.Client.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	oldCA, _, _ := unstructured.NestedString(first.Object, "data", "ca.crt")
	oldCrt, _, _ := unstructured.NestedString(first.Object, "data", "tls.crt")

	kept, bundle := renderLive()
	if crt, _, _ := unstructured.NestedString(kept.Object, "data", "tls.crt"); crt != oldCrt || bundle != oldCA {
		t.Fatal("before its renew-after time the certificate must be reused")
	}

	first.SetAnnotations(map[string]string{"aifactory.eu/renew-after": "1"}) // long past: renew
	if err := env.Client.Update(ctx, first); err != nil {
		t.Fatal(err)
	}
	renewed, bundle := renderLive()
	newCA, _, _ := unstructured.NestedString(renewed.Object, "data", "ca.crt")
	if crt, _, _ := unstructured.NestedString(renewed.Object, "data", "tls.crt"); crt == oldCrt || newCA == oldCA {
		t.Fatal("after its renew-after time the certificate must be renewed")
	}
	pemBundle, err := base64.StdEncoding.DecodeString(bundle)
	if err != nil {
		t.Fatal(err)
	}
	oldPEM, _ := base64.StdEncoding.DecodeString(oldCA)
	newPEM, _ := base64.StdEncoding.DecodeString(newCA)
	if !bytes.Contains(pemBundle, oldPEM) || !bytes.Contains(pemBundle, newPEM) {
		t.Fatal("while renewing, the webhook must trust both the old and the new CA")
	}
}
