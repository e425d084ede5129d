package translator

import (
	"maps"
	"regexp"
	"slices"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// routeMatch translates one match entry; all its conditions must hold. Without a uri
// condition the route matches every path. Method, authority and scheme are matched as
// Envoy sees them, as the pseudo-headers :method, :authority and :scheme. Map-valued
// conditions are emitted in key order so that output is deterministic.
func routeMatch(m *networking.HTTPMatchRequest) *routev3.RouteMatch {
	rm := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	switch u := m.GetUri().GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		rm.PathSpecifier = &routev3.RouteMatch_Path{Path: u.Exact}
	case *networking.StringMatch_Prefix:
		rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: u.Prefix}
	case *networking.StringMatch_Regex:
		re := u.Regex
		if m.IgnoreUriCase {
			re = "(?i)" + re // Envoy's case_sensitive does not apply to regexes
		}
		rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: regexMatcher(re)}
	}
	if m.GetIgnoreUriCase() && m.GetUri() != nil && m.GetUri().GetRegex() == "" {
		rm.CaseSensitive = wrapperspb.Bool(false)
	}
	for _, p := range []struct {
		name string
		sm   *networking.StringMatch
	}{{":authority", m.GetAuthority()}, {":method", m.GetMethod()}, {":scheme", m.GetScheme()}} {
		if p.sm != nil {
			rm.Headers = append(rm.Headers, headerMatcher(p.name, p.sm, false))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.GetHeaders())) {
		rm.Headers = append(rm.Headers, headerMatcher(name, m.Headers[name], false))
	}
	for _, name := range slices.Sorted(maps.Keys(m.GetWithoutHeaders())) {
		rm.Headers = append(rm.Headers, headerMatcher(name, m.WithoutHeaders[name], true))
	}
	for _, name := range slices.Sorted(maps.Keys(m.GetQueryParams())) {
		rm.QueryParameters = append(rm.QueryParameters, queryParameterMatcher(name, m.QueryParams[name]))
	}
	return rm
}

// matchApplies reports whether a match entry can match on virtual host vt of this proxy
// class. Conditions on where a request comes from (sourceLabels, sourceNamespace) and
// on the service port it was sent to (port) are known when translating, so, as in Istio,
// an entry whose conditions fail is left out here rather than matched by Envoy.
func (t *translation) matchApplies(src model.Ref, path string, m *networking.HTTPMatchRequest, vt vhostTarget) bool {
	if len(m.Gateways) > 0 && !slices.ContainsFunc(m.Gateways, func(g string) bool { return vt.servesFor(g, src.Namespace) }) {
		return false
	}
	if m.Port != 0 {
		if vt.svc == nil { // a gateway: the port is the Gateway server's
			return m.Port == vt.port.Number
		}
		if _, ok := httpPort(vt.svc, m.Port); !ok {
			t.diags.add(model.Warnf(src, path+".port", "service %s has no HTTP port %d; this match entry never matches it",
				vt.svc.Hostname, m.Port))
		}
		if m.Port != vt.port.Number {
			return false
		}
	}
	if m.SourceNamespace != "" && m.SourceNamespace != t.class.Namespace {
		return false
	}
	for k, v := range m.SourceLabels {
		if have, ok := t.class.Labels[k]; !ok || have != v {
			return false
		}
	}
	return true
}

// ignoredMatchFields warns about match fields weir does not translate yet. Dropping a
// condition widens the match, so the message says so.
func ignoredMatchFields(src model.Ref, path string, m *networking.HTTPMatchRequest) []model.Diagnostic {
	ds := ignoredFields(src, path, m, "name", "uri", "scheme", "method", "authority", "headers", "port",
		"sourceLabels", "gateways", "queryParams", "ignoreUriCase", "withoutHeaders", "sourceNamespace", "statPrefix")
	for i := range ds {
		ds[i].Message += ": this match entry matches as if it were not set"
	}
	if m.IgnoreUriCase && m.Uri == nil {
		ds = append(ds, model.Warnf(src, path+".ignoreUriCase", "ignoreUriCase has no effect without uri; ignored"))
	}
	return ds
}

// headerMatcher matches a header value; an empty match ({}) means "the header is
// present", as in Istio. invert turns it into a withoutHeaders condition.
func headerMatcher(name string, sm *networking.StringMatch, invert bool) *routev3.HeaderMatcher {
	h := &routev3.HeaderMatcher{Name: name, InvertMatch: invert}
	if s := stringMatcher(sm); s != nil {
		h.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: s}
	} else {
		h.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
	}
	return h
}

func queryParameterMatcher(name string, sm *networking.StringMatch) *routev3.QueryParameterMatcher {
	q := &routev3.QueryParameterMatcher{Name: name}
	if s := stringMatcher(sm); s != nil {
		q.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: s}
	} else {
		q.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}
	}
	return q
}

func stringMatcher(sm *networking.StringMatch) *matcherv3.StringMatcher {
	switch v := sm.GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v.Exact}}
	case *networking.StringMatch_Prefix:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: v.Prefix}}
	case *networking.StringMatch_Regex:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: regexMatcher(v.Regex)}}
	}
	return nil
}

// regexMatcher matches the whole value, as Istio's regex does. The engine is left unset:
// Envoy's default engine is RE2 and the google_re2 field is deprecated in v1.40.
func regexMatcher(re string) *matcherv3.RegexMatcher {
	return &matcherv3.RegexMatcher{Regex: re}
}

// checkRegex refuses a regex RE2 cannot compile (Go's regexp has RE2's syntax): Envoy
// would reject the whole route configuration.
func checkRegex(src model.Ref, field, re string) (model.Diagnostic, bool) {
	if re == "" {
		return model.Errorf(src, field, "regex must not be empty"), false
	}
	if _, err := regexp.Compile(re); err != nil {
		return model.Errorf(src, field, "invalid regex %q: %v", re, err), false
	}
	return model.Diagnostic{}, true
}
