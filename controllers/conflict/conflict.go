// Package conflict lets reconcilers end a pass on an optimistic-concurrency conflict, with a debug log line.
package conflict

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Ignore turns a write conflict into the end of the pass. A conflict means the object changed after the cache
// served it; the watch event of the newer version brings the object back to the reconciler, so there is
// nothing to retry. The conflict is logged at debug level (-v=1), where it explains a pass that wrote nothing.
func Ignore(ctx context.Context, res ctrl.Result, err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		ctrl.LoggerFrom(ctx).V(1).Info("write conflict; the newer object brings the pass back", "error", err.Error())
		return ctrl.Result{}, nil
	}
	return res, err
}
