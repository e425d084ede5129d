package translator

import (
	"fmt"
	"strings"

	"github.com/weir-mesh/weir/model"
)

// Resource names weir gives the sidecar's fixed resources.
const (
	outboundListenerName = "outbound_http"
	// outboundScopesName names the listener's table of route scopes: one scope per host
	// name, each leading to its service's route configuration.
	outboundScopesName = "outbound"
)

// RouteConfigName names the route configuration of one service: outbound|<fqdn>. Each
// service has its own, so a change to one service's routes resends only that service's.
func RouteConfigName(hostname string) string { return "outbound|" + hostname }

// clusterName follows Istio's convention so that config_dump reads the way users expect:
// outbound|<port>|<subset>|<fqdn>.
func clusterName(port uint32, subset, hostname string) string {
	return fmt.Sprintf("outbound|%d|%s|%s", port, subset, hostname)
}

// virtualHostName is <fqdn>:<port>.
func virtualHostName(hostname string, port uint32) string {
	return fmt.Sprintf("%s:%d", hostname, port)
}

// resolveHost is model.ResolveHost: translator and rollouts read hosts alike.
func resolveHost(host, namespace string, known func(string) bool) string {
	return model.ResolveHost(host, namespace, known)
}

func isWildcard(host string) bool {
	return strings.Contains(host, "*")
}

// isKubeService reports whether a service is a Kubernetes Service, whose short names
// (name, name.ns, name.ns.svc) are valid domains for it.
func isKubeService(svc *model.Service) bool {
	return svc.Name != "" && svc.Namespace != "" &&
		svc.Hostname == svc.Name+"."+svc.Namespace+"."+model.DefaultDomainSuffix
}

// domain is one candidate entry of a virtual host's domains. Canonical domains (the
// service's own hostname) are claimed before aliases, so that an alias can never steal the
// name another service is registered under.
type domain struct {
	name      string
	host      string // name without ":port": the key of the route scope that serves it
	canonical bool
}

// serviceDomains lists every name a client may use to reach one port of a service: each
// short and long form, with ":port", and without it when portless is set. The bare short
// name resolves only inside the service's own namespace, so it is offered only to proxies
// living there.
func serviceDomains(svc *model.Service, port uint32, portless bool, proxyNamespace string) []domain {
	forms := []string{svc.Hostname}
	if isKubeService(svc) {
		short := svc.Name + "." + svc.Namespace
		forms = []string{short, short + ".svc", svc.Hostname}
		if proxyNamespace == svc.Namespace {
			forms = append([]string{svc.Name}, forms...)
		}
	}
	var out []domain
	for _, f := range forms {
		canonical := f == svc.Hostname
		if portless {
			out = append(out, domain{name: f, host: f, canonical: canonical})
		}
		out = append(out, domain{name: fmt.Sprintf("%s:%d", f, port), host: f, canonical: canonical})
	}
	return out
}
