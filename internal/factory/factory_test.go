package factory

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestKueueWebhooksAreReducedToTheEnabledIntegration(t *testing.T) {
	for path, want := range map[string]bool{
		"/mutate-kueue-x-k8s-io-v1beta2-clusterqueue":      true,
		"/validate-kueue-x-k8s-io-v1beta2-workload":        true,
		"/mutate-batch-v1-job":                             true,
		"/validate-batch-v1-job":                           true,
		"/mutate--v1-pod":                                  true, // the Pod integration gates plain pods in tenant namespaces
		"/validate--v1-pod":                                true,
		"/mutate-apps-v1-deployment":                       false,
		"/validate-jobset-x-k8s-io-v1alpha2-jobset":        false,
		"/mutate-kubeflow-org-v1-pytorchjob":               false,
		"/validate-trainer-kubeflow-org-v1alpha1-trainjob": false,
	} {
		if got := kueueWebhookWanted(path); got != want {
			t.Errorf("%s: got %t, want %t", path, got, want)
		}
	}
}

func TestSimulatedNodes(t *testing.T) {
	var gpus, slices int64
	tainted := 0
	for _, n := range Nodes() {
		gpus += n.Status.Capacity.Name("nvidia.com/gpu", "").Value()
		slices += n.Status.Capacity.Name(migResource, "").Value()
		if len(n.Spec.Taints) > 0 {
			tainted++
			if n.Labels[productLabel] == "" {
				t.Errorf("GPU node %s has no GPU Feature Discovery product label", n.Name)
			}
		}
		if n.Annotations["kwok.x-k8s.io/node"] != "fake" || n.Status.Capacity.Cpu().IsZero() {
			t.Errorf("node %s is not a complete kwok node", n.Name)
		}
	}
	if gpus != H100Nodes*GPUsPerH100Node || slices != MIGSlicesPerNode || tainted != H100Nodes+1 {
		t.Errorf("gpus %d, MIG slices %d, tainted nodes %d", gpus, slices, tainted)
	}
}

func TestCertificatesChainToTheFactoryCA(t *testing.T) {
	dir := t.TempDir()
	p, err := loadOrCreatePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.serving("apiserver", "kubernetes"); err != nil {
		t.Fatal(err)
	}
	if err := p.client("admin", "factory-admin", "system:masters"); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	ca, _ := p.caPEM()
	pool.AppendCertsFromPEM(ca)
	for name, usage := range map[string]x509.ExtKeyUsage{"apiserver": x509.ExtKeyUsageServerAuth, "admin": x509.ExtKeyUsageClientAuth} {
		b, err := os.ReadFile(filepath.Join(dir, name+".crt"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseCert(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if name == "apiserver" && (len(c.IPAddresses) != 1 || !c.IPAddresses[0].IsLoopback()) {
			t.Errorf("the API server's certificate must name 127.0.0.1 only: %v", c.IPAddresses)
		}
	}
	// A second run keeps the CA, so that kubeconfigs stay valid.
	again, err := loadOrCreatePKI(dir)
	if err != nil || !again.caCert.Equal(p.caCert) {
		t.Errorf("the CA was replaced: %v", err)
	}
}

func TestKueueConfigListensOnLoopbackOnly(t *testing.T) {
	cfg := KueueConfig(1, 2, "/certs")
	for _, want := range []string{`healthProbeBindAddress: "127.0.0.1:1"`, "host: 127.0.0.1, port: 2", `metrics: {bindAddress: "0"}`,
		`frameworks: ["batch/job", "pod"]`, "manageJobsWithoutQueueName: true", "matchExpressions: [{key: aifactory.eu/tenant, operator: Exists}]"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("missing %q in\n%s", want, cfg)
		}
	}
}

func TestByURLKeepsAndRewritesWebhooks(t *testing.T) {
	path := func(p string) *string { return &p }
	hooks := []admissionv1.ValidatingWebhook{
		{Name: "job", ClientConfig: admissionv1.WebhookClientConfig{Service: &admissionv1.ServiceReference{Name: "svc", Namespace: "system", Path: path("/validate-batch-v1-job")}}},
		{Name: "pod", ClientConfig: admissionv1.WebhookClientConfig{Service: &admissionv1.ServiceReference{Name: "svc", Namespace: "system", Path: path("/mutate--v1-pod")}}},
		{Name: "deployment", ClientConfig: admissionv1.WebhookClientConfig{Service: &admissionv1.ServiceReference{Name: "svc", Namespace: "system", Path: path("/mutate-apps-v1-deployment")}}},
	}
	cfg := func(w *admissionv1.ValidatingWebhook) *admissionv1.WebhookClientConfig { return &w.ClientConfig }
	got := byURL(hooks, cfg, kueueWebhookWanted, 9443, []byte("ca"))
	podWebhooksInTenantNamespaces(got, cfg, func(w *admissionv1.ValidatingWebhook) **metav1.LabelSelector { return &w.NamespaceSelector })
	if len(got) != 2 || got[0].Name != "job" || got[1].Name != "pod" {
		t.Fatalf("kept %+v", got)
	}
	cc := got[0].ClientConfig
	if cc.Service != nil || cc.URL == nil || *cc.URL != "https://127.0.0.1:9443/validate-batch-v1-job" || string(cc.CABundle) != "ca" {
		t.Errorf("client config %+v", cc)
	}
	if got[0].NamespaceSelector != nil {
		t.Errorf("the Job webhook got a namespace selector: %v", got[0].NamespaceSelector)
	}
	if sel := got[1].NamespaceSelector; sel == nil || len(sel.MatchExpressions) != 1 || sel.MatchExpressions[0].Key != "aifactory.eu/tenant" {
		t.Errorf("the Pod webhook is not limited to tenant namespaces: %v", sel)
	}
}
