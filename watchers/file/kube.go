package file

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weir-mesh/weir/model"
)

// reject records decoding problems as the object's errors; it reports whether there were any.
func (o *object) reject(probs []fieldProblem) bool {
	for _, p := range probs {
		o.errs = append(o.errs, model.Errorf(o.ref, p.field, "%s", p.msg))
	}
	return len(probs) > 0
}

func decodeService(o *object, raw []byte) {
	var svc corev1.Service
	if o.reject(decodeStrict(raw, &svc)) || o.reject(checkServicePorts(svc.Spec.Ports)) {
		return
	}
	o.service = &svc
}

// checkServicePorts catches the port mistakes the API server would refuse, so that they
// reject the Service instead of reaching Envoy.
func checkServicePorts(ports []corev1.ServicePort) []fieldProblem {
	var probs []fieldProblem
	names := map[string]bool{}
	for i, p := range ports {
		field := fmt.Sprintf("spec.ports[%d]", i)
		if p.Port < 1 || p.Port > 65535 {
			probs = append(probs, fieldProblem{field + ".port", fmt.Sprintf("must be between 1 and 65535, not %d", p.Port)})
		}
		if p.TargetPort.Type == intstr.Int && (p.TargetPort.IntVal < 0 || p.TargetPort.IntVal > 65535) {
			probs = append(probs, fieldProblem{field + ".targetPort", fmt.Sprintf("must be between 1 and 65535, not %d", p.TargetPort.IntVal)})
		}
		if names[p.Name] {
			probs = append(probs, fieldProblem{field + ".name", fmt.Sprintf("port name %q is used twice", p.Name)})
		}
		names[p.Name] = true
	}
	if len(ports) > 1 {
		for i, p := range ports {
			if p.Name == "" {
				probs = append(probs, fieldProblem{fmt.Sprintf("spec.ports[%d].name", i), "must be set when a Service has several ports"})
			}
		}
	}
	return probs
}

func decodePod(o *object, raw []byte) {
	var p corev1.Pod
	if o.reject(decodeStrict(raw, &p)) {
		return
	}
	o.pod = newPodInfo(&p)
}

// podInfo is what weir reads of a Pod. The decoded Pod is dropped: a mesh has thousands
// of Pods, and each corev1.Pod is over a kilobyte before any of its fields is set.
type podInfo struct {
	labels map[string]string
	ip     string
	serves bool // podServes
	ready  bool // podReady
	ports  []namedPort
}

type namedPort struct {
	name string
	port uint32
}

func newPodInfo(p *corev1.Pod) *podInfo {
	info := &podInfo{labels: p.Labels, ip: p.Status.PodIP, serves: podServes(p), ready: podReady(p)}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name != "" && (cp.Protocol == "" || cp.Protocol == corev1.ProtocolTCP) {
				info.ports = append(info.ports, namedPort{cp.Name, uint32(cp.ContainerPort)})
			}
		}
	}
	return info
}

func decodeEndpointSlice(o *object, raw []byte) {
	var slice discoveryv1.EndpointSlice
	if o.reject(decodeStrict(raw, &slice)) {
		return
	}
	o.slice = &slice
}

// podReady follows the endpoints controller: a Pod is ready unless its Ready condition
// says otherwise. Hand-written Pods have no conditions, and count as ready.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status != corev1.ConditionFalse
		}
	}
	return true
}

// podServes reports whether a Pod can be an endpoint at all: it has an IP and has not
// finished or started terminating.
func podServes(pod *corev1.Pod) bool {
	return pod.Status.PodIP != "" && pod.DeletionTimestamp == nil &&
		pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}

// containerPort finds a Pod's container port by name, for a Service's named targetPort.
func containerPort(pod *podInfo, name string) (uint32, bool) {
	for _, p := range pod.ports {
		if p.name == name {
			return p.port, true
		}
	}
	return 0, false
}

// Topology labels that place a workload, as Kubernetes and Istio spell them.
const (
	labelRegion  = "topology.kubernetes.io/region"
	labelZone    = "topology.kubernetes.io/zone"
	labelSubZone = "topology.istio.io/subzone"
)

func localityFromLabels(labels map[string]string) model.Locality {
	return model.Locality{Region: labels[labelRegion], Zone: labels[labelZone], SubZone: labels[labelSubZone]}
}

// sliceLocality places one EndpointSlice endpoint: the Pod's labels win (they are what a
// person wrote), then the endpoint's zone field and its deprecated topology map.
func sliceLocality(pod *podInfo, ep discoveryv1.Endpoint) model.Locality {
	var loc model.Locality
	if pod != nil {
		loc = localityFromLabels(pod.labels)
	}
	fallback := localityFromLabels(ep.DeprecatedTopology)
	if ep.Zone != nil {
		fallback.Zone = *ep.Zone
	}
	if loc.Region == "" {
		loc.Region = fallback.Region
	}
	if loc.Zone == "" {
		loc.Zone = fallback.Zone
	}
	if loc.SubZone == "" {
		loc.SubZone = fallback.SubZone
	}
	return loc
}
