// Package webhooktest writes pods as the apiserver sends them to the
// webhook, for the webhook's tests and the admission benchmark.
package webhooktest

import (
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// defaulted is a pod as the apiserver sends it to a webhook: defaulted,
// namespace not yet set, its empty status written out, and with fields
// this k8s.io/api version does not know, which no patch may drop. %s
// stands for the test's metadata and %c for its containers; every other
// part of the spec is the same in all.
const defaulted = `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-",%s},
"spec":{"futureField":{"x":1},"dnsPolicy":"ClusterFirst","enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority",
"priority":0,"restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"serviceAccountName":"default",
"terminationGracePeriodSeconds":30,"tolerations":[{"effect":"NoExecute","key":"node.kubernetes.io/not-ready","operator":"Exists","tolerationSeconds":300}],
%c},"status":{}}`

// App is a defaulted serving container on port 8080 named http; extra is
// spliced into it.
func App(name, extra string) string {
	return fmt.Sprintf(`{"name":%q,"image":"app:1","imagePullPolicy":"IfNotPresent","futureContainerField":"keep",
"ports":[{"containerPort":8080,"name":"http","protocol":"TCP"}],"resources":{"requests":{"cpu":"100m","memory":"64Mi"}},
"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"%s}`, name, extra)
}

// Pod is a defaulted pod's JSON with the given metadata fields and spec
// fields (containers and the like) spliced in.
func Pod(metadata, spec string) string {
	return strings.NewReplacer("%s", metadata, "%c", spec).Replace(defaulted)
}

// Request is a pod CREATE review of raw in namespace ns.
func Request(ns string, raw string) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "req-1",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: ns,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: []byte(raw)},
	}}
}

// DeploymentPod is the admission benchmark's pod, labelled app=<app>: as
// the apiserver sends it from a Deployment, defaulted, with the usual
// environment, resources and probe.
func DeploymentPod(app string) string {
	return Pod(`"labels":{"app":"`+app+`","pod-template-hash":"5d8f7c9b6"},"ownerReferences":[{"apiVersion":"apps/v1",`+
		`"kind":"ReplicaSet","name":"web-5d8f7c9b6","uid":"6f1c1f8e-0000-4000-8000-000000000001","controller":true,"blockOwnerDeletion":true}]`,
		`"containers":[`+App("app", `,"env":[{"name":"LOG_LEVEL","value":"info"},{"name":"DB_HOST","value":"db.example.internal"},`+
			`{"name":"POD_NAME","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}}],`+
			`"readinessProbe":{"httpGet":{"path":"/healthz","port":"http","scheme":"HTTP"},"periodSeconds":10,"timeoutSeconds":1,`+
			`"successThreshold":1,"failureThreshold":3}`)+`]`)
}
