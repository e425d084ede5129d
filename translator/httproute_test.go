package translator

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

func TestRedirectAction(t *testing.T) {
	vt := vhostTarget{svc: kubeService("reviews", "default", 9080), port: model.ServicePort{Number: 9080}}
	for _, tc := range []struct {
		name  string
		spec  string
		want  *routev3.RedirectAction
		diags []string
	}{{
		name: "301 by default",
		spec: `uri: /new`,
		want: &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_PathRedirect{PathRedirect: "/new"}},
	}, {
		name: "every part of the URL",
		spec: `{uri: /new, authority: example.com, port: 8443, scheme: https, redirectCode: 307}`,
		want: &routev3.RedirectAction{
			PathRewriteSpecifier:   &routev3.RedirectAction_PathRedirect{PathRedirect: "/new"},
			HostRedirect:           "example.com",
			PortRedirect:           8443,
			SchemeRewriteSpecifier: &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: "https"},
			ResponseCode:           routev3.RedirectAction_TEMPORARY_REDIRECT,
		},
	}, {
		name: "the request's port is the virtual host's",
		spec: `{derivePort: FROM_REQUEST_PORT, redirectCode: 302}`,
		want: &routev3.RedirectAction{PortRedirect: 9080, ResponseCode: routev3.RedirectAction_FOUND},
	}, {
		name: "prefix rewrite",
		spec: `{prefixRewrite: /v2/, redirectCode: 308}`,
		want: &routev3.RedirectAction{
			PathRewriteSpecifier: &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: "/v2/"},
			ResponseCode:         routev3.RedirectAction_PERMANENT_REDIRECT,
		},
	}, {
		name:  "a code Envoy cannot send",
		spec:  `{uri: /x, redirectCode: 299}`,
		diags: []string{"error spec.http[0].redirect.redirectCode"},
	}, {
		name:  "uri and prefixRewrite together",
		spec:  `{uri: /x, prefixRewrite: /y}`,
		diags: []string{"error spec.http[0].redirect"},
	}, {
		name:  "port out of range",
		spec:  `{port: 70000}`,
		diags: []string{"error spec.http[0].redirect.port"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			in := &networking.HTTPRedirect{}
			parseSpec(t, tc.spec, in)
			got, ds := redirectAction(testSource, "spec.http[0].redirect", in, vt)
			if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("redirect (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.diags, problems(ds)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDirectResponseAction(t *testing.T) {
	big := strings.Repeat("x", maxDirectResponseBody+1)
	for _, tc := range []struct {
		name  string
		in    *networking.HTTPDirectResponse
		want  *routev3.DirectResponseAction
		diags []string
	}{{
		name: "status only",
		in:   &networking.HTTPDirectResponse{Status: 503},
		want: &routev3.DirectResponseAction{Status: 503},
	}, {
		name: "string body",
		in:   &networking.HTTPDirectResponse{Status: 200, Body: &networking.HTTPBody{Specifier: &networking.HTTPBody_String_{String_: "ok"}}},
		want: &routev3.DirectResponseAction{Status: 200, Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "ok"}}},
	}, {
		name: "bytes body",
		in:   &networking.HTTPDirectResponse{Status: 418, Body: &networking.HTTPBody{Specifier: &networking.HTTPBody_Bytes{Bytes: []byte{0, 1}}}},
		want: &routev3.DirectResponseAction{Status: 418, Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: []byte{0, 1}}}},
	}, {
		name:  "status Envoy refuses",
		in:    &networking.HTTPDirectResponse{Status: 100},
		diags: []string{"error spec.http[0].directResponse.status"},
	}, {
		name:  "body over Envoy's limit",
		in:    &networking.HTTPDirectResponse{Status: 200, Body: &networking.HTTPBody{Specifier: &networking.HTTPBody_String_{String_: big}}},
		diags: []string{"error spec.http[0].directResponse.body"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, ds := directResponseAction(testSource, "spec.http[0].directResponse", tc.in)
			if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("direct response (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.diags, problems(ds)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBadRouteIsSkippedAlone guards "fail closed for that route only": a route whose
// fault Envoy cannot take is left out with an error naming the field, and the
// VirtualService's other routes are still served.
func TestBadRouteIsSkippedAlone(t *testing.T) {
	svc := kubeService("reviews", "default", 80)
	snap := &model.Snapshot{
		Services: []*model.Service{svc},
		VirtualServices: []*model.VirtualService{newVirtualService(t, "default", "reviews", `
hosts: [reviews]
http:
- match: [{headers: {x-chaos: {exact: "1"}}}]
  fault: {abort: {percentage: {value: 120}, httpStatus: 503}}
  route: [{destination: {host: reviews}}]
- match: [{uri: {prefix: /old}}]
  redirect: {uri: /new, redirectCode: 200}
- route: [{destination: {host: reviews}}]`)},
	}
	out, diags := Translate(snap, sidecar("default"))
	routes := out.Routes[0].VirtualHosts[0].Routes
	if len(routes) != 1 || routes[0].GetMatch().GetPrefix() != "/" || len(routes[0].GetMatch().GetHeaders()) != 0 {
		t.Fatalf("want only the catch-all route, got %v", routes)
	}
	want := []string{"error spec.http[0].fault.abort.percentage.value", "error spec.http[1].redirect.redirectCode"}
	if diff := cmp.Diff(want, problems(diags)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}
