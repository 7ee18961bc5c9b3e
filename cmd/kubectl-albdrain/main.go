// Command kubectl-albdrain is a kubectl plugin: `kubectl albdrain explain
// POD` says whether albdrain protects a pod and, if not, why. It reads the
// pod with the user's credentials and asks albdrain's manager through the
// apiserver's service proxy. Its connection flags are kubectl's own, from
// client-go's clientcmd: --kubeconfig, --context, --namespace/-n, --as, and
// so on (cli-runtime, which kubectl adds them with, links kustomize and its
// resource builder, which the plugin has no use for).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/albdrain/albdrain/internal/explain"
)

func main() {
	cmd := newRootCommand(os.Stdout)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "kubectl-albdrain:", err)
		os.Exit(1)
	}
}

// Outputs of -o: text for people, json and yaml for scripts.
var outputs = []string{"text", "json", "yaml"}

// connection is kubectl's connection flags and the kubeconfig they select.
type connection struct {
	rules     *clientcmd.ClientConfigLoadingRules
	overrides clientcmd.ConfigOverrides
}

// bind adds kubectl's connection flags to fs.
func (c *connection) bind(fs *pflag.FlagSet) {
	c.rules = clientcmd.NewDefaultClientConfigLoadingRules()
	fs.StringVar(&c.rules.ExplicitPath, clientcmd.RecommendedConfigPathFlag, "", "Path to the kubeconfig file to use for CLI requests.")
	clientcmd.BindOverrideFlags(&c.overrides, fs, clientcmd.RecommendedConfigOverrideFlags(""))
}

// config is the kubeconfig the flags select, as kubectl reads it.
func (c *connection) config() clientcmd.ClientConfig {
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(c.rules, &c.overrides)
}

// newRootCommand is `kubectl albdrain` with its subcommands, printing to out.
func newRootCommand(out io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "kubectl-albdrain",
		Short:         "Ask albdrain about pods",
		Long:          "kubectl albdrain asks albdrain's manager, through the apiserver, what it does for a pod.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl albdrain"},
	}
	root.SetOut(out)
	conn := &connection{}
	conn.bind(root.PersistentFlags())
	root.AddCommand(newExplainCommand(conn, out))
	return root
}

func newExplainCommand(conn *connection, out io.Writer) *cobra.Command {
	m := explain.Manager{}
	var output string
	cmd := &cobra.Command{
		Use:   "explain POD",
		Short: "Say whether albdrain holds a pod on termination and, if not, why",
		Example: `  kubectl albdrain explain web-7d9c-x2x4k -n shop
  kubectl albdrain explain web-7d9c-x2x4k -n shop -o yaml
  kubectl albdrain explain web-7d9c-x2x4k --context prod --albdrain-namespace kube-system`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(*cobra.Command, []string) error {
			for _, o := range outputs {
				if o == output {
					return nil
				}
			}
			return fmt.Errorf("-o %q: want one of %v", output, outputs)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			kc := conn.config()
			ns, _, err := kc.Namespace()
			if err != nil {
				return err
			}
			cfg, err := kc.ClientConfig()
			if err != nil {
				return err
			}
			pods, err := explain.PodsOf(cfg)
			if err != nil {
				return err
			}
			ask, err := explain.ViaServiceProxy(cfg, m)
			if err != nil {
				return err
			}
			ex, err := explain.Ask(cmd.Context(), pods, ask, ns, args[0])
			if err != nil {
				return err
			}
			return write(out, output, ex)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json or yaml")
	cmd.Flags().StringVar(&m.Namespace, "albdrain-namespace", "albdrain", "namespace albdrain is installed in")
	cmd.Flags().StringVar(&m.Service, "albdrain-service", "albdrain", "albdrain's Service")
	cmd.Flags().StringVar(&m.Port, "albdrain-port", "443", "the Service's webhook port")
	return cmd
}

// write prints ex in the format output.
func write(out io.Writer, output string, ex explain.Explanation) error {
	switch output {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(ex)
	case "yaml":
		b, err := yaml.Marshal(ex)
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	}
	return ex.Write(out)
}
