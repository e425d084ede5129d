package model

import (
	"fmt"
	"maps"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1"
)

// ValidateVirtualService checks one VirtualService on its own (no references to other
// objects): weights, regexes, durations, retry settings. Errors mean the object must not be
// used; the source keeps its last good version instead.
func ValidateVirtualService(vs *VirtualService) []Diagnostic {
	v := &validator{src: vs.Source}
	spec := vs.Spec
	if spec == nil {
		v.errorf("spec", "spec is missing")
		return v.diags
	}
	if len(spec.Hosts) == 0 {
		v.errorf("spec.hosts", "at least one host is required")
	}
	for i, h := range spec.Hosts {
		if strings.TrimSpace(h) == "" {
			v.errorf(fmt.Sprintf("spec.hosts[%d]", i), "host must not be empty")
		}
	}
	if len(spec.Http) == 0 && len(spec.Tcp) == 0 && len(spec.Tls) == 0 {
		v.errorf("spec", "at least one http, tcp or tls route is required")
	}
	for i, r := range spec.Http {
		v.httpRoute(fmt.Sprintf("spec.http[%d]", i), r)
	}
	return v.diags
}

// ValidateDestinationRule checks one DestinationRule on its own.
func ValidateDestinationRule(dr *DestinationRule) []Diagnostic {
	v := &validator{src: dr.Source}
	spec := dr.Spec
	if spec == nil {
		v.errorf("spec", "spec is missing")
		return v.diags
	}
	if strings.TrimSpace(spec.Host) == "" {
		v.errorf("spec.host", "host must not be empty")
	}
	v.trafficPolicy("spec.trafficPolicy", spec.TrafficPolicy)
	seen := map[string]int{}
	for i, s := range spec.Subsets {
		path := fmt.Sprintf("spec.subsets[%d]", i)
		switch first, dup := seen[s.GetName()]; {
		case s.GetName() == "":
			v.errorf(path+".name", "subset name is required")
		case dup:
			v.errorf(path+".name", "duplicate subset name %q (also spec.subsets[%d])", s.Name, first)
		default:
			seen[s.Name] = i
		}
		v.trafficPolicy(path+".trafficPolicy", s.GetTrafficPolicy())
	}
	return v.diags
}

// validator collects the errors of one object.
type validator struct {
	src   Ref
	diags []Diagnostic
}

func (v *validator) errorf(field, format string, args ...any) {
	v.diags = append(v.diags, Errorf(v.src, field, format, args...))
}

func (v *validator) warnf(field, format string, args ...any) {
	v.diags = append(v.diags, Warnf(v.src, field, format, args...))
}

func (v *validator) httpRoute(path string, r *networking.HTTPRoute) {
	if r == nil {
		v.errorf(path, "route must not be empty")
		return
	}
	actions := 0
	for _, set := range []bool{len(r.Route) > 0, r.Redirect != nil, r.DirectResponse != nil, r.Delegate != nil} {
		if set {
			actions++
		}
	}
	switch {
	case actions == 0:
		v.errorf(path, "one of route, redirect, directResponse or delegate is required")
	case actions > 1:
		v.errorf(path, "only one of route, redirect, directResponse or delegate may be set")
	}
	for k, m := range r.Match {
		v.match(fmt.Sprintf("%s.match[%d]", path, k), m)
	}
	for j, d := range r.Route {
		v.routeDestination(fmt.Sprintf("%s.route[%d]", path, j), d)
	}
	// A timeout of 0 means "no timeout", which is also the default, so only negative
	// values are wrong.
	v.duration(path+".timeout", r.Timeout, false)
	v.retries(path+".retries", r.Retries)
	v.mirror(path, r)
}

