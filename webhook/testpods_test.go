package webhook

import (
	"fmt"
	"strings"
)

// defaulted is a pod as the apiserver sends it to a webhook: defaulted,
// namespace not yet set, and with fields this k8s.io/api version does not
// know, which no patch may drop. %s stands for the test's metadata and %c
// for its containers; every other part of the spec is the same in all.
const defaulted = `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-",%s},
"spec":{"futureField":{"x":1},"dnsPolicy":"ClusterFirst","enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority",
"priority":0,"restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"serviceAccountName":"default",
"terminationGracePeriodSeconds":30,"tolerations":[{"effect":"NoExecute","key":"node.kubernetes.io/not-ready","operator":"Exists","tolerationSeconds":300}],
%c}}`

// app is a defaulted serving container; extra is spliced into it.
func app(name, extra string) string {
	return fmt.Sprintf(`{"name":%q,"image":"app:1","imagePullPolicy":"IfNotPresent","futureContainerField":"keep",
"ports":[{"containerPort":8080,"name":"http","protocol":"TCP"}],"resources":{"requests":{"cpu":"100m","memory":"64Mi"}},
"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"%s}`, name, extra)
}

func pod(metadata, spec string) string {
	return strings.NewReplacer("%s", metadata, "%c", spec).Replace(defaulted)
}
