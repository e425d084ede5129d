package translator

import (
	"testing"

	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
)

func exactOrigin(o string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: o}}
}

func TestCorsPolicy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  string
		want  *corsv3.CorsPolicy
		diags []string
	}{{
		name: "every field",
		spec: `{allowOrigins: [{exact: "https://a.example"}, {prefix: "https://b"}], allowMethods: [GET, POST],
allowHeaders: [x-token], exposeHeaders: [x-id, x-trace], maxAge: 600s, allowCredentials: false, unmatchedPreflights: FORWARD}`,
		want: &corsv3.CorsPolicy{
			AllowOriginStringMatch: []*matcherv3.StringMatcher{exactOrigin("https://a.example"),
				{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "https://b"}}},
			AllowMethods: "GET,POST", AllowHeaders: "x-token", ExposeHeaders: "x-id,x-trace", MaxAge: "600",
			AllowCredentials: wrapperspb.Bool(false), ForwardNotMatchingPreflights: wrapperspb.Bool(true),
		},
	}, {
		name: "the deprecated allowOrigin, read as exact origins",
		spec: `{allowOrigin: ["*"]}`,
		want: &corsv3.CorsPolicy{AllowOriginStringMatch: []*matcherv3.StringMatcher{exactOrigin("*")}},
	}, {
		name:  "allowOrigin is ignored next to allowOrigins",
		spec:  `{allowOrigin: ["https://old.example"], allowOrigins: [{exact: "https://new.example"}]}`,
		want:  &corsv3.CorsPolicy{AllowOriginStringMatch: []*matcherv3.StringMatcher{exactOrigin("https://new.example")}},
		diags: []string{"warning spec.http[0].corsPolicy.allowOrigin"},
	}, {
		name:  "unmatched preflights stop at Envoy",
		spec:  `{allowOrigins: [{exact: "https://a.example"}], unmatchedPreflights: IGNORE}`,
		want:  &corsv3.CorsPolicy{AllowOriginStringMatch: []*matcherv3.StringMatcher{exactOrigin("https://a.example")}, ForwardNotMatchingPreflights: wrapperspb.Bool(false)},
		diags: nil,
	}, {
		name:  "no origin at all",
		spec:  `{allowMethods: [GET]}`,
		want:  &corsv3.CorsPolicy{AllowMethods: "GET"},
		diags: []string{"warning spec.http[0].corsPolicy"},
	}, {
		name:  "an invalid regex",
		spec:  `{allowOrigins: [{regex: "(x"}]}`,
		want:  &corsv3.CorsPolicy{},
		diags: []string{"error spec.http[0].corsPolicy.allowOrigins[0].regex"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			in := &networking.CorsPolicy{}
			parseSpec(t, tc.spec, in)
			got, ds := corsPolicy(testSource, "spec.http[0].corsPolicy", in)
			if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("policy (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.diags, problems(ds)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}
