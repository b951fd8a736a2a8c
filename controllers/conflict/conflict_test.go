package conflict

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
)

func TestIgnore(t *testing.T) {
	gr := schema.GroupResource{Group: "aifactory.eu", Resource: "trainingjobs"}
	wrapped := fmt.Errorf("writing status: %w", apierrors.NewConflict(gr, "run", errors.New("modified")))
	if res, err := Ignore(context.Background(), ctrl.Result{RequeueAfter: time.Minute}, wrapped); err != nil || res.RequeueAfter != 0 {
		t.Errorf("a wrapped conflict must end the pass quietly: %v %v", res, err)
	}
	other := fmt.Errorf("reading: %w", apierrors.NewNotFound(gr, "run"))
	if _, err := Ignore(context.Background(), ctrl.Result{}, other); !errors.Is(err, other) {
		t.Errorf("other errors pass through: %v", err)
	}
	if res, err := Ignore(context.Background(), ctrl.Result{RequeueAfter: time.Minute}, nil); err != nil || res.RequeueAfter != time.Minute {
		t.Errorf("results pass through: %v %v", res, err)
	}
}
