package file

import (
	"fmt"
	"strings"

	networking "istio.io/api/networking/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/weir-mesh/weir/model"
)

// endpoints finds the endpoints of services among the served objects.
type endpoints struct {
	pods      map[string][]*object    // by namespace
	podByName map[[2]string]*object   // by namespace, name
	workloads map[string][]*object    // by namespace
	slices    map[[2]string][]*object // by namespace, name of the Service they serve
	used      map[[2]string]bool      // services whose slices were consumed
	out       []*model.Endpoint
	diags     []model.Diagnostic
}

func newEndpoints(objs []*object) *endpoints {
	e := &endpoints{pods: map[string][]*object{}, podByName: map[[2]string]*object{},
		workloads: map[string][]*object{}, slices: map[[2]string][]*object{}, used: map[[2]string]bool{}}
	for _, o := range objs {
		ns := o.ref.Namespace
		switch {
		case o.pod != nil:
			e.pods[ns] = append(e.pods[ns], o)
			e.podByName[[2]string{ns, o.ref.Name}] = o
		case o.workload != nil:
			e.workloads[ns] = append(e.workloads[ns], o)
		case o.slice != nil:
			name := o.slice.Labels[discoveryv1.LabelServiceName]
			if name == "" {
				e.diags = append(e.diags, model.Warnf(o.ref, "metadata.labels",
					"has no %s label naming its Service; ignored", discoveryv1.LabelServiceName))
				continue
			}
			e.slices[[2]string{ns, name}] = append(e.slices[[2]string{ns, name}], o)
		}
	}
	return e
}

// kube adds a Kubernetes Service's endpoints: from its EndpointSlices or, when none names
// it, from its Pods the way the endpoints controller would; plus the WorkloadEntries its
// selector picks, as Istio does.
func (e *endpoints) kube(s *service) {
	key := [2]string{s.model.Namespace, s.model.Name}
	if slices := e.slices[key]; len(slices) > 0 {
		e.used[key] = true
		for _, o := range slices {
			e.fromSlice(s, o)
		}
	} else if len(s.model.Selector) > 0 {
		e.fromPods(s)
	}
	if len(s.model.Selector) > 0 {
		e.fromWorkloads(s)
	}
}

// entry adds a ServiceEntry host's endpoints: those written inline, then the
// WorkloadEntries its workloadSelector picks.
func (e *endpoints) entry(s *service) {
	for i, we := range s.src.entry.Endpoints {
		e.fromWorkload(s, s.src.ref, fmt.Sprintf("spec.endpoints[%d]", i), we)
	}
	if len(s.model.Selector) > 0 {
		e.fromWorkloads(s)
	}
}

func (e *endpoints) fromSlice(s *service, o *object) {
	sl := o.slice
	if sl.AddressType == discoveryv1.AddressTypeFQDN {
		e.diags = append(e.diags, model.Warnf(o.ref, "addressType", "addressType FQDN is not supported yet; ignored"))
		return
	}
	for pi, sp := range sl.Ports {
		if sp.Protocol != nil && *sp.Protocol != corev1.ProtocolTCP {
			continue // the Service's port of that protocol was skipped, with a warning
		}
		name := deref(sp.Name)
		i, ok := s.portByName(name)
		if !ok || sp.Port == nil {
			e.diags = append(e.diags, model.Warnf(o.ref, fmt.Sprintf("ports[%d]", pi),
				"Service %s has no port named %q (or the port number is missing); ignored", s.src.ref.Name, name))
			continue
		}
		for _, ep := range sl.Endpoints {
			e.fromSliceEndpoint(s, o, s.model.Ports[i].Number, uint32(*sp.Port), ep)
		}
	}
}

