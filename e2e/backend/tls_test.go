package backend

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"testing"
	"time"
)

// selfSigned makes a certificate for commonName that is its own CA.
func selfSigned(t *testing.T, commonName string) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: commonName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, DNSNames: []string{"backend.test"},
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, cert
}

// TestStartTLSReportsSNIAndClientCertificate: a TLS backend answers over HTTP/1.1 and h2
// and says which server name and client certificate it saw.
func TestStartTLSReportsSNIAndClientCertificate(t *testing.T) {
	server, serverCA := selfSigned(t, "server")
	client, clientCA := selfSigned(t, "the-client")
	clients := x509.NewCertPool()
	clients.AddCert(clientCA)
	b, err := StartTLS("127.0.0.1:0", "v1", "", &tls.Config{Certificates: []tls.Certificate{server},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	roots := x509.NewCertPool()
	roots.AddCert(serverCA)
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "backend.test", Certificates: []tls.Certificate{client}},
			ForceAttemptHTTP2: h2}
		status, _, r := get(t, &http.Client{Transport: tr, Timeout: 5 * time.Second}, "https://"+b.Addr()+"/", nil)
		want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]
		if status != http.StatusOK || r.Proto != want || r.SNI != "backend.test" || r.ClientCert != "the-client" {
			t.Errorf("h2=%v: status %d, proto %q, sni %q, client certificate %q; want 200, %s, backend.test, the-client",
				h2, status, r.Proto, r.SNI, r.ClientCert, want)
		}
	}
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "backend.test"}}, Timeout: 5 * time.Second}
	if resp, err := plain.Get("https://" + b.Addr() + "/"); err == nil {
		resp.Body.Close()
		t.Errorf("a client without a certificate was served (status %d)", resp.StatusCode)
	}
}
