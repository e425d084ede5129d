package file

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	networking "istio.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weir-mesh/weir/model"
)

// istioObject is the envelope of every networking.istio.io object. Decoding it strictly
// catches a misspelled top-level key (say "spce:"), which would otherwise leave the spec
// silently empty.
type istioObject struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            json.RawMessage   `json:"spec"`
	Status          json.RawMessage   `json:"status,omitempty"`
}

// decodeIstio fills spec from the object's spec field; it reports whether that worked.
func decodeIstio(o *object, raw []byte, spec proto.Message) bool {
	var env istioObject
	if o.reject(decodeStrict(raw, &env)) {
		return false
	}
	if p := decodeProto(env.Spec, spec, "spec"); p != nil {
		return !o.reject([]fieldProblem{*p})
	}
	return true
}

func decodeVirtualService(o *object, raw []byte) {
	spec := &networking.VirtualService{}
	if !decodeIstio(o, raw, spec) {
		return
	}
	vs := &model.VirtualService{Source: o.ref, Spec: spec}
	if o.validated(model.ValidateVirtualService(vs)) {
		o.vs = vs
	}
}

func decodeDestinationRule(o *object, raw []byte) {
	spec := &networking.DestinationRule{}
	if !decodeIstio(o, raw, spec) {
		return
	}
	dr := &model.DestinationRule{Source: o.ref, Spec: spec}
	if o.validated(append(model.ValidateDestinationRule(dr), tlsFileProblems(dr)...)) {
		o.dr = dr
	}
}

func decodeServiceEntry(o *object, raw []byte) {
	spec := &networking.ServiceEntry{}
	if !decodeIstio(o, raw, spec) || o.reject(checkServiceEntry(spec)) {
		return
	}
	o.warnings = append(o.warnings, ignoredFields(o.ref, "spec", spec,
		"hosts", "ports", "location", "resolution", "endpoints", "workloadSelector", "exportTo")...)
	for i, we := range spec.Endpoints {
		o.warnings = append(o.warnings, ignoredFields(o.ref, fmt.Sprintf("spec.endpoints[%d]", i), we, workloadFields...)...)
	}
	o.entry = spec
}

func decodeWorkloadEntry(o *object, raw []byte) {
	spec := &networking.WorkloadEntry{}
	if !decodeIstio(o, raw, spec) {
		return
	}
	if spec.Address == "" {
		o.reject([]fieldProblem{{field: "spec.address", msg: "address is required (weir does not route through network gateways)"}})
		return
	}
	o.warnings = append(o.warnings, ignoredFields(o.ref, "spec", spec, workloadFields...)...)
	o.workload = spec
}

// workloadFields are the WorkloadEntry fields weir uses.
var workloadFields = []string{"address", "ports", "labels", "locality", "weight"}

// checkServiceEntry refuses the ServiceEntries Istio's validation refuses for reasons
// that matter here: no host, no port, an impossible or repeated port number.
func checkServiceEntry(se *networking.ServiceEntry) []fieldProblem {
	var probs []fieldProblem
	if len(se.Hosts) == 0 {
		probs = append(probs, fieldProblem{"spec.hosts", "at least one host is required"})
	}
	for i, h := range se.Hosts {
		if h == "" {
			probs = append(probs, fieldProblem{fmt.Sprintf("spec.hosts[%d]", i), "host must not be empty"})
		}
	}
	if len(se.Ports) == 0 {
		probs = append(probs, fieldProblem{"spec.ports", "at least one port is required"})
	}
	seen := map[uint32]bool{}
	for i, p := range se.Ports {
		field := fmt.Sprintf("spec.ports[%d]", i)
		switch {
		case p.Number < 1 || p.Number > 65535:
			probs = append(probs, fieldProblem{field + ".number", fmt.Sprintf("must be between 1 and 65535, not %d", p.Number)})
		case seen[p.Number]:
			probs = append(probs, fieldProblem{field + ".number", fmt.Sprintf("port %d is listed twice", p.Number)})
		}
		if p.TargetPort > 65535 {
			probs = append(probs, fieldProblem{field + ".targetPort", fmt.Sprintf("must be between 1 and 65535, not %d", p.TargetPort)})
		}
		seen[p.Number] = true
	}
	return probs
}

// validated files the model validator's findings: errors reject the object, warnings
// travel with it. It reports whether the object may be used.
func (o *object) validated(diags []model.Diagnostic) bool {
	for _, d := range diags {
		if d.Source == (model.Ref{}) {
			d.Source = o.ref
		}
		if d.Severity == model.SeverityError {
			o.errs = append(o.errs, d)
		} else {
			o.warnings = append(o.warnings, d)
		}
	}
	return !o.rejected()
}

// ignoredFields warns about each field set in m that weir does not use. Naming the used
// fields (not the ignored ones) means a field added to the API later is reported too.
func ignoredFields(src model.Ref, path string, m proto.Message, used ...string) []model.Diagnostic {
	var out []model.Diagnostic
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if name := fd.JSONName(); !slices.Contains(used, name) {
			out = append(out, model.Warnf(src, path+"."+name, "%s is not supported yet; ignored", name))
		}
		return true
	})
	slices.SortFunc(out, func(a, b model.Diagnostic) int { return cmp.Compare(a.Field, b.Field) })
	return out
}
