package translator

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// redirectCodes are the redirect statuses Envoy can send.
var redirectCodes = map[uint32]routev3.RedirectAction_RedirectResponseCode{
	301: routev3.RedirectAction_MOVED_PERMANENTLY,
	302: routev3.RedirectAction_FOUND,
	303: routev3.RedirectAction_SEE_OTHER,
	307: routev3.RedirectAction_TEMPORARY_REDIRECT,
	308: routev3.RedirectAction_PERMANENT_REDIRECT,
}

// redirectAction answers with a redirect instead of forwarding. Only what is set changes
// in the Location URL; the rest is the request's own. derivePort FROM_REQUEST_PORT
// names the port of the virtual host, which is the service port the client addressed.
func redirectAction(src model.Ref, path string, rd *networking.HTTPRedirect, vt vhostTarget) (*routev3.RedirectAction, []model.Diagnostic) {
	ds := ignoredFields(src, path, rd, "uri", "authority", "port", "derivePort", "scheme", "redirectCode", "prefixRewrite")
	code := rd.RedirectCode
	if code == 0 {
		code = 301
	}
	rc, ok := redirectCodes[code]
	if !ok {
		return nil, append(ds, model.Errorf(src, path+".redirectCode", "must be 301, 302, 303, 307 or 308 (got %d)", rd.RedirectCode))
	}
	out := &routev3.RedirectAction{ResponseCode: rc, HostRedirect: rd.Authority}
	for _, f := range []struct{ name, value string }{
		{"uri", rd.Uri}, {"authority", rd.Authority}, {"scheme", rd.Scheme}, {"prefixRewrite", rd.PrefixRewrite},
	} {
		if d, ok := checkHeaderValue(src, path+"."+f.name, f.value); !ok {
			return nil, append(ds, d)
		}
	}
	switch {
	case rd.Uri != "" && rd.PrefixRewrite != "":
		return nil, append(ds, model.Errorf(src, path, "uri and prefixRewrite cannot both be set"))
	case rd.Uri != "":
		out.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: rd.Uri}
	case rd.PrefixRewrite != "":
		out.PathRewriteSpecifier = &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: rd.PrefixRewrite}
	}
	if rd.Scheme != "" {
		out.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: rd.Scheme}
	}
	switch p := rd.RedirectPort.(type) {
	case *networking.HTTPRedirect_Port:
		if p.Port == 0 || p.Port > 65535 {
			return nil, append(ds, model.Errorf(src, path+".port", "must be between 1 and 65535 (got %d)", p.Port))
		}
		out.PortRedirect = p.Port
	case *networking.HTTPRedirect_DerivePort:
		// FROM_PROTOCOL_DEFAULT is Envoy's own behaviour: no port for the scheme's default.
		if p.DerivePort == networking.HTTPRedirect_FROM_REQUEST_PORT {
			out.PortRedirect = vt.port.Number
		}
	}
	return out, ds
}

// maxDirectResponseBody is Envoy's default limit on a direct response's body; a route
// configuration with a larger one is rejected.
const maxDirectResponseBody = 4096

// directResponseAction answers with a fixed status and body instead of forwarding.
func directResponseAction(src model.Ref, path string, dr *networking.HTTPDirectResponse) (*routev3.DirectResponseAction, []model.Diagnostic) {
	ds := ignoredFields(src, path, dr, "status", "body")
	if dr.Status < 200 || dr.Status > 599 {
		return nil, append(ds, model.Errorf(src, path+".status", "must be between 200 and 599 (got %d)", dr.Status))
	}
	out := &routev3.DirectResponseAction{Status: dr.Status}
	var size int
	switch b := dr.GetBody().GetSpecifier().(type) {
	case *networking.HTTPBody_String_:
		out.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: b.String_}}
		size = len(b.String_)
	case *networking.HTTPBody_Bytes:
		out.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b.Bytes}}
		size = len(b.Bytes)
	}
	if size > maxDirectResponseBody {
		return nil, append(ds, model.Errorf(src, path+".body", "is %d bytes; Envoy allows at most %d", size, maxDirectResponseBody))
	}
	return out, ds
}
