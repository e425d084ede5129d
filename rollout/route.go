package rollout

import (
	"fmt"
	"regexp"
	"slices"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/model"
)

// Shift is what one rollout sets on the routes of its service.
type Shift struct {
	Rollout *model.Rollout
	State   State
}

// Host is the rollout's service hostname, resolved as a VirtualService host would be.
func Host(snap *model.Snapshot, r *model.Rollout) string {
	return model.ResolveHost(r.Spec.Host, r.Source.Namespace, func(h string) bool {
		_, ok := slices.BinarySearchFunc(snap.Services, h, func(s *model.Service, h string) int {
			switch {
			case s.Hostname < h:
				return -1
			case s.Hostname > h:
				return 1
			}
			return 0
		})
		return ok
	})
}

// Apply returns snap with each shift's weights written into the VirtualService route the
// rollout drives (the router, in Flagger's terms). snap itself is not changed: routes
// that change are cloned. A rollout that cannot be applied leaves its service's routes as
// written and says why.
func Apply(snap *model.Snapshot, shifts []Shift) (*model.Snapshot, []model.Diagnostic) {
	if len(shifts) == 0 {
		return snap, nil
	}
	out := *snap
	out.VirtualServices = slices.Clone(snap.VirtualServices)
	var diags []model.Diagnostic
	for _, sh := range shifts {
		if d := applyShift(&out, sh); d != nil {
			diags = append(diags, *d)
		}
	}
	return &out, diags
}

func applyShift(snap *model.Snapshot, sh Shift) *model.Diagnostic {
	r, spec := sh.Rollout, sh.Rollout.Spec
	host := Host(snap, r)
	if d := checkSubsets(snap, r, host, State{Stable: sh.State.Stable}); d != nil {
		return d // no stable subset: nothing sensible to route to; the routes stay as written
	}
	var missing *model.Diagnostic
	if sh.State.Canary != "" {
		if missing = checkSubsets(snap, r, host, sh.State); missing != nil {
			// The canary subset is gone: everything to the stable subset, never to the
			// whole service.
			sh.State.CanaryWeight, sh.State.Match, sh.State.Mirror = 0, false, false
		}
	}
	idx, route, d := target(snap, r, host)
	if d != nil {
		return d
	}
	var vs *model.VirtualService
	if idx < 0 {
		// No VirtualService routes the host: weir owns its default route.
		vs = &model.VirtualService{Source: r.Source, Spec: &networking.VirtualService{Hosts: []string{host}}}
		snap.VirtualServices = append(snap.VirtualServices, vs)
	} else {
		vs = &model.VirtualService{Source: snap.VirtualServices[idx].Source, Spec: proto.Clone(snap.VirtualServices[idx].Spec).(*networking.VirtualService)}
		snap.VirtualServices[idx] = vs
	}
	if route < 0 {
		vs.Spec.Http = append(vs.Spec.Http, &networking.HTTPRoute{Name: "rollout-" + r.Source.Name})
		route = len(vs.Spec.Http) - 1
	}
	hr := vs.Spec.Http[route]
	var port *networking.PortSelector
	if len(hr.Route) > 0 && hr.Route[0].Destination != nil {
		port = hr.Route[0].Destination.Port
	}
	stable, canary := sh.State.Weights()
	hr.Route = []*networking.HTTPRouteDestination{
		{Destination: &networking.Destination{Host: host, Subset: sh.State.Stable, Port: port}, Weight: stable},
	}
	if sh.State.Canary != "" && canary > 0 {
		hr.Route = append(hr.Route, &networking.HTTPRouteDestination{
			Destination: &networking.Destination{Host: host, Subset: sh.State.Canary, Port: port}, Weight: canary})
	}
	if sh.State.Mirror && sh.State.Canary != "" {
		// A copy of every request goes to the canary, its answers discarded, so that its
		// metrics have data while users see only stable. It takes the place of any mirror
		// the route had: a route has one.
		hr.Mirror = &networking.Destination{Host: host, Subset: sh.State.Canary, Port: port}
		hr.MirrorPercentage, hr.MirrorPercent = &networking.Percent{Value: 100}, nil
	}
	if sh.State.Match && spec.Strategy.ABTesting != nil {
		ab := &networking.HTTPRoute{
			Name:  "rollout-" + r.Source.Name + "-ab",
			Match: abMatches(spec.Strategy.ABTesting.Match),
			Route: []*networking.HTTPRouteDestination{
				{Destination: &networking.Destination{Host: host, Subset: sh.State.Canary, Port: port}, Weight: 100}},
			Timeout: hr.Timeout, Retries: hr.Retries,
		}
		vs.Spec.Http = slices.Insert(vs.Spec.Http, route, ab)
	}
	return missing
}