func (e *endpoints) fromSliceEndpoint(s *service, o *object, servicePort, port uint32, ep discoveryv1.Endpoint) {
	var pod *podInfo
	var labels map[string]string
	if ref := ep.TargetRef; ref != nil && ref.Kind == kindPod {
		ns := ref.Namespace
		if ns == "" {
			ns = o.ref.Namespace
		}
		if po := e.podByName[[2]string{ns, ref.Name}]; po != nil {
			pod, labels = po.pod, po.pod.labels
		}
	}
	for _, addr := range ep.Addresses {
		e.out = append(e.out, &model.Endpoint{
			Source: o.ref, Hostname: s.model.Hostname, ServicePort: servicePort,
			Address: addr, Port: port, Labels: labels, Locality: sliceLocality(pod, ep),
			// An endpoint whose readiness is unknown is ready, as the API documents.
			Ready: ep.Conditions.Ready == nil || *ep.Conditions.Ready,
		})
	}
}

func (e *endpoints) fromPods(s *service) {
	for _, o := range e.pods[s.model.Namespace] {
		pod := o.pod
		if !selects(s.model.Selector, pod.labels) || !pod.serves {
			continue
		}
		for i, p := range s.model.Ports {
			port := p.TargetPort
			if name := s.targets[i]; name != "" {
				n, ok := containerPort(pod, name)
				if !ok {
					e.diags = append(e.diags, model.Warnf(o.ref, "spec.containers",
						"no container port is named %q, the targetPort of Service %s port %d; the Pod does not serve that port",
						name, s.model.Name, p.Number))
					continue
				}
				port = n
			}
			e.out = append(e.out, &model.Endpoint{
				Source: o.ref, Hostname: s.model.Hostname, ServicePort: p.Number,
				Address: pod.ip, Port: port, Labels: pod.labels,
				Locality: localityFromLabels(pod.labels), Ready: pod.ready,
			})
		}
	}
}

func (e *endpoints) fromWorkloads(s *service) {
	for _, o := range e.workloads[s.model.Namespace] {
		if selects(s.model.Selector, o.workload.Labels) {
			e.fromWorkload(s, o.ref, "spec", o.workload)
		}
	}
}

// fromWorkload adds one endpoint per service port for a WorkloadEntry (standalone, or
// inline in a ServiceEntry). Its port for a service port is ports[<port name>], else the
// port named by a named targetPort, else the targetPort.
func (e *endpoints) fromWorkload(s *service, src model.Ref, field string, we *networking.WorkloadEntry) {
	for i, p := range s.model.Ports {
		port, ok := workloadPort(we.Ports, p, s.targets[i])
		if !ok {
			e.diags = append(e.diags, model.Warnf(src, field+".ports",
				"no port is named %q, the targetPort of Service %s port %d; not an endpoint of that port",
				s.targets[i], s.model.Name, p.Number))
			continue
		}
		e.out = append(e.out, &model.Endpoint{
			Source: src, Hostname: s.model.Hostname, ServicePort: p.Number,
			Address: we.Address, Port: port, Labels: we.Labels,
			Locality: parseLocality(we.Locality), Weight: we.Weight, Ready: true,
		})
	}
}

func workloadPort(ports map[string]uint32, p model.ServicePort, targetName string) (uint32, bool) {
	if n, ok := ports[p.Name]; ok && p.Name != "" {
		return n, true
	}
	if targetName != "" {
		n, ok := ports[targetName]
		return n, ok
	}
	if p.TargetPort != 0 {
		return p.TargetPort, true
	}
	return p.Number, true
}

// unusedSlices warns about EndpointSlices naming a Service that is not there: a typo in
// the label, or a Service that failed to load.
func (e *endpoints) unusedSlices() {
	for key, objs := range e.slices {
		if e.used[key] {
			continue
		}
		for _, o := range objs {
			e.diags = append(e.diags, model.Warnf(o.ref, "metadata.labels",
				"names Service %s/%s, which is not defined; ignored", key[0], key[1]))
		}
	}
}

// selects reports whether a non-empty selector matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// parseLocality reads Istio's "region/zone/subzone".
func parseLocality(s string) model.Locality {
	parts := strings.SplitN(s, "/", 3)
	parts = append(parts, "", "", "")
	return model.Locality{Region: parts[0], Zone: parts[1], SubZone: parts[2]}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
