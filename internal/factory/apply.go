package factory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

// fieldOwner is the field manager of what the factory applies.
const fieldOwner = "aifactory-factory"

func metaConfig() metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: configv1.APIVersion, Kind: configv1.Kind}
}

// Decode reads the objects of a multi-document YAML stream.
func Decode(r io.Reader) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// Apply server-side applies objects as the factory.
func Apply(ctx context.Context, c client.Client, objs []*unstructured.Unstructured) error {
	for _, u := range objs {
		if err := c.Patch(ctx, u, client.Apply, client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil { //nolint:staticcheck // unstructured objects have no apply configurations
			return fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

func (f *Factory) applyFile(ctx context.Context, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	objs, err := Decode(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return Apply(ctx, f.Client, objs)
}

// applyDir applies the YAML files of a folder in name order, then waits for any CRDs among them to be
// established.
func (f *Factory) applyDir(ctx context.Context, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var crds []string
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		objs, err := Decode(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if err := Apply(ctx, f.Client, objs); err != nil {
			return err
		}
		for _, o := range objs {
			if o.GetKind() == "CustomResourceDefinition" {
				crds = append(crds, o.GetName())
			}
		}
	}
	return f.waitEstablished(ctx, crds)
}

// waitEstablished waits until the API server serves the named CRDs, and its discovery lists every served
// version: a component that starts next (Kueue) maps its kinds through discovery once, at start, and fails if a
// version is not listed yet, which on a loaded machine can be a while after the CRD is established.
func (f *Factory) waitEstablished(ctx context.Context, names []string) error {
	dc, err := discovery.NewDiscoveryClientForConfig(f.Config)
	if err != nil {
		return err
	}
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := f.Client.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
				return false, err
			}
			return established(crd) && discovered(dc, crd), nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not established and discovered: %w", name, err)
		}
	}
	return nil
}

// discovered reports whether discovery lists the CRD's resource in each version it serves.
func discovered(dc discovery.DiscoveryInterface, crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, v := range crd.Spec.Versions {
		if !v.Served {
			continue
		}
		list, err := dc.ServerResourcesForGroupVersion(crd.Spec.Group + "/" + v.Name)
		if err != nil || !slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == crd.Spec.Names.Plural }) {
			return false
		}
	}
	return true
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}

func (f *Factory) ensureNamespace(ctx context.Context, name string) error {
	err := f.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	return client.IgnoreAlreadyExists(err)
}

// bindOperator binds the operator's generated ClusterRole and leader-election Role to the operator's user.
func (f *Factory) bindOperator(ctx context.Context) error {
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: OperatorUser}}
	const role = "aifactory-operator-manager"
	objs := []client.Object{
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role, Namespace: "aifactory-system"}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role}},
	}
	for _, o := range objs {
		if err := f.Client.Create(ctx, o); client.IgnoreAlreadyExists(err) != nil {
			return fmt.Errorf("binding the operator's role: %w", err)
		}
	}
	return nil
}

// kueueWebhookWanted keeps Kueue's webhooks for its own kinds and for batch/Job and Pod, the integrations the
// factory enables. The others would send every Deployment or StatefulSet to a path Kueue does not serve.
func kueueWebhookWanted(path string) bool {
	return strings.Contains(path, "-kueue-x-k8s-io-") || strings.HasSuffix(path, "-batch-v1-job") || strings.HasSuffix(path, "--v1-pod")
}

// TenantNamespaces selects the namespaces the operator labels as a tenant's. Kueue's Pod webhooks are limited to
// them, as Kueue's own installation limits them away from system namespaces: a Pod elsewhere never waits for
// Kueue's webhook.
var TenantNamespaces = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: aifv1.TenantLabel, Operator: metav1.LabelSelectorOpExists}}}

// podWebhooksInTenantNamespaces gives Kueue's Pod webhooks the tenant namespace selector.
func podWebhooksInTenantNamespaces[W any](hooks []W, config func(*W) *admissionv1.WebhookClientConfig, selector func(*W) **metav1.LabelSelector) {
	for i := range hooks {
		if cc := config(&hooks[i]); cc.URL != nil && strings.HasSuffix(*cc.URL, "--v1-pod") {
			*selector(&hooks[i]) = TenantNamespaces.DeepCopy()
		}
	}
}

// registerWebhooks reads webhook configurations written for an in-cluster Service and registers them by URL on
// 127.0.0.1:port with the factory's CA, keeping the webhooks whose path keep accepts. The configurations get
// prefix in front of their names.
func (f *Factory) registerWebhooks(ctx context.Context, manifests, prefix string, port int, keep func(path string) bool) error {
	b, err := os.ReadFile(manifests)
	if err != nil {
		return err
	}
	ca, err := f.pki.caPEM()
	if err != nil {
		return err
	}
	for _, doc := range bytes.Split(b, []byte("\n---")) {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil || meta.Kind == "" {
			continue
		}
		var out client.Object
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			in := &admissionv1.MutatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, in); err != nil {
				return err
			}
			cc := func(w *admissionv1.MutatingWebhook) *admissionv1.WebhookClientConfig { return &w.ClientConfig }
			hooks := byURL(in.Webhooks, cc, keep, port, ca)
			podWebhooksInTenantNamespaces(hooks, cc, func(w *admissionv1.MutatingWebhook) **metav1.LabelSelector { return &w.NamespaceSelector })
			out = &admissionv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: prefix + in.Name}, Webhooks: hooks}
		case "ValidatingWebhookConfiguration":
			in := &admissionv1.ValidatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, in); err != nil {
				return err
			}
			cc := func(w *admissionv1.ValidatingWebhook) *admissionv1.WebhookClientConfig { return &w.ClientConfig }
			hooks := byURL(in.Webhooks, cc, keep, port, ca)
			podWebhooksInTenantNamespaces(hooks, cc, func(w *admissionv1.ValidatingWebhook) **metav1.LabelSelector { return &w.NamespaceSelector })
			out = &admissionv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: prefix + in.Name}, Webhooks: hooks}
		default:
			continue
		}
		if err := f.createOrReplace(ctx, out); err != nil {
			return err
		}
	}
	return nil
}

// byURL keeps the webhooks whose Service path keep accepts, and points them at that path on 127.0.0.1:port,
// trusting ca.
func byURL[W any](hooks []W, config func(*W) *admissionv1.WebhookClientConfig, keep func(path string) bool, port int, ca []byte) []W {
	var out []W
	for i := range hooks {
		cc := config(&hooks[i])
		path := ""
		if cc.Service != nil && cc.Service.Path != nil {
			path = *cc.Service.Path
		}
		if keep(path) {
			*cc = admissionv1.WebhookClientConfig{URL: ptr.To(fmt.Sprintf("https://127.0.0.1:%d%s", port, path)), CABundle: ca}
			out = append(out, hooks[i])
		}
	}
	return out
}

func (f *Factory) createOrReplace(ctx context.Context, o client.Object) error {
	err := f.Client.Create(ctx, o)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	old, ok := o.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("copying %s", o.GetName())
	}
	if err := f.Client.Get(ctx, client.ObjectKeyFromObject(o), old); err != nil {
		return err
	}
	o.SetResourceVersion(old.GetResourceVersion())
	return f.Client.Update(ctx, o)
}
