package translator

import (
	"net/netip"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

const tlsTransportSocketName = "envoy.transport_sockets.tls"

// tlsSettings is a compiled tls block. A nil context means plaintext (mode DISABLE, or a
// mode weir cannot honour, which is reported).
type tlsSettings struct {
	context *tlsv3.UpstreamTlsContext
}

// compileUpstreamTLS translates a tls block. Envoy reads the certificate files itself, so
// they are passed by name; model validation has checked that the names are absolute and
// that the mode has what it needs, and the file source that the files hold certificates.
func compileUpstreamTLS(src model.Ref, path string, t *networking.ClientTLSSettings) (*tlsSettings, []model.Diagnostic) {
	diags := ignoredFields(src, path, t, "mode", "clientCertificate", "privateKey", "caCertificates", "subjectAltNames",
		"sni", "insecureSkipVerify", "caCrl", "credentialName")
	switch t.Mode {
	case networking.ClientTLSSettings_DISABLE:
		return &tlsSettings{}, diags
	case networking.ClientTLSSettings_ISTIO_MUTUAL:
		return &tlsSettings{}, append(diags, model.Warnf(src, path+".mode",
			"ISTIO_MUTUAL is not supported: weir runs no mesh certificate authority, so there are no workload certificates to present; connections stay plaintext. For mutual TLS, use mode MUTUAL with clientCertificate, privateKey and caCertificates files"))
	}
	ctx := &tlsv3.UpstreamTlsContext{Sni: t.Sni, CommonTlsContext: &tlsv3.CommonTlsContext{}}
	if t.Mode == networking.ClientTLSSettings_MUTUAL {
		ctx.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{{
			CertificateChain: fileSource(t.ClientCertificate),
			PrivateKey:       fileSource(t.PrivateKey),
		}}
	} else if t.ClientCertificate != "" || t.PrivateKey != "" {
		diags = append(diags, model.Warnf(src, path+".mode",
			"clientCertificate and privateKey are presented in mode MUTUAL only, not %s; ignored", t.Mode))
	}
	if t.InsecureSkipVerify.GetValue() {
		if t.CaCertificates != "" || len(t.SubjectAltNames) > 0 || t.CaCrl != "" {
			diags = append(diags, model.Warnf(src, path+".insecureSkipVerify",
				"the backend's certificate is not verified, so caCertificates, subjectAltNames and caCrl are ignored"))
		}
		return &tlsSettings{context: ctx}, diags
	}
	validation := &tlsv3.CertificateValidationContext{TrustedCa: fileSource(t.CaCertificates)}
	if t.CaCrl != "" {
		validation.Crl = fileSource(t.CaCrl)
	}
	for _, san := range t.SubjectAltNames {
		validation.MatchTypedSubjectAltNames = append(validation.MatchTypedSubjectAltNames, &tlsv3.SubjectAltNameMatcher{
			SanType: sanType(san),
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: san}},
		})
	}
	ctx.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: validation}
	return &tlsSettings{context: ctx}, diags
}

// sanType guesses the kind of a subject alternative name from its form: spiffe://... and
// other URIs, IP addresses, else DNS names.
func sanType(san string) tlsv3.SubjectAltNameMatcher_SanType {
	if strings.Contains(san, "://") {
		return tlsv3.SubjectAltNameMatcher_URI
	}
	if _, err := netip.ParseAddr(san); err == nil {
		return tlsv3.SubjectAltNameMatcher_IP_ADDRESS
	}
	return tlsv3.SubjectAltNameMatcher_DNS
}

func fileSource(name string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: name}}
}

// applyUpstreamTLS wraps the cluster's connections in TLS. Without an sni the service's
// hostname is presented, so that a server hosting several names picks the right
// certificate. An HTTP/2 cluster offers h2 by ALPN, which TLS servers expect.
func applyUpstreamTLS(c *clusterv3.Cluster, t *tlsSettings, hostname string, h2 bool) {
	if t == nil || t.context == nil {
		return
	}
	ctx := proto.Clone(t.context).(*tlsv3.UpstreamTlsContext)
	if ctx.Sni == "" {
		ctx.Sni = hostname
	}
	if h2 {
		ctx.CommonTlsContext.AlpnProtocols = []string{"h2"}
	}
	c.TransportSocket = &corev3.TransportSocket{
		Name:       tlsTransportSocketName,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: typedConfig(ctx)},
	}
}
