// Package apply makes the writes that a controller's decide function planned, in the planned order, and stops at
// the first failure, naming the write. Controllers write their status after Apply whatever it returned, so that
// the status says which write failed and why. Logged makes every write of the controllers' client leave a log
// line.
package apply

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Verb is what a write does.
type Verb string

// The verbs of a plan.
const (
	// Create creates Object. An object of that name that exists already is a failure, unless the write says
	// IfMissing.
	Create Verb = "create"
	// Update replaces Current with Object, and writes nothing when they are equal; an object that is gone
	// counts as nothing to write (the next pass sees it gone).
	Update Verb = "update"
	// Patch sends the merge patch from Current to Object, and writes nothing when they are equal. With Lock
	// the patch carries Current's resourceVersion and fails with a conflict if the object changed since.
	Patch Verb = "patch"
	// Delete deletes Object; one that is gone already counts as deleted.
	Delete Verb = "delete"
)

// Write is one step of a plan.
type Write struct {
	Verb Verb
	// Object is the object to create or delete, or the desired state of the object to update or patch.
	Object client.Object
	// Current is the object as the controller read it, for Update and Patch.
	Current client.Object
	// Lock makes a Patch fail if the object changed since it was read.
	Lock bool
	// Status makes an Update or Patch write the status subresource.
	Status bool
	// IfMissing makes a Create of an object that exists already count as made: for a child whose name is
	// deterministic and whose owner is checked when it is read, so that an existing one is one an earlier pass
	// created and the cache has not shown yet.
	IfMissing bool
	// DeleteOptions are passed to a Delete (preconditions, propagation).
	DeleteOptions []client.DeleteOption
	// Why says in a few words why the write is made, for the reader of a plan (and the log at -v=2).
	Why string
	// Then runs after the write was made, and not when it had nothing to change or failed: for what must
	// follow the write and only it (remembering a grant the cache has yet to show, an event on the child).
	Then func()
}

// Plan is an ordered list of writes: crash safety depends on the order (a record is written before the child
// it describes, a ledger before the finalizers it releases), so Apply keeps it and stops at the first failure.
type Plan []Write

// Failed is the error of a plan that stopped at one of its writes.
type Failed struct {
	// Write names the write: verb, kind and key ("create Job tenant-a/run-0").
	Write string
	// Verb is what the write did.
	Verb Verb
	Err  error
}

func (f *Failed) Error() string { return f.Write + ": " + f.Err.Error() }

func (f *Failed) Unwrap() error { return f.Err }

// Refused reports whether the API server turned a write down for good (the object or the request is wrong, or
// a policy forbids it), as opposed to a conflict or an outage that a retry mends.
func Refused(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsRequestEntityTooLargeError(err)
}

// Apply makes the plan's writes in order. It returns nil when all were made or had nothing to change, and
// otherwise a *Failed for the first write that failed; the writes after it are not made.
func Apply(ctx context.Context, c client.Client, plan Plan) error {
	for _, w := range plan {
		wrote, err := do(ctx, c, w)
		if err != nil {
			return &Failed{Write: w.Name(c), Verb: w.Verb, Err: err}
		}
		if wrote && w.Then != nil {
			w.Then()
		}
		if log := ctrl.LoggerFrom(ctx).V(2); !wrote && log.Enabled() {
			log.Info("nothing to write", "write", w.Name(c), "why", w.Why)
		}
	}
	return nil
}

func do(ctx context.Context, c client.Client, w Write) (bool, error) {
	switch w.Verb {
	case Create:
		err := c.Create(ctx, w.Object)
		if w.IfMissing && apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		return err == nil, err
	case Update:
		if w.Current != nil && equality.Semantic.DeepEqual(w.Current, w.Object) {
			return false, nil
		}
		var err error
		if w.Status {
			err = c.Status().Update(ctx, w.Object)
		} else {
			err = c.Update(ctx, w.Object)
		}
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	case Patch:
		if w.Current == nil {
			return false, errors.New("a patch needs the object as read")
		}
		if equality.Semantic.DeepEqual(w.Current, w.Object) {
			return false, nil
		}
		p := client.MergeFrom(w.Current)
		if w.Lock {
			p = client.MergeFromWithOptions(w.Current, client.MergeFromWithOptimisticLock{})
		}
		var err error
		if w.Status {
			err = c.Status().Patch(ctx, w.Object, p)
		} else {
			err = c.Patch(ctx, w.Object, p)
		}
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	case Delete:
		err := c.Delete(ctx, w.Object, w.DeleteOptions...)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
	return false, fmt.Errorf("unknown verb %q", w.Verb)
}

// Describe names a write as the log and the status show it: "create Job tenant-a/run-0".
func Describe(c client.Client, verb Verb, obj client.Object) string {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		if gvk, err := apiutil.GVKForObject(obj, c.Scheme()); err == nil {
			kind = gvk.Kind
		}
	}
	key := obj.GetName()
	if ns := obj.GetNamespace(); ns != "" {
		key = ns + "/" + key
	}
	return fmt.Sprintf("%s %s %s", verb, kind, key)
}

// Name is how a write is named in logs and in a *Failed: "create Job tenant-a/run-0", "update ClusterQueue
// status tenant-a" for a status write.
func (w Write) Name(c client.Client) string {
	if w.Status {
		return Describe(c, w.Verb, w.Object) + " status"
	}
	return Describe(c, w.Verb, w.Object)
}