// mirror checks the mirror destination and its percentage (a double, 0 to 100, as in
// Istio; the deprecated mirrorPercent is a whole number).
func (v *validator) mirror(path string, r *networking.HTTPRoute) {
	if r.Mirror != nil && strings.TrimSpace(r.Mirror.Host) == "" {
		v.errorf(path+".mirror.host", "host must not be empty")
	}
	if p := r.MirrorPercentage; p != nil && !(p.Value >= 0 && p.Value <= 100) {
		v.errorf(path+".mirrorPercentage.value", "must be between 0 and 100 (got %g)", p.Value)
	}
	if p := r.MirrorPercent; p != nil && p.Value > 100 {
		v.errorf(path+".mirrorPercent", "must be between 0 and 100 (got %d)", p.Value)
	}
	if r.Mirror == nil && r.MirrorPercentage != nil {
		v.warnf(path+".mirrorPercentage", "mirrorPercentage has no effect without mirror; ignored")
	}
	if r.Mirror == nil && r.MirrorPercent != nil {
		v.warnf(path+".mirrorPercent", "mirrorPercent has no effect without mirror; ignored")
	}
	for i, m := range r.Mirrors {
		mpath := fmt.Sprintf("%s.mirrors[%d]", path, i)
		if strings.TrimSpace(m.GetDestination().GetHost()) == "" {
			v.errorf(mpath+".destination.host", "host must not be empty")
		}
		if p := m.Percentage; p != nil && !(p.Value >= 0 && p.Value <= 100) {
			v.errorf(mpath+".percentage.value", "must be between 0 and 100 (got %g)", p.Value)
		}
	}
}

func (v *validator) routeDestination(path string, d *networking.HTTPRouteDestination) {
	switch {
	case d.GetDestination() == nil:
		v.errorf(path+".destination", "destination is required")
	case strings.TrimSpace(d.Destination.Host) == "":
		v.errorf(path+".destination.host", "host must not be empty")
	}
	// Weights are relative (Istio accepts any non-negative values, not only a sum of 100).
	if d.GetWeight() < 0 {
		v.errorf(path+".weight", "weight must not be negative (got %d)", d.Weight)
	}
}

func (v *validator) match(path string, m *networking.HTTPMatchRequest) {
	if m == nil {
		return
	}
	v.stringMatch(path+".uri", m.Uri, true)
	v.stringMatch(path+".scheme", m.Scheme, true)
	v.stringMatch(path+".method", m.Method, true)
	v.stringMatch(path+".authority", m.Authority, true)
	v.namedMatches(path+".headers", m.Headers, true)
	v.namedMatches(path+".withoutHeaders", m.WithoutHeaders, true)
	v.namedMatches(path+".queryParams", m.QueryParams, false)
}

// namedMatches checks header or query parameter conditions, in key order so that the
// diagnostics come out in a stable order.
func (v *validator) namedMatches(path string, ms map[string]*networking.StringMatch, headers bool) {
	for _, key := range slices.Sorted(maps.Keys(ms)) {
		kpath := fmt.Sprintf("%s[%s]", path, key)
		switch {
		case key == "":
			v.errorf(kpath, "name must not be empty")
		case headers && !ValidHeaderName(key):
			v.errorf(kpath, "invalid header name %q", key)
		}
		v.stringMatch(kpath, ms[key], false)
	}
}

// stringMatch rejects what Envoy would reject (and so NACK): regexes RE2 cannot compile,
// empty regexes and, outside the URI, empty prefixes.
func (v *validator) stringMatch(path string, sm *networking.StringMatch, uri bool) {
	switch m := sm.GetMatchType().(type) {
	case *networking.StringMatch_Regex:
		if m.Regex == "" {
			v.errorf(path+".regex", "regex must not be empty")
		} else if _, err := regexp.Compile(m.Regex); err != nil {
			v.errorf(path+".regex", "invalid regex %q: %v", m.Regex, err)
		} else if n := regexProgramSize(m.Regex); n > envoyRegexLimit {
			v.warnf(path+".regex", "regex %q compiles to about %d RE2 instructions; Envoy rejects (NACKs) "+
				"programs over re2.max_program_size.error_level (default %d): simplify it or raise that runtime limit",
				m.Regex, n, envoyRegexLimit)
		}
	case *networking.StringMatch_Prefix:
		if m.Prefix == "" && !uri {
			v.errorf(path+".prefix", "prefix must not be empty (use {} to match any value)")
		}
	}
}

// envoyRegexLimit is Envoy's default re2.max_program_size.error_level.
const envoyRegexLimit = 100

// regexProgramSize estimates RE2's program size with Go's compiler, which is built the
// same way; it tracks Envoy's figure closely (102 vs 104 for [a-z]{100}), not exactly,
// hence a warning rather than an error: the limit is also a runtime setting.
func regexProgramSize(re string) int {
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return 0
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		return 0
	}
	return len(prog.Inst)
}

// ValidHeaderName accepts HTTP token characters (RFC 9110) and a leading ':' for
// pseudo-headers.
func ValidHeaderName(name string) bool {
	name = strings.TrimPrefix(name, ":")
	if name == "" {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return false
		}
	}
	return true
}

