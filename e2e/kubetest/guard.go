package kubetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/albdrain/albdrain/e2e/reaper"
)

// guard has the reaper kill te's etcd and kube-apiserver should this
// process die before stopping them. envtest starts them as children of
// this process and does not say which; each is known by the port it was
// given, so that control planes started side by side are told apart.
func guard(te *envtest.Environment) (release func(), err error) {
	want := map[string]string{
		"etcd":           te.ControlPlane.Etcd.URL.Port(),
		"kube-apiserver": te.ControlPlane.APIServer.SecureServing.Port,
	}
	var releases []func()
	release = func() {
		for _, r := range releases {
			r()
		}
	}
	for _, pid := range reaper.Children(os.Getpid()) {
		args := cmdline(pid)
		if len(args) == 0 {
			continue
		}
		port, ok := want[filepath.Base(args[0])]
		if !ok || !listensOn(args[1:], port) {
			continue
		}
		r, err := reaper.Guard(pid)
		if err != nil {
			release()
			return nil, err
		}
		releases = append(releases, r)
		delete(want, filepath.Base(args[0]))
	}
	if len(want) > 0 {
		release()
		return nil, fmt.Errorf("guard the control plane: no child process found for %v", want)
	}
	return release, nil
}

func cmdline(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// listensOn reports whether a flag among args ends in port, as
// --secure-port=N and --listen-client-urls=http://127.0.0.1:N do.
func listensOn(args []string, port string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "--") && (strings.HasSuffix(a, "="+port) || strings.HasSuffix(a, ":"+port)) {
			return true
		}
	}
	return false
}