// Blocked says why a rollout cannot move traffic in snap: a subset it needs is not
// defined, or the VirtualService route it drives does not exist. "" when nothing blocks it.
func Blocked(snap *model.Snapshot, r *model.Rollout, s State) string {
	host := Host(snap, r)
	want := State{Stable: s.Stable, Canary: r.Spec.Canary}
	if want.Stable == "" {
		want.Stable = r.Spec.Stable
	}
	if want.Canary == want.Stable {
		want.Canary = ""
	}
	if d := checkSubsets(snap, r, host, want); d != nil {
		return d.Message
	}
	if _, _, d := target(snap, r, host); d != nil {
		return d.Message
	}
	return ""
}

// target finds the VirtualService (index into snap.VirtualServices, -1 for none) and
// its http route (-1: append one) that the rollout drives.
func target(snap *model.Snapshot, r *model.Rollout, host string) (int, int, *model.Diagnostic) {
	if ref := r.Spec.VirtualService; ref != nil {
		ns := ref.Namespace
		if ns == "" {
			ns = r.Source.Namespace
		}
		for i, vs := range snap.VirtualServices {
			if vs.Source.Namespace != ns || vs.Source.Name != ref.Name {
				continue
			}
			for k, hr := range vs.Spec.Http {
				if hr.Name == ref.Route {
					return i, k, nil
				}
			}
			if ref.Route == "" && len(vs.Spec.Http) > 0 {
				return i, len(vs.Spec.Http) - 1, nil
			}
			d := model.Errorf(r.Source, "spec.virtualService.route", "VirtualService %s/%s has no http route named %q; the rollout does not move traffic", ns, ref.Name, ref.Route)
			return 0, 0, &d
		}
		d := model.Errorf(r.Source, "spec.virtualService.name", "VirtualService %s/%s not found; the rollout does not move traffic", ns, ref.Name)
		return 0, 0, &d
	}
	for i, vs := range snap.VirtualServices {
		for _, h := range vs.Spec.Hosts {
			if model.ResolveHost(h, vs.Source.Namespace, func(string) bool { return h == host }) != host {
				continue
			}
			// The host's default route: the last one if it matches everything.
			if n := len(vs.Spec.Http); n > 0 && len(vs.Spec.Http[n-1].Match) == 0 {
				return i, n - 1, nil
			}
			return i, -1, nil
		}
	}
	return -1, -1, nil
}

// checkSubsets makes sure a DestinationRule of the host defines the subsets the state
// sends traffic to: a route to a missing subset would send nothing anywhere.
func checkSubsets(snap *model.Snapshot, r *model.Rollout, host string, st State) *model.Diagnostic {
	need := []string{st.Stable}
	if st.Canary != "" {
		need = append(need, st.Canary)
	}
	have := map[string]bool{}
	for _, dr := range snap.DestinationRules {
		if model.ResolveHost(dr.Spec.Host, dr.Source.Namespace, func(h string) bool { return h == host }) != host {
			continue
		}
		for _, s := range dr.Spec.Subsets {
			have[s.Name] = true
		}
	}
	for _, s := range need {
		if !have[s] {
			d := model.Errorf(r.Source, "spec", "no DestinationRule of %s defines subset %q; the rollout cannot move traffic to it", host, s)
			return &d
		}
	}
	return nil
}

// abMatches turns A/B matches into Istio matches; a cookie becomes a regex on the Cookie
// header.
func abMatches(ms []v1alpha1.Match) []*networking.HTTPMatchRequest {
	var out []*networking.HTTPMatchRequest
	for _, m := range ms {
		hm := &networking.HTTPMatchRequest{Headers: map[string]*networking.StringMatch{}}
		for name, sm := range m.Headers {
			hm.Headers[name] = stringMatch(sm)
		}
		if len(m.Cookies) > 0 {
			hm.Headers["cookie"] = cookieMatch(m.Cookies)
		}
		out = append(out, hm)
	}
	return out
}

func stringMatch(sm v1alpha1.StringMatch) *networking.StringMatch {
	switch {
	case sm.Exact != "":
		return &networking.StringMatch{MatchType: &networking.StringMatch_Exact{Exact: sm.Exact}}
	case sm.Prefix != "":
		return &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: sm.Prefix}}
	}
	return &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: sm.Regex}}
}

// cookieMatch is one regex over the Cookie header that holds when every named cookie
// matches, in any order (RE2 has no lookahead, so one alternative per order is not an
// option: weir accepts one cookie per match).
func cookieMatch(cookies map[string]v1alpha1.StringMatch) *networking.StringMatch {
	names := make([]string, 0, len(cookies))
	for n := range cookies {
		names = append(names, n)
	}
	slices.Sort(names)
	name := names[0]
	sm := cookies[name]
	var value string
	switch {
	case sm.Exact != "":
		value = regexp.QuoteMeta(sm.Exact)
	case sm.Prefix != "":
		value = regexp.QuoteMeta(sm.Prefix) + "[^;]*"
	default:
		value = "(?:" + sm.Regex + ")"
	}
	re := fmt.Sprintf(`^(?:.*;\s*)?%s=%s(?:;.*)?$`, regexp.QuoteMeta(name), value)
	return &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: re}}
}
