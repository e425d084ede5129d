package e2e

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
)

// IssuePEM issues a server certificate for host and returns it and its key as PEM, with
// its serial number, so that a test can tell two issues apart.
func (p *PKI) IssuePEM(host string) (certPEM, keyPEM []byte, serial int64) {
	t := p.t
	t.Helper()
	certFile, keyFile, pair := p.Issue(host, []string{host}, nil)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatalf("%v", err)
	}
	if certPEM, err = os.ReadFile(certFile); err == nil {
		keyPEM, err = os.ReadFile(keyFile)
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	return certPEM, keyPEM, leaf.SerialNumber.Int64()
}

// TLSSecret writes a kubernetes.io/tls Secret holding a certificate and its key.
func TLSSecret(name, namespace string, certPEM, keyPEM []byte) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: %s
  namespace: %s
type: kubernetes.io/tls
stringData:
  tls.crt: |
%s
  tls.key: |
%s
`, name, namespace, indent(string(certPEM), "    "), indent(string(keyPEM), "    "))
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}
