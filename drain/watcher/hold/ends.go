package hold

import (
	"context"
	"os"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/albdrain/albdrain/internal/contract"
)

// EndEvents records the end of each pod's hold as one event whose name
// comes from the pod's UID (EndEventName). Creating it is how a replica
// claims the outcome: only the replica whose create succeeds counts it, and
// a replica that finds the event there counts nothing. That happens when
// the helper, having lost one replica's answer, retries its hold or its
// end report and the Service takes it to another replica: each would
// otherwise count the same pod, and albdrain_holds_total summed over
// replicas would count it twice.
type EndEvents struct {
	// Client creates events.k8s.io events; nothing else.
	Client client.Writer
	// Controller and Instance are the events' reporting controller (the
	// one the watcher's recorder uses) and this replica.
	Controller, Instance string
}

// ReportingInstance names this replica in the events it writes itself for
// controller, as the manager's event recorder names it in the others.
func ReportingInstance(controller string) string {
	host, _ := os.Hostname()
	return controller + "-" + host
}

// EndEvent is how a hold ended, as an event on the pod.
type EndEvent struct {
	Outcome                    contract.Outcome
	Type, Reason, Action, Note string
}

// EndEventName is the name of the event recording how the hold of the pod
// with uid ended.
func EndEventName(uid types.UID) string { return "albdrain-hold-end." + string(uid) }

// maxNote is the longest note the events API accepts, in bytes.
const maxNote = 1024

// Claim creates pod's end event. first is false, with no error, when
// another replica has created it already.
func (e *EndEvents) Claim(ctx context.Context, pod *corev1.Pod, ev EndEvent) (first bool, err error) {
	note := ev.Note
	for len(note) > maxNote {
		_, size := utf8.DecodeLastRuneInString(note)
		note = note[:len(note)-size]
	}
	obj := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name: EndEventName(pod.UID), Namespace: pod.Namespace,
			// Selectable: kubectl get events -l albdrain.io/outcome=bound.
			Labels: map[string]string{contract.OutcomeLabel: string(ev.Outcome)},
		},
		EventTime:           metav1.NewMicroTime(time.Now()),
		ReportingController: e.Controller,
		ReportingInstance:   e.Instance,
		Action:              ev.Action,
		Reason:              ev.Reason,
		Type:                ev.Type,
		Note:                note,
		Regarding: corev1.ObjectReference{
			APIVersion: "v1", Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
		},
	}
	switch err := e.Client.Create(ctx, obj); {
	case apierrors.IsAlreadyExists(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}
