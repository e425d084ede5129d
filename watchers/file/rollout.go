package file

import (
	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/model"
)

const kindRollout = v1alpha1.Kind

func decodeRollout(o *object, raw []byte) {
	var r v1alpha1.Rollout
	if o.reject(decodeStrict(raw, &r)) {
		return
	}
	ro := &model.Rollout{Source: o.ref, Generation: r.Metadata.Generation, Spec: &r.Spec, Status: r.Status}
	if o.validated(model.ValidateRollout(ro)) {
		o.rollout = ro
	}
}
