package file

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// Kinds weir reads, as they appear in model.Ref.Kind.
const (
	kindService         = "Service"
	kindEndpointSlice   = "EndpointSlice"
	kindPod             = "Pod"
	kindVirtualService  = "VirtualService"
	kindDestinationRule = "DestinationRule"
	kindServiceEntry    = "ServiceEntry"
	kindWorkloadEntry   = "WorkloadEntry"
)

// objectKey identifies an object across files and across reads: the same key in two files
// is a duplicate, the same key in two reads is two versions of one object.
type objectKey struct {
	kind, namespace, name string
}

// object is one parsed input object. Exactly one of the payload fields is set, unless the
// object was rejected (errs is not empty), in which case none is.
type object struct {
	ref      model.Ref
	warnings []model.Diagnostic // problems that do not stop the object from being used
	errs     []model.Diagnostic // why the object was rejected

	service  *corev1.Service
	slice    *discoveryv1.EndpointSlice
	pod      *podInfo
	vs       *model.VirtualService
	dr       *model.DestinationRule
	entry    *networking.ServiceEntry
	workload *networking.WorkloadEntry
	gateway  *model.Gateway
	sidecar  *model.Sidecar
	secret   *model.Secret
	rollout  *model.Rollout
}

func (o *object) key() objectKey {
	return objectKey{kind: o.ref.Kind, namespace: o.ref.Namespace, name: o.ref.Name}
}

func (o *object) rejected() bool {
	return len(o.errs) > 0
}

// fileResult is what one file contributes, read on its own (no knowledge of other files or
// of earlier reads).
type fileResult struct {
	// objects in document order, rejected ones included.
	objects []*object
	// unreadable holds one Error per document whose identity (kind, name) cannot be read,
	// starting with YAML that does not parse. Any of them makes the file broken.
	unreadable []model.Diagnostic
	// diags are the other file-level notes, such as unsupported kinds.
	diags []model.Diagnostic
}

func (r *fileResult) broken() bool {
	return len(r.unreadable) > 0
}
