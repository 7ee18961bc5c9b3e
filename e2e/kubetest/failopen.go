package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
)

// FailOpenCount reads the apiserver's count of admissions to the webhook
// named webhook that failed open (its failurePolicy Ignore let the object
// through unmutated): what makes a webhook outage visible on a cluster.
func (e *Env) FailOpenCount(ctx context.Context, webhook string) (float64, error) {
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return 0, err
	}
	raw, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, err
	}
	total := 0.0
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// apiserver_admission_webhook_fail_open_count{name="pods.albdrain.io",type="admit"} 1
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_admission_webhook_fail_open_count{") || !strings.Contains(line, `name="`+webhook+`"`) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		total += v
	}
	return total, sc.Err()
}
