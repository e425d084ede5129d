package translator

import (
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// assertValid runs Envoy's generated validation on every resource and, since that stops at
// Any fields, on every message packed inside one too (HCM, router, protocol options).
func assertValid(t *testing.T, out *Output) {
	t.Helper()
	var all []proto.Message
	for _, m := range out.Clusters {
		all = append(all, m)
	}
	for _, m := range out.Endpoints {
		all = append(all, m)
	}
	for _, m := range out.Listeners {
		all = append(all, m)
	}
	for _, m := range out.Routes {
		all = append(all, m)
	}
	for _, m := range out.Scopes {
		all = append(all, m)
	}
	for _, m := range all {
		if err := validateDeep(m); err != nil {
			t.Errorf("invalid %T: %v", m, err)
		}
	}
}

func validateDeep(m proto.Message) error {
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			return err
		}
	}
	var err error
	walkMessages(m.ProtoReflect(), func(sub protoreflect.Message) {
		a, ok := sub.Interface().(*anypb.Any)
		if !ok || err != nil {
			return
		}
		inner, uerr := a.UnmarshalNew()
		if uerr != nil {
			err = uerr
			return
		}
		err = validateDeep(inner)
	})
	return err
}

// walkMessages calls fn on every message below m.
func walkMessages(m protoreflect.Message, fn func(protoreflect.Message)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap() && fd.MapValue().Kind() == protoreflect.MessageKind:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				fn(mv.Message())
				walkMessages(mv.Message(), fn)
				return true
			})
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			for i := range v.List().Len() {
				fn(v.List().Get(i).Message())
				walkMessages(v.List().Get(i).Message(), fn)
			}
		case !fd.IsMap() && !fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			fn(v.Message())
			walkMessages(v.Message(), fn)
		}
		return true
	})
}

// assertRoutedClustersExist guards weir's first promise: no route names a cluster that is
// not sent (Istio's 503 NC), mirrors included.
func assertRoutedClustersExist(t *testing.T, out *Output) {
	t.Helper()
	have := map[string]bool{}
	for _, c := range out.Clusters {
		have[c.Name] = true
	}
	for _, rc := range out.Routes {
		for _, vh := range rc.VirtualHosts {
			for _, r := range vh.Routes {
				for _, name := range routedClusters(r) {
					if !have[name] {
						t.Errorf("virtual host %s routes to cluster %q, which is not in the output", vh.Name, name)
					}
				}
			}
		}
	}
}

func routedClusters(r *routev3.Route) []string {
	a := r.GetRoute()
	var out []string
	if c := a.GetCluster(); c != "" {
		out = append(out, c)
	}
	for _, w := range a.GetWeightedClusters().GetClusters() {
		out = append(out, w.Name)
	}
	for _, m := range a.GetRequestMirrorPolicies() {
		out = append(out, m.Cluster)
	}
	return out
}

// assertUniqueDomains guards against a NACK: Envoy rejects a route configuration in which
// one domain appears in two virtual hosts (or twice in one).
func assertUniqueDomains(t *testing.T, out *Output) {
	t.Helper()
	for _, rc := range out.Routes {
		seen := map[string]string{}
		for _, vh := range rc.VirtualHosts {
			for _, d := range vh.Domains {
				if prev, dup := seen[d]; dup {
					t.Errorf("domain %q is in virtual hosts %s and %s", d, prev, vh.Name)
				}
				seen[d] = vh.Name
			}
		}
	}
}

// assertScopesReachDomains guards the split route table: every domain of every virtual
// host is reachable, because the scope keyed by its host name (the domain without its
// port) leads to the route configuration holding that virtual host; every scope leads to a
// route configuration that is sent; no two scopes share a key.
func assertScopesReachDomains(t *testing.T, out *Output) {
	t.Helper()
	if len(out.Scopes) == 0 {
		return // a gateway: its listeners name their route configurations directly
	}
	rcs := map[string]bool{}
	for _, rc := range out.Routes {
		rcs[rc.Name] = true
	}
	byKey := map[string]string{}
	for _, sc := range out.Scopes {
		frags := sc.GetKey().GetFragments()
		if len(frags) != 1 {
			t.Errorf("scope %s has %d key fragments, want 1", sc.Name, len(frags))
			continue
		}
		key := frags[0].GetStringKey()
		if prev, dup := byKey[key]; dup {
			t.Errorf("scope key %q is in scopes leading to %s and %s", key, prev, sc.RouteConfigurationName)
		}
		byKey[key] = sc.RouteConfigurationName
		if !rcs[sc.RouteConfigurationName] {
			t.Errorf("scope %s leads to route configuration %q, which is not in the output", sc.Name, sc.RouteConfigurationName)
		}
	}
	for _, rc := range out.Routes {
		for _, vh := range rc.VirtualHosts {
			for _, d := range vh.Domains {
				host, _, _ := strings.Cut(d, ":")
				if host == "*" && rc.Name == passthroughRouteConfig {
					continue // reached through its own scope key, whatever the host
				}
				if got := byKey[host]; got != rc.Name {
					t.Errorf("domain %q of virtual host %s (in %s): its scope %q leads to %q", d, vh.Name, rc.Name, host, got)
				}
			}
		}
	}
}
