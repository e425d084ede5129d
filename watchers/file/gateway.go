package file

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	networking "istio.io/api/networking/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/weir-mesh/weir/model"
)

// Kinds read for gateways and proxy scoping.
const (
	kindGateway = "Gateway"
	kindSidecar = "Sidecar"
	kindSecret  = "Secret"
)

func decodeGateway(o *object, raw []byte) {
	spec := &networking.Gateway{}
	if !decodeIstio(o, raw, spec) {
		return
	}
	gw := &model.Gateway{Source: o.ref, Spec: spec}
	if o.validated(append(model.ValidateGateway(gw), gatewayTLSFileProblems(gw)...)) {
		o.gateway = gw
	}
}

func decodeSidecar(o *object, raw []byte) {
	spec := &networking.Sidecar{}
	if !decodeIstio(o, raw, spec) {
		return
	}
	sc := &model.Sidecar{Source: o.ref, Spec: spec}
	if o.validated(model.ValidateSidecar(sc)) {
		o.sidecar = sc
	}
}

// decodeSecret reads a TLS Secret: a certificate chain and its key, under tls.crt and
// tls.key (kubernetes.io/tls) or cert and key (Istio's generic form), and/or the CA that
// client certificates must chain to, under ca.crt or cacert; from data or stringData.
// What is there must parse (and the pair match), so that Envoy is never sent what it
// rejects.
func decodeSecret(o *object, raw []byte) {
	var s corev1.Secret
	if o.reject(decodeStrict(raw, &s)) {
		return
	}
	where := "data"
	if s.StringData != nil {
		where = "stringData"
	}
	certKey, keyKey := "tls.crt", "tls.key"
	cert, key := secretValue(&s, certKey), secretValue(&s, keyKey)
	if cert == nil && key == nil {
		certKey, keyKey = "cert", "key"
		cert, key = secretValue(&s, certKey), secretValue(&s, keyKey)
	}
	caKey := "ca.crt"
	ca := secretValue(&s, caKey)
	if ca == nil {
		caKey = "cacert"
		ca = secretValue(&s, caKey)
	}
	switch {
	case cert == nil && key == nil && ca == nil:
		o.warnings = append(o.warnings, model.Warnf(o.ref, "type",
			"only TLS Secrets (tls.crt and tls.key, and/or ca.crt) are used, as Gateway credentials; ignored"))
		return
	case cert == nil && key != nil:
		o.reject([]fieldProblem{{field: where + "." + certKey, msg: "the certificate is missing"}})
		return
	case key == nil && cert != nil:
		o.reject([]fieldProblem{{field: where + "." + keyKey, msg: "the private key is missing"}})
		return
	}
	if cert != nil {
		if _, err := tls.X509KeyPair(cert, key); err != nil {
			o.reject([]fieldProblem{{field: where + "." + certKey, msg: fmt.Sprintf("certificate and key do not load: %v", err)}})
			return
		}
	}
	if ca != nil && !x509.NewCertPool().AppendCertsFromPEM(ca) {
		o.reject([]fieldProblem{{field: where + "." + caKey, msg: "holds no PEM certificate"}})
		return
	}
	o.secret = &model.Secret{Source: o.ref, Cert: cert, Key: key, CA: ca}
}

func secretValue(s *corev1.Secret, k string) []byte {
	if v, ok := s.StringData[k]; ok {
		return []byte(v)
	}
	if v, ok := s.Data[k]; ok {
		return v
	}
	return nil
}
