// Package conflict lets reconcilers drop optimistic-concurrency conflicts quietly.
package conflict

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Ignore turns a write conflict into a quiet end of the pass. A conflict means the object changed after the
// cache served it; the watch event of the newer version brings the object back to the reconciler, so there is
// nothing to retry and nothing to log.
func Ignore(res ctrl.Result, err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{}, nil
	}
	return res, err
}
