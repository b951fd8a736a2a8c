package apply

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func configMap(name, value string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Data: map[string]string{"k": value}}
}

// Apply's sequencing: the writes in order, nothing sent for a write that changes nothing, a stop at the first
// failure that names the write. The client is controller-runtime's in-memory one, refusing one name as an API
// server's validation would; the controllers' integration tests run the same code against a real API server.
func TestApply(t *testing.T) {
	ctx := context.Background()
	var sent []string
	refuse := func(obj client.Object) error {
		sent = append(sent, obj.GetName())
		if obj.GetName() == "refused" {
			return apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, "refused", field.ErrorList{field.Invalid(field.NewPath("data"), "x", "not allowed")})
		}
		return nil
	}
	existing := configMap("same", "1")
	changed := configMap("changed", "1")
	c := fake.NewClientBuilder().WithObjects(existing.DeepCopy(), changed.DeepCopy(), configMap("old", "1")).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := refuse(obj); err != nil {
				return err
			}
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			_ = refuse(obj)
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			_ = refuse(obj)
			return c.Patch(ctx, obj, p, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			_ = refuse(obj)
			return c.Delete(ctx, obj, opts...)
		},
	}).Build()
	read := func(name string) *corev1.ConfigMap {
		cm := &corev1.ConfigMap{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: name}, cm); err != nil {
			t.Fatal(err)
		}
		return cm
	}
	same, updated := read("same"), read("changed")
	want := updated.DeepCopy()
	want.Data["k"] = "2"
	plan := Plan{
		{Verb: Create, Object: configMap("new", "1")},
		{Verb: Create, Object: configMap("same", "other"), IfMissing: true}, // exists: counted as made, not changed
		{Verb: Update, Object: same.DeepCopy(), Current: same},
		{Verb: Patch, Object: want, Current: updated, Lock: true},
		{Verb: Delete, Object: configMap("old", "")},
		{Verb: Delete, Object: configMap("gone", "")},
		{Verb: Create, Object: configMap("refused", "1")},
		{Verb: Create, Object: configMap("after", "1")},
	}
	err := Apply(ctx, c, plan)
	var failed *Failed
	if !errors.As(err, &failed) || failed.Write != "create ConfigMap ns/refused" || !Refused(err) {
		t.Fatalf("Apply = %v, want the refused create named", err)
	}
	if diff := cmp.Diff([]string{"new", "same", "changed", "old", "gone", "refused"}, sent); diff != "" {
		t.Errorf("writes sent (-want +got):\n%s", diff)
	}
	if read("changed").Data["k"] != "2" || read("same").Data["k"] != "1" {
		t.Errorf("patched %v, kept %v", read("changed").Data, read("same").Data)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "after"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("a write after the failure was made: %v", err)
	}
	// Without IfMissing, an object of that name that exists already is a failure: it is not the one planned.
	if err := Apply(ctx, c, Plan{{Verb: Create, Object: configMap("new", "other")}}); !errors.As(err, &failed) || !apierrors.IsAlreadyExists(err) ||
		failed.Write != "create ConfigMap ns/new" {
		t.Fatalf("Apply = %v, want the existing object named", err)
	}
}

func TestConditionEvents(t *testing.T) {
	cond := func(typ string, s metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: typ + " " + reason}
	}
	before := []metav1.Condition{cond("Ready", metav1.ConditionTrue, "Bound"), cond("Verified", metav1.ConditionFalse, "Running")}
	after := []metav1.Condition{cond("Ready", metav1.ConditionTrue, "Bound"), cond("Verified", metav1.ConditionFalse, "Mismatch"), cond("InUse", metav1.ConditionTrue, "Mounted")}
	warn := func(c metav1.Condition) bool { return c.Status == metav1.ConditionFalse }
	got := ConditionEvents(before, after, warn)
	want := []Event{{Warning: true, Reason: "Mismatch", Action: "Verified", Message: "Verified Mismatch"}, {Reason: "Mounted", Action: "InUse", Message: "InUse Mounted"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("all types (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[1:], ConditionEvents(before, after, warn, "Ready", "InUse")); diff != "" {
		t.Errorf("chosen types (-want +got):\n%s", diff)
	}
}

// Every write of the controllers' client leaves one line with the write's name: made, failed (with the API
// server's answer), or, at -v=1, one that a retry or the next pass settles (a conflict, an object gone or
// already there).
func TestLoggedWrites(t *testing.T) {
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{Verbosity: 1})
	ctx := ctrl.LoggerInto(context.Background(), log)
	c := Logged(fake.NewClientBuilder().WithObjects(configMap("old", "1")).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if obj.GetName() == "refused" {
				return apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "refused", errors.New("exceeded quota"))
			}
			return c.Create(ctx, obj, opts...)
		},
	}).Build())
	_ = c.Create(ctx, configMap("new", "1"))
	_ = c.Create(ctx, configMap("refused", "1"))
	stale := configMap("old", "2")
	stale.ResourceVersion = "1"
	_ = c.Update(ctx, stale)
	_ = c.Status().Update(ctx, configMap("new", "1"))
	_ = c.Create(ctx, configMap("new", "1"))
	want := []string{
		`"level"=0 "msg"="wrote" "write"="create ConfigMap ns/new"`,
		`"level"=0 "msg"="write failed" "write"="create ConfigMap ns/refused" "refused"=true "error"="configmaps \"refused\" is forbidden: exceeded quota"`,
		`"level"=1 "msg"="write not made" "write"="update ConfigMap ns/old"`,
		`"level"=1 "msg"="write not made" "write"="update ConfigMap ns/new status"`, // no status here: not found
		`"level"=1 "msg"="write not made" "write"="create ConfigMap ns/new"`,        // exists already
	}
	if len(lines) != len(want) {
		t.Fatalf("log lines:\n%s", strings.Join(lines, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], want[i])
		}
	}
}

// A failure already shown for this generation is not written again, whatever the API server's answer says this
// time; another write's failure, or a new generation, is.
func TestFailureShown(t *testing.T) {
	first := &Failed{Write: "create Job ns/a", Err: errors.New("exceeded quota: used 3")}
	conds := FailureConditions(nil, 2, first)
	cases := []struct {
		name string
		gen  int64
		err  error
		want bool
	}{
		{"the same write, another answer", 2, &Failed{Write: "create Job ns/a", Err: errors.New("exceeded quota: used 4")}, true},
		{"another write", 2, &Failed{Write: "create Job ns/b", Err: errors.New("exceeded quota: used 3")}, false},
		{"a new generation", 3, first, false},
		{"an error that names no write, the same", 2, errors.New(first.Error()), true},
		{"an error that names no write, another", 2, errors.New("admission check x exists"), false},
		{"a wrapped step, another answer", 2, errors.New("create Job ns/a: exceeded quota: used 5"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := FailureShown(conds, tc.gen, tc.err); got != tc.want {
				t.Fatalf("FailureShown = %t, want %t", got, tc.want)
			}
		})
	}
	if FailureShown(nil, 2, first) {
		t.Fatal("a status without the failure shows it")
	}
}
