package translator

import (
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// caSecretSuffix names the Secret that holds a credential's client CA when the
// credential's own Secret has no ca.crt (Istio's convention).
const caSecretSuffix = "-cacert"

// requireClientCertificates makes a MUTUAL server demand a client certificate (an
// OPTIONAL_MUTUAL one checks it only when one is presented) that chains to the server's
// CA: the caCertificates file, or ca.crt of the caCertCredentialName Secret, else of the
// credential's own Secret, else of the <credentialName>-cacert Secret, sent by SDS. subjectAltNames, verifyCertificateSpki
// and verifyCertificateHash narrow which certificates pass. It reports whether the
// server can be served.
func (t *translation) requireClientCertificates(s boundServer, ctx *tlsv3.DownstreamTlsContext, sec *model.Secret,
	secrets []*model.Secret, sent map[string]bool) bool {
	tls := s.srv.Tls
	ctx.RequireClientCertificate = wrapperspb.Bool(tls.Mode == networking.ServerTLSSettings_MUTUAL)
	checks := &tlsv3.CertificateValidationContext{
		VerifyCertificateSpki: tls.VerifyCertificateSpki,
		VerifyCertificateHash: tls.VerifyCertificateHash,
	}
	for _, san := range tls.SubjectAltNames {
		checks.MatchTypedSubjectAltNames = append(checks.MatchTypedSubjectAltNames, &tlsv3.SubjectAltNameMatcher{
			SanType: sanType(san),
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: san}},
		})
	}
	common := ctx.CommonTlsContext
	if tls.CaCertificates != "" {
		checks.TrustedCa = fileSource(tls.CaCertificates)
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: checks}
		return true
	}
	name := secretName(tls.CredentialName + caSecretSuffix)
	switch {
	case tls.CaCertCredentialName != "":
		name = secretName(tls.CaCertCredentialName)
		if sec = findSecret(secrets, t.class.Namespace, tls.CaCertCredentialName); sec == nil || sec.CA == nil {
			t.diags.add(model.Errorf(s.gw.Source, s.path+".tls.caCertCredentialName",
				"Secret %s/%s with ca.crt not found; it must be in the gateway proxy's namespace; server ignored",
				t.class.Namespace, tls.CaCertCredentialName))
			return false
		}
	case sec == nil || sec.CA == nil:
		sec = findSecret(secrets, t.class.Namespace, tls.CredentialName+caSecretSuffix)
		if sec == nil || sec.CA == nil {
			t.diags.add(model.Errorf(s.gw.Source, s.path+".tls.credentialName",
				"%s needs the client CA: neither Secret %s/%s nor %s/%s%s has ca.crt (or set caCertificates or caCertCredentialName); server ignored",
				tls.Mode, t.class.Namespace, tls.CredentialName, t.class.Namespace, tls.CredentialName, caSecretSuffix))
			return false
		}
	}
	t.sendSecret(name, sec, sent, caSecret)
	common.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{
		CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         checks,
			ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: name, SdsConfig: adsConfigSource()},
		},
	}
	return true
}

// clientCheckFieldsUnused warns about client-certificate settings on a SIMPLE server,
// which asks for no client certificate.
func clientCheckFieldsUnused(s boundServer) []model.Diagnostic {
	var out []model.Diagnostic
	for _, f := range setFields(s.srv.Tls.ProtoReflect()) {
		switch f {
		case "caCertificates", "caCertCredentialName", "subjectAltNames", "verifyCertificateSpki", "verifyCertificateHash":
			out = append(out, model.Warnf(s.gw.Source, s.path+".tls."+f, "%s checks client certificates, which mode SIMPLE does not ask for; ignored", f))
		}
	}
	return out
}

func caSecret(name string, s *model.Secret) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		TrustedCa: inlineBytes(s.CA),
	}}}
}
