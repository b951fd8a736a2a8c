// Command kubectl-aifactory is a kubectl plugin for tenant engineers of an AI factory. Installed on the PATH
// (or with krew), it runs as `kubectl aifactory`:
//
//	kubectl aifactory status [-n NAMESPACE]      the namespace's tenant (quota, budget) and its training runs
//	kubectl aifactory why TRAININGJOB [-n NS]    why a run waits or failed, with Kueue's figures and what to change
//	kubectl aifactory usage                      GPU-hours per tenant in the current budget period
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/controllers"
	"github.com/aifactory-eu/aifactory-operator/internal/plugin"
)

const usageText = `kubectl aifactory: training runs, quota and GPU-hours of an AI factory.

  kubectl aifactory status [-n NAMESPACE]       the namespace's tenant and its TrainingJobs
  kubectl aifactory why TRAININGJOB [-n NS]     why a run waits or failed, and what to change
  kubectl aifactory usage                       GPU-hours per tenant in the current budget period

Flags: --kubeconfig FILE, --context NAME, -n/--namespace NAME.
`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

type invocation struct {
	cmd, kubeconfig, context, namespace string
	names                               []string
}

// parse reads `COMMAND [NAME] [flags]`; flags may come before or after the name.
func parse(args []string) (invocation, error) {
	var in invocation
	fs := flag.NewFlagSet("kubectl-aifactory", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&in.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file.")
	fs.StringVar(&in.context, "context", "", "The kubeconfig context to use.")
	fs.StringVar(&in.namespace, "namespace", "", "Namespace (default: the context's).")
	fs.StringVar(&in.namespace, "n", "", "Namespace (default: the context's).")
	rest := args
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		in.cmd, rest = args[0], args[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return in, fmt.Errorf("%w\n\n%s", err, usageText)
	}
	for fs.NArg() > 0 {
		in.names = append(in.names, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return in, err
		}
	}
	return in, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	in, err := parse(args)
	if err != nil {
		return err
	}
	cmd, namespace, names := in.cmd, in.namespace, in.names
	if cmd == "" || cmd == "help" {
		_, err := io.WriteString(out, usageText)
		return err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = in.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: in.context})
	if namespace == "" {
		ns, _, err := cc.Namespace()
		if err != nil {
			return err
		}
		namespace = ns
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		return err
	}
	var tenants aifv1.TenantQuotaList
	switch err := c.List(ctx, &tenants); {
	case apierrors.IsForbidden(err) && cmd != "usage":
		// TenantQuotas are cluster-scoped; without the right to read them, show the runs without the tenant.
		fmt.Fprintln(os.Stderr, "note: you may not read TenantQuotas, so tenant quota and budget are not shown (ask for the aifactory-tenant-reader ClusterRole)")
	case err != nil:
		return fmt.Errorf("listing TenantQuotas: %w", err)
	}
	switch cmd {
	case "status":
		var jobs aifv1.TrainingJobList
		if err := c.List(ctx, &jobs, client.InNamespace(namespace)); err != nil {
			return err
		}
		plugin.Status(out, namespace, plugin.TenantOf(tenants.Items, namespace), jobs.Items, time.Now())
	case "why":
		if len(names) != 1 {
			return errors.New("why takes the name of one TrainingJob")
		}
		tj := &aifv1.TrainingJob{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: names[0]}, tj); err != nil {
			return err
		}
		plugin.Why(out, tj, plugin.TenantOf(tenants.Items, namespace), tenants.Items)
	case "usage":
		plugin.Usage(out, tenants.Items)
	default:
		return fmt.Errorf("unknown command %q\n\n%s", cmd, usageText)
	}
	return nil
}
