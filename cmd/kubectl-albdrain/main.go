// Command kubectl-albdrain is a kubectl plugin: `kubectl albdrain explain
// POD` says whether albdrain protects a pod and, if not, why. It reads the
// pod with the user's credentials and asks albdrain's manager through the
// apiserver's service proxy. Its connection flags are kubectl's own
// (cli-runtime): --kubeconfig, --context, --namespace/-n, --as, and so on.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"

	"github.com/albdrain/albdrain/internal/explain"
)

func main() {
	cmd := newRootCommand(genericclioptions.NewConfigFlags(true), os.Stdout)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "kubectl-albdrain:", err)
		os.Exit(1)
	}
}

// Outputs of -o: text for people, json and yaml for scripts.
var outputs = []string{"text", "json", "yaml"}

// newRootCommand is `kubectl albdrain` with its subcommands, connecting
// with flags and printing to out.
func newRootCommand(flags *genericclioptions.ConfigFlags, out io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "kubectl-albdrain",
		Short:         "Ask albdrain about pods",
		Long:          "kubectl albdrain asks albdrain's manager, through the apiserver, what it does for a pod.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl albdrain"},
	}
	root.SetOut(out)
	flags.AddFlags(root.PersistentFlags())
	root.AddCommand(newExplainCommand(flags, out))
	return root
}

func newExplainCommand(flags *genericclioptions.ConfigFlags, out io.Writer) *cobra.Command {
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
			ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
			if err != nil {
				return err
			}
			cfg, err := flags.ToRESTConfig()
			if err != nil {
				return err
			}
			cs, err := corev1client.NewForConfig(cfg)
			if err != nil {
				return err
			}
			ask, err := explain.ViaServiceProxy(cfg, m)
			if err != nil {
				return err
			}
			ex, err := explain.Ask(cmd.Context(), cs, ask, ns, args[0])
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
