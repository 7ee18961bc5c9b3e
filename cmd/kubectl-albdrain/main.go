// Command kubectl-albdrain is a kubectl plugin: `kubectl albdrain explain
// POD` says whether albdrain protects a pod and, if not, why. It reads the
// pod with the user's credentials and asks albdrain's manager through the
// apiserver's service proxy.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/albdrain/albdrain/internal/explain"
)

const usage = `usage: kubectl albdrain explain POD [-n NAMESPACE] [-o text|json]
    [--albdrain-namespace albdrain] [--albdrain-service albdrain] [--albdrain-port 443]`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kubectl-albdrain:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "explain" {
		return fmt.Errorf("unknown command\n%s", usage)
	}
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	ns := fs.String("n", "", "namespace of the pod (default: the kubeconfig context's)")
	output := fs.String("o", "text", "output: text or json")
	kubeconfig := fs.String("kubeconfig", "", "path of the kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
	m := explain.Manager{}
	fs.StringVar(&m.Namespace, "albdrain-namespace", "albdrain", "namespace albdrain is installed in")
	fs.StringVar(&m.Service, "albdrain-service", "albdrain", "albdrain's Service")
	fs.StringVar(&m.Port, "albdrain-port", "443", "the Service's webhook port")
	// The pod name may come before or after the flags.
	var pod string
	rest := args[1:]
	if len(rest) > 0 && rest[0] != "" && rest[0][0] != '-' {
		pod, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	extra := fs.Args()
	if pod == "" && len(extra) == 1 {
		pod, extra = extra[0], nil
	}
	if pod == "" || len(extra) > 0 || (*output != "text" && *output != "json") {
		return fmt.Errorf("bad arguments\n%s", usage)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	if *ns == "" {
		var err error
		if *ns, _, err = cc.Namespace(); err != nil {
			return err
		}
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ask, err := explain.ViaServiceProxy(cfg, m)
	if err != nil {
		return err
	}
	ex, err := explain.Ask(ctx, cs.CoreV1(), ask, *ns, pod)
	if err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(ex)
	}
	return ex.Write(out)
}
