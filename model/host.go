package model

import "strings"

// ResolveHost turns a host as written in a VirtualService, DestinationRule or Rollout into
// the hostname services are indexed by. A host that names a known service (a ServiceEntry
// host or an FQDN) is taken as is; short Kubernetes forms are expanded relative to the
// object's namespace the way Istio does: "reviews" -> reviews.<ns>.svc.cluster.local,
// "reviews.ns" -> reviews.ns.svc.cluster.local.
func ResolveHost(host, namespace string, known func(string) bool) string {
	if known(host) || strings.Contains(host, "*") {
		return host
	}
	switch strings.Count(host, ".") {
	case 0:
		return host + "." + namespace + "." + DefaultDomainSuffix
	case 1:
		return host + "." + DefaultDomainSuffix
	}
	if strings.HasSuffix(host, ".svc") {
		return host + "." + strings.TrimPrefix(DefaultDomainSuffix, "svc.")
	}
	return host
}
