package model

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	networking "istio.io/api/networking/v1"
)

// GatewayServerProtocol is how weir serves one Gateway server's port: HTTP in the clear or
// HTTP behind TLS termination. Other protocols are not served.
func GatewayServerProtocol(s *networking.Server) (Protocol, bool) {
	switch p := Protocol(strings.ToUpper(s.GetPort().GetProtocol())); p {
	case ProtocolHTTP, ProtocolHTTP2, ProtocolGRPC:
		return ProtocolHTTP, true
	case ProtocolHTTPS:
		return ProtocolHTTPS, true
	}
	return "", false
}

// ValidateGateway checks one Gateway on its own. Errors (no servers, an impossible port, a
// host that cannot be read) reject the object; servers weir cannot serve (TCP, TLS
// passthrough, client certificates) are warnings, and the translator leaves those servers
// out.
func ValidateGateway(gw *Gateway) []Diagnostic {
	v := &validator{src: gw.Source}
	spec := gw.Spec
	if spec == nil {
		v.errorf("spec", "spec is missing")
		return v.diags
	}
	if len(spec.Servers) == 0 {
		v.errorf("spec.servers", "at least one server is required")
	}
	protocols := map[uint32]Protocol{}
	for i, s := range spec.Servers {
		path := fmt.Sprintf("spec.servers[%d]", i)
		if s == nil || s.Port == nil {
			v.errorf(path+".port", "port is required")
			continue
		}
		v.gatewayServer(path, s)
		p, ok := GatewayServerProtocol(s)
		if !ok {
			continue
		}
		if prev, seen := protocols[s.Port.Number]; seen && prev != p {
			v.errorf(path+".port.protocol", "port %d is already served as %s by another server; one port carries one protocol", s.Port.Number, prev)
		}
		protocols[s.Port.Number] = p
	}
	return v.diags
}

func (v *validator) gatewayServer(path string, s *networking.Server) {
	if s.Port.Number < 1 || s.Port.Number > 65535 {
		v.errorf(path+".port.number", "must be between 1 and 65535, not %d", s.Port.Number)
	}
	if len(s.Hosts) == 0 {
		v.errorf(path+".hosts", "at least one host is required")
	}
	for j, h := range s.Hosts {
		if _, host, ok := SplitGatewayHost(h); !ok || host == "" {
			v.errorf(fmt.Sprintf("%s.hosts[%d]", path, j), "host %q must be a host name or namespace/host", h)
		}
	}
	proto, ok := GatewayServerProtocol(s)
	if !ok {
		v.warnf(path+".port.protocol", "protocol %q is not supported yet (weir serves HTTP, HTTP2, GRPC and HTTPS servers); server ignored", s.Port.Protocol)
		return
	}
	tls := s.Tls
	switch {
	case proto == ProtocolHTTP && tls != nil && !tls.HttpsRedirect:
		v.warnf(path+".tls", "tls is only used on HTTPS servers (apart from httpsRedirect); ignored")
	case proto == ProtocolHTTPS && tls == nil:
		v.errorf(path+".tls", "an HTTPS server needs tls (mode SIMPLE with credentialName, or serverCertificate and privateKey)")
	case proto == ProtocolHTTPS:
		v.serverTLS(path+".tls", tls)
	}
}

func (v *validator) serverTLS(path string, tls *networking.ServerTLSSettings) {
	switch tls.Mode {
	case networking.ServerTLSSettings_SIMPLE, networking.ServerTLSSettings_MUTUAL, networking.ServerTLSSettings_OPTIONAL_MUTUAL:
	case networking.ServerTLSSettings_PASSTHROUGH, networking.ServerTLSSettings_AUTO_PASSTHROUGH:
		v.warnf(path+".mode", "%s is not supported yet (it needs TLS routes); server ignored", tls.Mode)
		return
	default:
		v.warnf(path+".mode", "%s is not supported (weir runs no mesh CA); server ignored", tls.Mode)
		return
	}
	files := tls.ServerCertificate != "" || tls.PrivateKey != ""
	switch {
	case tls.CredentialName != "" && files:
		v.errorf(path+".credentialName", "set either credentialName or serverCertificate and privateKey, not both")
	case tls.CredentialName == "" && !files:
		v.errorf(path, "%s needs credentialName (a kubernetes.io/tls Secret) or serverCertificate and privateKey", tls.Mode)
	case files && (tls.ServerCertificate == "" || tls.PrivateKey == ""):
		v.errorf(path, "serverCertificate and privateKey go together")
	}
	if tls.Mode != networking.ServerTLSSettings_SIMPLE && tls.CredentialName == "" && tls.CaCertificates == "" && tls.CaCertCredentialName == "" {
		v.errorf(path+".caCertificates", "%s needs the CA that client certificates must chain to: caCertificates, caCertCredentialName, or credentialName whose Secret has ca.crt (or a <name>-cacert Secret)", tls.Mode)
	}
	for i, spki := range tls.VerifyCertificateSpki {
		if b, err := base64.StdEncoding.DecodeString(spki); err != nil || len(b) != sha256.Size {
			v.errorf(fmt.Sprintf("%s.verifyCertificateSpki[%d]", path, i), "must be the base64 SHA-256 of a certificate's public key (44 characters)")
		}
	}
	for i, h := range tls.VerifyCertificateHash {
		if b, err := hex.DecodeString(strings.ReplaceAll(h, ":", "")); err != nil || len(b) != sha256.Size {
			v.errorf(fmt.Sprintf("%s.verifyCertificateHash[%d]", path, i), "must be the hex SHA-256 of a certificate (64 digits, colons allowed)")
		}
	}
	for field, f := range map[string]string{"serverCertificate": tls.ServerCertificate, "privateKey": tls.PrivateKey, "caCertificates": tls.CaCertificates} {
		if f != "" && !filepath.IsAbs(f) {
			v.errorf(path+"."+field, "%q: give an absolute file name (Envoy reads the file itself)", f)
		}
	}
}

// SplitGatewayHost reads a Gateway server host: "namespace/host", where namespace may be
// "*" (any) or "." (the Gateway's own), or a bare host (any namespace).
func SplitGatewayHost(h string) (namespace, host string, ok bool) {
	ns, host, found := strings.Cut(h, "/")
	if !found {
		return "*", h, h != ""
	}
	if ns == "" || strings.Contains(host, "/") {
		return "", "", false
	}
	return ns, host, true
}

// ValidateSidecar checks one Sidecar on its own: egress hosts must read as namespace/host.
func ValidateSidecar(sc *Sidecar) []Diagnostic {
	v := &validator{src: sc.Source}
	spec := sc.Spec
	if spec == nil {
		v.errorf("spec", "spec is missing")
		return v.diags
	}
	for i, eg := range spec.Egress {
		for j, h := range eg.GetHosts() {
			if ns, host, found := strings.Cut(h, "/"); !found || ns == "" || host == "" {
				v.errorf(fmt.Sprintf("spec.egress[%d].hosts[%d]", i, j), "host %q must be namespace/host (\"./*\", \"ns/*\", \"*/host\")", h)
			}
		}
	}
	return v.diags
}