func (v *validator) retries(path string, r *networking.HTTPRetry) {
	if r == nil {
		return
	}
	if r.Attempts < 0 {
		v.errorf(path+".attempts", "attempts must not be negative (got %d)", r.Attempts)
	}
	v.duration(path+".perTryTimeout", r.PerTryTimeout, true)
	v.duration(path+".backoff", r.Backoff, true)
	for _, tok := range strings.Split(r.RetryOn, ",") {
		if tok = strings.TrimSpace(tok); tok != "" && !validRetryOn(tok) {
			v.errorf(path+".retryOn", "unknown retry condition %q", tok)
		}
	}
}

// retryConditions are the retryOn values Istio accepts, besides HTTP status codes.
var retryConditions = []string{
	"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited",
	"retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers", "cancelled",
	"deadline-exceeded", "internal", "resource-exhausted", "unavailable", "http3-post-connect-failure",
}

func validRetryOn(tok string) bool {
	if code, err := strconv.Atoi(tok); err == nil {
		return code >= 100 && code <= 599
	}
	return slices.Contains(retryConditions, tok)
}

// duration rejects malformed and negative durations, and zero ones when positive is set
// (where Istio requires at least 1ms).
func (v *validator) duration(path string, d *durationpb.Duration, positive bool) {
	if d == nil {
		return
	}
	switch {
	case d.CheckValid() != nil:
		v.errorf(path, "invalid duration: %v", d.CheckValid())
	case d.AsDuration() < 0:
		v.errorf(path, "duration must not be negative (got %s)", d.AsDuration())
	case positive && d.AsDuration() == 0:
		v.errorf(path, "duration must be greater than 0")
	}
}

// trafficPolicy checks the numbers and durations of one DestinationRule traffic policy.
func (v *validator) trafficPolicy(path string, tp *networking.TrafficPolicy) {
	if tp == nil {
		return
	}
	v.trafficPolicyBlocks(path, tp.LoadBalancer, tp.ConnectionPool, tp.OutlierDetection, tp.Tls)
	v.trafficPolicyExtras(path, tp)
}

func (v *validator) tcpSettings(path string, tcp *networking.ConnectionPoolSettings_TCPSettings) {
	if tcp == nil {
		return
	}
	v.nonNegative(path+".maxConnections", tcp.MaxConnections)
	v.duration(path+".connectTimeout", tcp.ConnectTimeout, true)
	v.duration(path+".maxConnectionDuration", tcp.MaxConnectionDuration, true)
	v.duration(path+".idleTimeout", tcp.IdleTimeout, false) // 0s turns the timeout off
	if k := tcp.TcpKeepalive; k != nil {
		v.duration(path+".tcpKeepalive.time", k.Time, true)
		v.duration(path+".tcpKeepalive.interval", k.Interval, true)
	}
}

func (v *validator) httpSettings(path string, h *networking.ConnectionPoolSettings_HTTPSettings) {
	if h == nil {
		return
	}
	v.nonNegative(path+".http1MaxPendingRequests", h.Http1MaxPendingRequests)
	v.nonNegative(path+".http2MaxRequests", h.Http2MaxRequests)
	v.nonNegative(path+".maxRequestsPerConnection", h.MaxRequestsPerConnection)
	v.nonNegative(path+".maxRetries", h.MaxRetries)
	v.nonNegative(path+".maxConcurrentStreams", h.MaxConcurrentStreams)
	v.duration(path+".idleTimeout", h.IdleTimeout, true)
}

func (v *validator) outlierDetection(path string, od *networking.OutlierDetection) {
	if od == nil {
		return
	}
	v.nonNegative(path+".consecutiveErrors", od.ConsecutiveErrors)
	v.duration(path+".interval", od.Interval, true)
	v.duration(path+".baseEjectionTime", od.BaseEjectionTime, true)
	v.percent(path+".maxEjectionPercent", od.MaxEjectionPercent)
	v.percent(path+".minHealthPercent", od.MinHealthPercent)
}

func (v *validator) nonNegative(path string, n int32) {
	if n < 0 {
		v.errorf(path, "must not be negative (got %d)", n)
	}
}

func (v *validator) percent(path string, n int32) {
	if n < 0 || n > 100 {
		v.errorf(path, "must be between 0 and 100 (got %d)", n)
	}
}
