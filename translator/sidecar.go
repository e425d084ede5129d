package translator

import (
	"fmt"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// rootNamespace holds the mesh-wide default Sidecar, as in Istio's default install.
const rootNamespace = "istio-system"

// sidecarScope is what the Sidecar that applies to a proxy allows it: the services it gets
// clusters and routes for, and what happens to requests for hosts it does not know.
type sidecarScope struct {
	src    *model.Sidecar // nil: no Sidecar applies, every service is in scope
	egress []egressHost
	// allowAny passes requests for unknown hosts through to the host they name.
	allowAny bool
}

type egressHost struct {
	namespace string // "*" any, "~" none, or a namespace ("." is resolved)
	host      string // "*", "*.suffix" or a hostname
}

// sidecarFor picks the Sidecar of a proxy the way Istio does: one in the proxy's namespace
// whose workloadSelector matches its labels, else the one in its namespace without a
// selector, else the root namespace's one without a selector. Ties go to the first by name.
func (w *world) sidecarFor(in []*model.Sidecar) sidecarScope {
	if w.class.Role == model.RoleGateway {
		return sidecarScope{} // a Sidecar scopes sidecars only
	}
	scs := slices.Clone(in)
	slices.SortFunc(scs, func(a, b *model.Sidecar) int { return compareObjects(a.Source, b.Source) })
	var pick *model.Sidecar
	for _, match := range []func(*model.Sidecar) bool{
		func(sc *model.Sidecar) bool {
			sel := sc.Spec.GetWorkloadSelector().GetLabels()
			return sc.Source.Namespace == w.class.Namespace && len(sel) > 0 && hasLabels(w.class.Labels, sel)
		},
		func(sc *model.Sidecar) bool {
			return sc.Source.Namespace == w.class.Namespace && sc.Spec.GetWorkloadSelector() == nil
		},
		func(sc *model.Sidecar) bool {
			return sc.Source.Namespace == rootNamespace && sc.Spec.GetWorkloadSelector() == nil
		},
	} {
		if i := slices.IndexFunc(scs, func(sc *model.Sidecar) bool { return match(sc) && w.validSidecar(sc) }); i >= 0 {
			pick = scs[i]
			break
		}
	}
	if pick == nil {
		return sidecarScope{}
	}
	return w.compileSidecar(pick)
}

func (w *world) validSidecar(sc *model.Sidecar) bool {
	diags := model.ValidateSidecar(sc)
	w.diags.add(diags...)
	return !model.HasErrors(diags)
}

func (w *world) compileSidecar(sc *model.Sidecar) sidecarScope {
	src := sc.Source
	s := sidecarScope{src: sc, allowAny: sc.Spec.GetOutboundTrafficPolicy().GetMode() == networking.OutboundTrafficPolicy_ALLOW_ANY}
	w.diags.add(ignoredFields(src, "spec", sc.Spec, "workloadSelector", "egress", "outboundTrafficPolicy")...)
	if op := sc.Spec.GetOutboundTrafficPolicy(); op != nil {
		w.diags.add(ignoredFields(src, "spec.outboundTrafficPolicy", op, "mode")...)
	}
	if len(sc.Spec.Egress) == 0 {
		s.egress = []egressHost{{namespace: "*", host: "*"}}
	}
	for i, eg := range sc.Spec.Egress {
		path := fmt.Sprintf("spec.egress[%d]", i)
		for _, name := range setFields(eg.ProtoReflect()) {
			if name != "hosts" {
				w.diags.add(model.Warnf(src, path+"."+name,
					"%s is not supported yet; the hosts of this egress listener apply to every port", name))
			}
		}
		for _, h := range eg.Hosts {
			ns, host, _ := strings.Cut(h, "/")
			if ns == "." {
				ns = src.Namespace
			}
			s.egress = append(s.egress, egressHost{namespace: ns, host: host})
		}
	}
	return s
}

// allows reports whether a service is in scope: some egress host names its namespace and
// its hostname.
func (s sidecarScope) allows(svc *model.Service) bool {
	if s.src == nil {
		return true
	}
	for _, e := range s.egress {
		if e.namespace != "~" && (e.namespace == "*" || e.namespace == svc.Namespace) && hostMatches(e.host, svc.Hostname) {
			return true
		}
	}
	return false
}

// invisibleReason says why this proxy may not reach a service.
func (w *world) invisibleReason(svc *model.Service) string {
	if !model.ExportedTo(svc.ExportTo, svc.Namespace, w.class.Namespace) {
		return fmt.Sprintf("host %s is not exported to namespace %s (exportTo of %s)", svc.Hostname, w.class.Namespace, svc.Source)
	}
	return fmt.Sprintf("host %s is outside the egress hosts of %s", svc.Hostname, w.scope.src.Source)
}
