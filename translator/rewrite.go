package translator

import (
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// rewrite changes the path and Host of forwarded requests. uri becomes Envoy's
// prefix_rewrite, which replaces what the route matched: the matched prefix for a prefix
// match and, for an exact or regex match, the whole path (the query string is kept).
// That is what Istio's docs promise, so the same field works for every match kind. A
// match without uri matches the prefix "/", which uri then replaces.
func rewrite(src model.Ref, path string, rw *networking.HTTPRewrite, a *routev3.RouteAction) []model.Diagnostic {
	if rw == nil {
		return nil
	}
	ds := ignoredFields(src, path, rw, "uri", "authority", "uriRegexRewrite")
	if rw.Uri != "" && rw.UriRegexRewrite != nil {
		return append(ds, model.Errorf(src, path, "uri and uriRegexRewrite cannot both be set"))
	}
	if rw.Uri != "" {
		if d, ok := checkHeaderValue(src, path+".uri", rw.Uri); !ok {
			return append(ds, d)
		}
		a.PrefixRewrite = rw.Uri
	}
	if rr := rw.UriRegexRewrite; rr != nil {
		if d, ok := checkRegex(src, path+".uriRegexRewrite.match", rr.Match); !ok {
			return append(ds, d)
		}
		if d, ok := checkHeaderValue(src, path+".uriRegexRewrite.rewrite", rr.Rewrite); !ok {
			return append(ds, d)
		}
		a.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: regexMatcher(rr.Match), Substitution: rr.Rewrite}
	}
	if rw.Authority != "" {
		if d, ok := checkHeaderValue(src, path+".authority", rw.Authority); !ok {
			return append(ds, d)
		}
		a.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.Authority}
	}
	return ds
}

// checkHeaderValue refuses what cannot travel in an HTTP header (Envoy rejects it).
func checkHeaderValue(src model.Ref, field, v string) (model.Diagnostic, bool) {
	if !validHeaderValue(v) {
		return model.Errorf(src, field, "must not contain NUL, CR or LF"), false
	}
	return model.Diagnostic{}, true
}

func validHeaderValue(v string) bool { return !strings.ContainsAny(v, "\x00\r\n") }
