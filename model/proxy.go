package model

import (
	"fmt"
	"sort"
	"strings"
)

// Role is what a proxy is for.
type Role string

const (
	RoleSidecar Role = "sidecar"
	RoleGateway Role = "gateway"
)

// Default outbound listener of a sidecar.
const (
	DefaultOutboundAddress = "127.0.0.1"
	DefaultOutboundPort    = 15001
)

// ProxyClass is everything about a proxy that its config depends on. Proxies of one class
// get byte-identical config, so the translator runs once per class, not once per proxy.
type ProxyClass struct {
	Role      Role
	Namespace string
	Labels    map[string]string
	Locality  Locality
	// OutboundAddress and OutboundPort place the sidecar's outbound HTTP listener; they let
	// several proxies share one host in demos and tests.
	OutboundAddress string
	OutboundPort    uint32
	// ListenerAddress is where a gateway binds its listeners (default 0.0.0.0), and
	// ListenerPorts maps a Gateway server port to the port actually bound (say 80 to 8080,
	// as a gateway Service's targetPort does); ports not listed bind as written.
	ListenerAddress string
	ListenerPorts   map[uint32]uint32
}

// DefaultListenerAddress is where a gateway listens unless its node says otherwise.
const DefaultListenerAddress = "0.0.0.0"

// BindPort is the port a gateway binds for a Gateway server port.
func (c ProxyClass) BindPort(port uint32) uint32 {
	if p, ok := c.ListenerPorts[port]; ok {
		return p
	}
	return port
}

// Key is a canonical string for the class: equal classes have equal keys.
func (c ProxyClass) Key() string {
	keys := make([]string, 0, len(c.Labels))
	for k := range c.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s:%d|%s/%s/%s|", c.Role, c.Namespace, c.OutboundAddress, c.OutboundPort,
		c.Locality.Region, c.Locality.Zone, c.Locality.SubZone)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%s", k, c.Labels[k])
	}
	if c.ListenerAddress != "" || len(c.ListenerPorts) > 0 {
		ports := make([]uint32, 0, len(c.ListenerPorts))
		for p := range c.ListenerPorts {
			ports = append(ports, p)
		}
		sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
		fmt.Fprintf(&b, "|%s|", c.ListenerAddress)
		for i, p := range ports {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%d:%d", p, c.ListenerPorts[p])
		}
	}
	return b.String()
}
