package translator

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// headerOps are the header changes of one route or one destination, as Envoy carries them
// on a route and on each entry of weighted clusters.
type headerOps struct {
	requestAdd     []*corev3.HeaderValueOption
	requestRemove  []string
	responseAdd    []*corev3.HeaderValueOption
	responseRemove []string
	// authority replaces the Host header (a request "set" of host or :authority): Envoy
	// refuses to change it through headers_to_add, so it becomes a host rewrite.
	authority string
}

func (o headerOps) equal(p headerOps) bool {
	return o.authority == p.authority && slices.Equal(o.requestRemove, p.requestRemove) &&
		slices.Equal(o.responseRemove, p.responseRemove) &&
		slices.EqualFunc(o.requestAdd, p.requestAdd, headerOptionEqual) &&
		slices.EqualFunc(o.responseAdd, p.responseAdd, headerOptionEqual)
}

func headerOptionEqual(a, b *corev3.HeaderValueOption) bool { return proto.Equal(a, b) }

// then is o followed by p: p's changes apply after o's, so p's "set" wins.
func (o headerOps) then(p headerOps) headerOps {
	out := headerOps{
		requestAdd:     slices.Concat(o.requestAdd, p.requestAdd),
		requestRemove:  slices.Concat(o.requestRemove, p.requestRemove),
		responseAdd:    slices.Concat(o.responseAdd, p.responseAdd),
		responseRemove: slices.Concat(o.responseRemove, p.responseRemove),
		authority:      o.authority,
	}
	if p.authority != "" {
		out.authority = p.authority
	}
	return out
}

// applyToRoute puts the changes on a route (the host rewrite needs a forwarding action).
func (o headerOps) applyToRoute(r *routev3.Route) {
	r.RequestHeadersToAdd = o.requestAdd
	r.RequestHeadersToRemove = o.requestRemove
	r.ResponseHeadersToAdd = o.responseAdd
	r.ResponseHeadersToRemove = o.responseRemove
	if a := r.GetRoute(); a != nil && o.authority != "" {
		a.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: o.authority}
	}
}

// applyToCluster puts the changes on one entry of weighted clusters. Envoy applies them
// before the route's own, so the route's "set" wins over a destination's.
func (o headerOps) applyToCluster(c *routev3.WeightedCluster_ClusterWeight) {
	c.RequestHeadersToAdd = o.requestAdd
	c.RequestHeadersToRemove = o.requestRemove
	c.ResponseHeadersToAdd = o.responseAdd
	c.ResponseHeadersToRemove = o.responseRemove
	if o.authority != "" {
		c.HostRewriteSpecifier = &routev3.WeightedCluster_ClusterWeight_HostRewriteLiteral{HostRewriteLiteral: o.authority}
	}
}

// headerOperations translates Istio's headers: set overwrites a header (or adds it), add
// appends a value, remove drops it. Names are taken in sorted order, set before add, so
// that output is deterministic. A name Envoy would refuse is an error.
func headerOperations(src model.Ref, path string, h *networking.Headers) (headerOps, []model.Diagnostic) {
	var ops headerOps
	if h == nil {
		return ops, nil
	}
	ds := ignoredFields(src, path, h, "request", "response")
	var more []model.Diagnostic
	if req := h.Request; req != nil {
		ds = append(ds, ignoredFields(src, path+".request", req, "set", "add", "remove")...)
		ops.requestAdd, ops.authority, more = headerValueOptions(src, path+".request", req, true)
		ds = append(ds, more...)
		ops.requestRemove, more = headerRemovals(src, path+".request.remove", req.Remove)
		ds = append(ds, more...)
	}
	if resp := h.Response; resp != nil {
		ds = append(ds, ignoredFields(src, path+".response", resp, "set", "add", "remove")...)
		ops.responseAdd, _, more = headerValueOptions(src, path+".response", resp, false)
		ds = append(ds, more...)
		ops.responseRemove, more = headerRemovals(src, path+".response.remove", resp.Remove)
		ds = append(ds, more...)
	}
	return ops, ds
}

// headerValueOptions translates set and add. On requests, a set of host or :authority is
// returned as the new authority.
func headerValueOptions(src model.Ref, path string, op *networking.Headers_HeaderOperations, request bool) ([]*corev3.HeaderValueOption, string, []model.Diagnostic) {
	var out []*corev3.HeaderValueOption
	var authority string
	var ds []model.Diagnostic
	for _, kind := range []struct {
		field  string
		values map[string]string
		action corev3.HeaderValueOption_HeaderAppendAction
	}{
		{"set", op.Set, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
		{"add", op.Add, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD},
	} {
		for _, name := range slices.Sorted(maps.Keys(kind.values)) {
			value, field := kind.values[name], fmt.Sprintf("%s.%s[%s]", path, kind.field, name)
			switch {
			case !model.ValidHeaderName(name):
				ds = append(ds, model.Errorf(src, field, "invalid header name %q", name))
			case !validHeaderValue(value):
				ds = append(ds, model.Errorf(src, field, "must not contain NUL, CR or LF"))
			case request && kind.field == "set" && isAuthorityHeader(name):
				authority = value
			case !modifiableHeader(name):
				ds = append(ds, model.Warnf(src, field, "Envoy does not let a route %s %s; ignored", kind.field, name))
			default:
				out = append(out, &corev3.HeaderValueOption{
					Header:       &corev3.HeaderValue{Key: name, Value: value},
					AppendAction: kind.action,
				})
			}
		}
	}
	return out, authority, ds
}

func headerRemovals(src model.Ref, path string, names []string) ([]string, []model.Diagnostic) {
	var out []string
	var ds []model.Diagnostic
	for i, name := range names {
		field := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case !model.ValidHeaderName(name):
			ds = append(ds, model.Errorf(src, field, "invalid header name %q", name))
		case !modifiableHeader(name):
			ds = append(ds, model.Warnf(src, field, "Envoy does not let a route remove %s; ignored", name))
		case !slices.Contains(out, name):
			out = append(out, name)
		}
	}
	return out, ds
}

func isAuthorityHeader(name string) bool {
	return strings.EqualFold(name, "host") || name == ":authority"
}

// modifiableHeader mirrors Envoy's rule: pseudo-headers and host are neither added nor
// removed by a route (Envoy rejects the whole route configuration otherwise).
func modifiableHeader(name string) bool {
	return !strings.HasPrefix(name, ":") && !strings.EqualFold(name, "host")
}
