package file

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-mesh/weir/model"
)

// writeSelfSigned writes a self-signed certificate and its key as PEM files in dir.
func writeSelfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSFilesFailClosed: a DestinationRule whose tls names a file Envoy could not load is
// rejected with an error naming the field (Envoy would otherwise reject every cluster of
// the proxy); the other objects in the file load.
func TestTLSFilesFailClosed(t *testing.T) {
	certs := t.TempDir()
	ca, _ := writeSelfSigned(t, certs, "ca")
	client, clientKey := writeSelfSigned(t, certs, "client")
	_, otherKey := writeSelfSigned(t, certs, "other")
	garbage := filepath.Join(certs, "garbage.pem")
	writeFile(t, garbage, "not a certificate\n")
	missing := filepath.Join(certs, "missing.pem")

	dr := func(tls string) string {
		return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: bad, namespace: shop}\n" +
			"spec:\n  host: kept\n  trafficPolicy:\n    tls: " + tls + "\n"
	}
	for _, tc := range []struct {
		name    string
		doc     string
		field   string // "" when the rule is good
		message string
	}{
		{"good SIMPLE and MUTUAL files", dr("{mode: MUTUAL, caCertificates: " + ca + ", clientCertificate: " + client +
			", privateKey: " + clientKey + "}"), "", ""},
		{"a CA file that is not there", dr("{mode: SIMPLE, caCertificates: " + missing + "}"),
			"spec.trafficPolicy.tls.caCertificates", "cannot read the file Envoy would read"},
		{"a CA file without a certificate", dr("{mode: SIMPLE, caCertificates: " + garbage + "}"),
			"spec.trafficPolicy.tls.caCertificates", "holds no PEM CERTIFICATE block"},
		{"a key that does not match the certificate", dr("{mode: MUTUAL, caCertificates: " + ca + ", clientCertificate: " + client +
			", privateKey: " + otherKey + "}"), "spec.trafficPolicy.tls.privateKey", "private key does not match public key"},
		{"a client certificate that is not there", dr("{mode: MUTUAL, caCertificates: " + ca + ", clientCertificate: " + missing +
			", privateKey: " + clientKey + "}"), "spec.trafficPolicy.tls.clientCertificate", "cannot read"},
		{"a CRL that does not parse", dr("{mode: SIMPLE, caCertificates: " + ca + ", caCrl: " + garbage + "}"),
			"spec.trafficPolicy.tls.caCrl", "holds no PEM X509 CRL block"},
		{"insecureSkipVerify reads no CA", dr("{mode: SIMPLE, insecureSkipVerify: true, caCertificates: " + missing + "}"), "", ""},
		{"a subset's port-level setting", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: bad, namespace: shop}\n" +
			"spec:\n  host: kept\n  subsets:\n  - name: v1\n    trafficPolicy:\n      portLevelSettings:\n" +
			"      - port: {number: 80}\n        tls: {mode: SIMPLE, caCertificates: " + missing + "}\n",
			"spec.subsets[0].trafficPolicy.portLevelSettings[0].tls.caCertificates", "cannot read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := loadTree(t, map[string]string{"objects.yaml": tc.doc + "---\n" + serviceYAML("kept", "shop")})
			want := []where{}
			if tc.field != "" {
				want = []where{{model.SeverityError, "DestinationRule shop/bad (objects.yaml)", tc.field}}
			}
			if diff := cmp.Diff(want, wheres(errorsOnly(snap.Diagnostics))); diff != "" {
				t.Fatalf("errors (-want +got):\n%s\n%v", diff, snap.Diagnostics)
			}
			if errs := errorsOnly(snap.Diagnostics); tc.field != "" && !strings.Contains(errs[0].Message, tc.message) {
				t.Errorf("message %q does not contain %q", errs[0].Message, tc.message)
			}
			if got, wantRules := len(snap.DestinationRules), map[bool]int{true: 1, false: 0}[tc.field == ""]; got != wantRules {
				t.Errorf("%d DestinationRules loaded, want %d", got, wantRules)
			}
			if diff := cmp.Diff([]string{"kept.shop.svc.cluster.local"}, hostnames(snap)); diff != "" {
				t.Errorf("the Service in the same file was affected (-want +got):\n%s", diff)
			}
		})
	}
}
