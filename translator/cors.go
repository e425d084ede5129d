package translator

import (
	"fmt"
	"strconv"
	"strings"

	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// corsPolicy translates an http route's corsPolicy into the CORS filter's config for
// that route. Errors mean the policy cannot be translated as written.
func corsPolicy(src model.Ref, path string, c *networking.CorsPolicy) (*corsv3.CorsPolicy, []model.Diagnostic) {
	if c == nil {
		return nil, nil
	}
	ds := ignoredFields(src, path, c, "allowOrigin", "allowOrigins", "allowMethods", "allowHeaders",
		"exposeHeaders", "maxAge", "allowCredentials", "unmatchedPreflights")
	origins, more := allowedOrigins(src, path, c)
	ds = append(ds, more...)
	out := &corsv3.CorsPolicy{
		AllowOriginStringMatch: origins,
		AllowMethods:           strings.Join(c.AllowMethods, ","),
		AllowHeaders:           strings.Join(c.AllowHeaders, ","),
		ExposeHeaders:          strings.Join(c.ExposeHeaders, ","),
		AllowCredentials:       cloneBool(c.AllowCredentials),
	}
	if d := c.MaxAge; d != nil {
		switch {
		case d.CheckValid() != nil || d.AsDuration() < 0:
			ds = append(ds, model.Errorf(src, path+".maxAge", "must be a duration of 0s or more"))
		case d.Nanos != 0:
			ds = append(ds, model.Warnf(src, path+".maxAge", "Access-Control-Max-Age counts whole seconds; %s is sent as %d", d.AsDuration(), d.Seconds))
		}
		out.MaxAge = strconv.FormatInt(d.Seconds, 10)
	}
	switch c.UnmatchedPreflights {
	case networking.CorsPolicy_FORWARD:
		out.ForwardNotMatchingPreflights = wrapperspb.Bool(true)
	case networking.CorsPolicy_IGNORE:
		out.ForwardNotMatchingPreflights = wrapperspb.Bool(false)
	}
	return out, ds
}

// allowedOrigins are allowOrigins, or else the deprecated allowOrigin list (exact
// origins; "*" allows any, as the CORS filter reads it).
func allowedOrigins(src model.Ref, path string, c *networking.CorsPolicy) ([]*matcherv3.StringMatcher, []model.Diagnostic) {
	var out []*matcherv3.StringMatcher
	var ds []model.Diagnostic
	if len(c.AllowOrigins) == 0 {
		for _, o := range c.AllowOrigin {
			out = append(out, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: o}})
		}
	} else if len(c.AllowOrigin) > 0 {
		ds = append(ds, model.Warnf(src, path+".allowOrigin", "the deprecated allowOrigin is ignored when allowOrigins is set"))
	}
	for i, sm := range c.AllowOrigins {
		field := fmt.Sprintf("%s.allowOrigins[%d]", path, i)
		m := stringMatcher(sm)
		if m == nil {
			ds = append(ds, model.Warnf(src, field, "matches no origin (set exact, prefix or regex); ignored"))
			continue
		}
		if re := sm.GetRegex(); re != "" {
			if d, ok := checkRegex(src, field+".regex", re); !ok {
				ds = append(ds, d)
				continue
			}
		}
		out = append(out, m)
	}
	if len(c.AllowOrigins) == 0 && len(c.AllowOrigin) == 0 {
		ds = append(ds, model.Warnf(src, path, "no origin is allowed: browsers get no CORS headers for any origin"))
	}
	return out, ds
}

func cloneBool(b *wrapperspb.BoolValue) *wrapperspb.BoolValue {
	if b == nil {
		return nil
	}
	return wrapperspb.Bool(b.Value)
}
