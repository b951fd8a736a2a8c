package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers"
)

// Operator is the operator's manager running in the test process, as cmd/manager runs it.
type Operator struct {
	crashed chan Write
	cancel  context.CancelFunc
	done    chan error
	once    sync.Once
	err     error
}

// Write is one write the operator's client made: its verb (create, update, patch, delete, or the subresource's
// name and verb, such as "status patch") and the object as written.
type Write struct {
	Verb   string
	Object client.Object
}

// CrashAfter is a fault to inject: when it returns true for a write that succeeded, the operator stops at once,
// as if its process had been killed right after that write. Every later write of that operator fails, so
// nothing after the crash point reaches the API server.
type CrashAfter func(Write) bool

// StartOperator starts the operator's controllers with the given configuration and clock. Stop it to
// simulate a manager going down; start another to simulate the restart.
func (e *Env) StartOperator(cfg *configv1.Configuration, clk clock.PassiveClock) (*Operator, error) {
	return e.StartCrashingOperator(cfg, clk, nil)
}

// StartCrashingOperator starts the operator as StartOperator does, and crashes it at the first write for which
// crash returns true (never, for nil). Crashed reports when it did.
func (e *Env) StartCrashingOperator(cfg *configv1.Configuration, clk clock.PassiveClock, crash CrashAfter) (*Operator, error) {
	configv1.SetDefaults(cfg)
	if err := e.waitWebhookPortFree(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := &Operator{cancel: cancel, done: make(chan error, 1), crashed: make(chan Write, 1)}
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		NewClient: func(config *rest.Config, options client.Options) (client.Client, error) {
			if crash == nil {
				return client.New(config, options)
			}
			c, err := client.NewWithWatch(config, options)
			if err != nil {
				return nil, err
			}
			return interceptor.NewClient(c, o.faults(crash)), nil
		},
		Scheme:                 e.testEnv.Scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          webhook.NewServer(e.WebhookServerOptions()),
		// A test may run several managers one after the other in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if err := controllers.Setup(ctx, mgr, controllers.Options{Config: cfg, Clock: clk}); err != nil {
		cancel()
		return nil, err
	}
	go func() {
		err := mgr.Start(ctx)
		if err != nil && ctx.Err() == nil {
			// The manager stopped on its own (a port taken, caches that never synced): say so at once, since
			// every check after this fails for want of an operator.
			fmt.Fprintf(os.Stderr, "the operator stopped by itself: %v\n", err)
		}
		o.done <- err
	}()
	return o, nil
}

// waitWebhookPortFree waits until the webhook port can be bound: a manager that was just stopped may still be
// closing its listener, and a new one would otherwise fail to start ("address already in use").
func (e *Env) waitWebhookPortFree() error {
	o := e.WebhookServerOptions()
	addr := net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false, nil
		}
		return true, l.Close()
	})
	if err != nil {
		return fmt.Errorf("the webhook port %s stayed in use: %w", addr, err)
	}
	return nil
}

// Crashed is closed, after the crash write was sent, once the injected crash happened.
func (o *Operator) Crashed() <-chan Write { return o.crashed }

// faults wraps every write: after one that succeeded and that crash picks, the manager is cancelled and every
// later write refused.
func (o *Operator) faults(crash CrashAfter) interceptor.Funcs {
	var mu sync.Mutex
	down := false
	// The lock guards only the crash decision, not the writes: the manager's client waits in its rate limiter,
	// and writes held in a queue behind one lock would stall every controller. A write already in flight when
	// the crash is decided may still land, as it may when a process is killed.
	around := func(verb string, obj client.Object, write func() error) error {
		mu.Lock()
		crashed := down
		mu.Unlock()
		if crashed {
			return errors.New("the operator crashed (injected by the test)")
		}
		if err := write(); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if !down && crash(Write{Verb: verb, Object: obj}) {
			down = true
			o.crashed <- Write{Verb: verb, Object: obj.DeepCopyObject().(client.Object)}
			close(o.crashed)
			o.cancel()
		}
		return nil
	}
	return interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			return around("create", obj, func() error { return c.Create(ctx, obj, opts...) })
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			return around("update", obj, func() error { return c.Update(ctx, obj, opts...) })
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			return around("patch", obj, func() error { return c.Patch(ctx, obj, patch, opts...) })
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			return around("delete", obj, func() error { return c.Delete(ctx, obj, opts...) })
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			return around(sub+" update", obj, func() error { return c.SubResource(sub).Update(ctx, obj, opts...) })
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			return around(sub+" patch", obj, func() error { return c.SubResource(sub).Patch(ctx, obj, patch, opts...) })
		},
	}
}

// Stop stops the manager and waits for it to return. Calling it again returns the same result.
func (o *Operator) Stop() error {
	o.once.Do(func() {
		o.cancel()
		o.err = <-o.done
	})
	return o.err
}
