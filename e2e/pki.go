package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI is a throwaway certificate authority for TLS tests, writing PEM files that Envoy
// reads into a directory of the test's own.
type PKI struct {
	t      TB
	dir    string
	name   string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	serial int64
	// CAFile holds the CA certificate: what caCertificates names to trust this CA.
	CAFile string
}

// NewPKI creates a CA called name, valid for an hour.
func NewPKI(t TB, name string) *PKI {
	t.Helper()
	p := &PKI{t: t, dir: t.TempDir(), name: name, serial: 1}
	p.key = newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.key.PublicKey, p.key)
	if err != nil {
		t.Fatalf("create CA %s: %v", name, err)
	}
	if p.cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatalf("%v", err)
	}
	p.CAFile = p.write(name+"-ca.pem", "CERTIFICATE", der)
	return p
}

// Pool is a certificate pool trusting only this CA.
func (p *PKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.cert)
	return pool
}

// Issue signs a certificate for commonName, valid for the given DNS names and IP
// addresses, usable by servers and clients. It returns the files of the certificate and
// its key, and the pair loaded for Go's crypto/tls.
func (p *PKI) Issue(commonName string, dnsNames []string, ips []net.IP) (certFile, keyFile string, pair tls.Certificate) {
	t := p.t
	t.Helper()
	key := newKey(t)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: commonName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: dnsNames, IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatalf("issue %s: %v", commonName, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("%v", err)
	}
	certFile = p.write(commonName+".pem", "CERTIFICATE", der)
	keyFile = p.write(commonName+"-key.pem", "EC PRIVATE KEY", keyDER)
	pair, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return certFile, keyFile, pair
}

func (p *PKI) write(name, blockType string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		p.t.Fatalf("%v", err)
	}
	return path
}

func newKey(t TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return key
}
