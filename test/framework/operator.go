package framework

import (
	"context"
	"fmt"
	"os"
	"sync"

	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers"
)

// Operator is the operator's manager running in the test process, as cmd/manager runs it.
type Operator struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// StartOperator starts the operator's controllers with the given configuration and clock. Stop it to
// simulate a manager going down; start another to simulate the restart.
func (e *Env) StartOperator(cfg *configv1.Configuration, clk clock.PassiveClock) (*Operator, error) {
	configv1.SetDefaults(cfg)
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 e.testEnv.Scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          webhook.NewServer(e.WebhookServerOptions()),
		// A test may run several managers one after the other in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := controllers.Setup(ctx, mgr, controllers.Options{Config: cfg, Clock: clk}); err != nil {
		cancel()
		return nil, err
	}
	o := &Operator{cancel: cancel, done: make(chan error, 1)}
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

// Stop stops the manager and waits for it to return. Calling it again returns the same result.
func (o *Operator) Stop() error {
	o.once.Do(func() {
		o.cancel()
		o.err = <-o.done
	})
	return o.err
}
