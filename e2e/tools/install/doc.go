// Package install follows the README's install steps as a new user would,
// command by command, against a registry and an apiserver of its own: the
// release build pushed to an OCI registry on loopback, the chart pushed and
// installed from it by Helm, a namespace opted in and a pod explained by the
// kubectl plugin. Its test runs in `make test-tools`; the README's commands
// are read by Commands, so a step the docs change or add is followed too.
package install
