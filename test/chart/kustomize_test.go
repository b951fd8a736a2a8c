package chart

import (
	"bytes"
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/aifactory-eu/aifactory-operator/internal/factory"
	"github.com/aifactory-eu/aifactory-operator/test/framework"
)

func kustomize(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(framework.RepoRoot(), "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := factory.Decode(bytes.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// config/default installs what the chart installs with cert-manager, and the API server accepts it.
func TestKustomizeMatchesTheChart(t *testing.T) {
	ctx := context.Background()
	if err := env.CreateNamespaces(ctx, "aifactory-system"); err != nil {
		t.Fatal(err)
	}
	// The kinds each installs, leaving out what only one of them offers as an option (ServiceMonitor) and what
	// the test API server cannot take (cert-manager's kinds) or already has (CRDs).
	kinds := func(objs []*unstructured.Unstructured) string {
		set := map[string]bool{}
		for _, u := range objs {
			switch {
			case u.GetKind() == "Namespace", u.GetKind() == "CustomResourceDefinition", u.GetKind() == "ServiceMonitor":
			case u.GroupVersionKind().Group == "cert-manager.io":
			default:
				set[u.GetKind()] = true
			}
		}
		var out []string
		for k := range set {
			out = append(out, k)
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	kust := kustomize(t)
	if got, want := kinds(kust), kinds(render(t, "ci/lustre-values.yaml")); got != want {
		t.Errorf("config/default installs %s; the chart with cert-manager %s", got, want)
	}
	for _, u := range kust {
		if u.GetKind() == "ValidatingWebhookConfiguration" {
			checkKustomizedWebhooks(t, u)
		}
		if u.GroupVersionKind().Group == "cert-manager.io" {
			continue
		}
		if u.GetKind() == "CustomResourceDefinition" || u.GetKind() == "Namespace" {
			continue // installed by the test API server, and created by the chart test
		}
		if err := env.Client.Patch(ctx, u, client.Apply, client.FieldOwner("kustomize-test"), client.ForceOwnership, client.DryRunAll); err != nil { //nolint:staticcheck // unstructured objects have no apply configurations
			t.Errorf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

// checkKustomizedWebhooks checks that every webhook points at the manager's Service and that the Pod webhooks
// are limited to tenant namespaces, as in the chart.
func checkKustomizedWebhooks(t *testing.T, u *unstructured.Unstructured) {
	t.Helper()
	v := &admissionv1.ValidatingWebhookConfiguration{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, v); err != nil {
		t.Fatal(err)
	}
	for _, w := range v.Webhooks {
		svc := w.ClientConfig.Service
		if svc == nil || svc.Name != "aifactory-operator-webhook" || svc.Namespace != "aifactory-system" {
			t.Errorf("webhook %s points at %+v", w.Name, svc)
			continue
		}
		pods := strings.HasSuffix(ptr.Deref(svc.Path, ""), "--v1-pod")
		limited := w.NamespaceSelector != nil && len(w.NamespaceSelector.MatchExpressions) == 1 && w.NamespaceSelector.MatchExpressions[0].Key == "aifactory.eu/tenant"
		if pods != limited {
			t.Errorf("webhook %s: Pod webhook %v, limited to tenant namespaces %v", w.Name, pods, limited)
		}
	}
}
