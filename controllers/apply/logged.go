package apply

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Logged wraps the controllers' client so that every write is logged through the logger of the request's
// context (ctrl.LoggerFrom, which carries the reconciled object's key): one line per write made and per write
// that failed, at the default level; conflicts, and deletes of objects already gone, at -v=1.
func Logged(c client.Client) client.Client { return &logged{Client: c} }

type logged struct{ client.Client }

func (l *logged) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	return l.log(ctx, Create, "", obj, l.Client.Create(ctx, obj, opts...))
}

func (l *logged) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	return l.log(ctx, Update, "", obj, l.Client.Update(ctx, obj, opts...))
}

func (l *logged) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
	return l.log(ctx, Patch, "", obj, l.Client.Patch(ctx, obj, p, opts...))
}

func (l *logged) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	return l.log(ctx, Delete, "", obj, l.Client.Delete(ctx, obj, opts...))
}

func (l *logged) Status() client.SubResourceWriter { return l.SubResource("status") }

func (l *logged) SubResource(sub string) client.SubResourceClient {
	return &loggedSub{SubResourceClient: l.Client.SubResource(sub), l: l, sub: sub}
}

func (l *logged) log(ctx context.Context, verb Verb, sub string, obj client.Object, err error) error {
	name := Describe(l.Client, verb, obj)
	if sub != "" {
		name += " " + sub
	}
	log := ctrl.LoggerFrom(ctx)
	switch {
	case err == nil:
		log.Info("wrote", "write", name)
	case apierrors.IsConflict(err), verb != Create && apierrors.IsNotFound(err), verb == Create && apierrors.IsAlreadyExists(err):
		// Retried, or already as the write wanted, or decided by the next pass on a cache that shows the
		// object: the controller's status says what stays wrong.
		log.V(1).Info("write not made", "write", name, "error", err.Error())
	default:
		log.Info("write failed", "write", name, "refused", Refused(err), "error", err.Error())
	}
	return err
}

type loggedSub struct {
	client.SubResourceClient
	l   *logged
	sub string
}

func (s *loggedSub) Create(ctx context.Context, obj, subResource client.Object, opts ...client.SubResourceCreateOption) error {
	return s.l.log(ctx, Create, s.sub, obj, s.SubResourceClient.Create(ctx, obj, subResource, opts...))
}

func (s *loggedSub) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	return s.l.log(ctx, Update, s.sub, obj, s.SubResourceClient.Update(ctx, obj, opts...))
}

func (s *loggedSub) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	return s.l.log(ctx, Patch, s.sub, obj, s.SubResourceClient.Patch(ctx, obj, p, opts...))
}
