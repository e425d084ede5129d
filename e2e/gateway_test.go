package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weir-mesh/weir/e2e/backend"
)

// gatewayConfig is an Istio ingress setup: one Gateway with HTTP on 80 and HTTPS on 443
// (a certificate per host, picked by SNI), and one VirtualService per host.
const gatewayConfig = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: public
  namespace: istio-system
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["bookinfo.example.com", "shop.example.com"]
  - port: {number: 443, name: https-bookinfo, protocol: HTTPS}
    hosts: ["bookinfo.example.com"]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert}
  - port: {number: 443, name: https-shop, protocol: HTTPS}
    hosts: ["shop.example.com"]
    tls: {mode: SIMPLE, credentialName: shop-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bookinfo
  namespace: default
spec:
  hosts: ["bookinfo.example.com"]
  gateways: ["istio-system/public"]
  http:
  - route:
    - destination: {host: productpage}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop
  namespace: default
spec:
  hosts: ["shop.example.com"]
  gateways: ["istio-system/public"]
  http:
  - route:
    - destination: {host: ratings}
`

// gatewayAnswer is what a client of the gateway sees for one request.
type gatewayAnswer struct {
	status  int
	version string
	serial  int64 // serial number of the certificate the gateway presented (HTTPS)
}

// gatewayGet sends one request for host to a gateway listener, over TLS with SNI host
// when ca is set, and trusts only ca.
func gatewayGet(addr, host string, ca *x509.CertPool) (gatewayAnswer, error) {
	return gatewayGetAs(addr, host, ca, nil)
}

// gatewayGetPath is gatewayGet over plain HTTP for one path.
func gatewayGetPath(addr, host, path string) (gatewayAnswer, error) {
	return gatewayRequest(addr, host, path, nil, nil)
}

// gatewayGetAs is gatewayGet presenting a client certificate, if one is given.
func gatewayGetAs(addr, host string, ca *x509.CertPool, client *tls.Certificate) (gatewayAnswer, error) {
	return gatewayRequest(addr, host, "/", ca, client)
}

func gatewayRequest(addr, host, path string, ca *x509.CertPool, client *tls.Certificate) (gatewayAnswer, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	scheme := "http"
	if ca != nil {
		scheme = "https"
		tr.TLSClientConfig = &tls.Config{RootCAs: ca, ServerName: host}
		if client != nil {
			// Always present it: Go would leave out a certificate that the server's list
			// of acceptable CAs does not name, and the server would never see it.
			tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return client, nil }
		}
	}
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		d := net.Dialer{Timeout: 2 * time.Second}
		return d.DialContext(ctx, network, addr)
	}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s://%s%s", scheme, host, path), nil)
	if err != nil {
		return gatewayAnswer{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return gatewayAnswer{}, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	a := gatewayAnswer{status: resp.StatusCode, version: resp.Header.Get(backend.VersionHeader)}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		a.serial = resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	return a, nil
}

// A standalone gateway Envoy, bootstrapped from envoy-configs/gateway.yaml, routes two
// hosts to two services over HTTP and over HTTPS (each host with its own certificate from
// a kubernetes.io/tls Secret, delivered by SDS and chosen by SNI). An unknown host gets
// 404. A rotated certificate is served on new connections without a listener change.
func TestGatewayRoutesTwoHostsOverHTTPAndHTTPS(t *testing.T) {
	env := NewEnv(t)
	product := env.StartBackendsFrom(221, "productpage-v1")
	ratings := env.StartBackendsFrom(222, "ratings-v1")
	ca := NewPKI(t, "gateway-test-ca")
	bookCert, bookKey, bookSerial := ca.IssuePEM("bookinfo.example.com")
	shopCert, shopKey, shopSerial := ca.IssuePEM("shop.example.com")
	env.WriteFile("services.yaml", ServicePods("productpage", "default", 9080, false, product)+"---\n"+
		ServicePods("ratings", "default", 80, false, ratings))
	env.WriteFile("secrets.yaml", TLSSecret("bookinfo-cert", "istio-system", bookCert, bookKey)+"---\n"+
		TLSSecret("shop-cert", "istio-system", shopCert, shopKey))
	env.WriteFile("gateway.yaml", gatewayConfig)
	env.StartWeir()
	httpPort, httpsPort := FreePort(t, "127.0.0.1"), FreePort(t, "127.0.0.1")
	gw := env.StartEnvoy(EnvoyOptions{Bootstrap: "gateway.yaml", ListenerPorts: map[int]int{80: httpPort, 443: httpsPort}})
	env.Weir().WaitAcked(t, gw.NodeID)
	httpAddr, httpsAddr := fmt.Sprintf("127.0.0.1:%d", httpPort), fmt.Sprintf("127.0.0.1:%d", httpsPort)
	if !poll(convergeTimeout, 50*time.Millisecond, func() bool {
		a, err := gatewayGet(httpsAddr, "shop.example.com", ca.Pool())
		return err == nil && a.status == http.StatusOK
	}) {
		t.Fatalf("the gateway's HTTPS listener never answered for shop.example.com")
	}

	cases := []struct {
		host    string
		tls     bool
		version string
		serial  int64
	}{
		{"bookinfo.example.com", false, "productpage-v1", 0},
		{"shop.example.com", false, "ratings-v1", 0},
		{"bookinfo.example.com", true, "productpage-v1", bookSerial},
		{"shop.example.com", true, "ratings-v1", shopSerial},
	}
	for _, c := range cases {
		addr, pool := httpAddr, (*x509.CertPool)(nil)
		if c.tls {
			addr, pool = httpsAddr, ca.Pool()
		}
		for range 20 {
			a, err := gatewayGet(addr, c.host, pool)
			if err != nil {
				t.Fatalf("%s (tls %v): %v", c.host, c.tls, err)
			}
			if a.status != http.StatusOK || a.version != c.version || a.serial != c.serial {
				t.Fatalf("%s (tls %v): got status %d from %q with certificate serial %d; want 200 from %q with serial %d",
					c.host, c.tls, a.status, a.version, a.serial, c.version, c.serial)
			}
		}
	}
	t.Logf("HTTP and HTTPS: 20 requests per host and scheme, each answered by its own service with its own certificate")

	if a, err := gatewayGet(httpAddr, "unknown.example.com", nil); err != nil || a.status != http.StatusNotFound {
		t.Errorf("unknown host over HTTP: %+v, %v; want 404", a, err)
	}
	// No certificate covers other names: the handshake must fail rather than fall back to
	// another host's certificate.
	if _, err := gatewayGet(httpsAddr, "unknown.example.com", ca.Pool()); err == nil {
		t.Errorf("unknown host over HTTPS: the handshake succeeded; want no filter chain to match")
	}

	// Rotation: a new certificate in the Secret reaches new connections through SDS.
	newCert, newKey, newSerial := ca.IssuePEM("bookinfo.example.com")
	env.WriteFile("secrets.yaml", TLSSecret("bookinfo-cert", "istio-system", newCert, newKey)+"---\n"+
		TLSSecret("shop-cert", "istio-system", shopCert, shopKey))
	began := time.Now()
	if !poll(convergeTimeout, 50*time.Millisecond, func() bool {
		a, err := gatewayGet(httpsAddr, "bookinfo.example.com", ca.Pool())
		return err == nil && a.serial == newSerial && a.version == "productpage-v1"
	}) {
		t.Fatalf("the rotated certificate (serial %d) was never served", newSerial)
	}
	t.Logf("rotated certificate served %v after the Secret changed", time.Since(began).Round(time.Millisecond))
	if stats, err := gw.Admin("/stats?filter=listener_manager.listener_modified"); err != nil || !strings.Contains(stats, "listener_modified: 0") {
		t.Errorf("rotating a certificate modified a listener (drains connections): %q %v", stats, err)
	}
}

// mutualGatewayConfig: partners.example.com requires a client certificate from the
// partners' CA (ca.crt in the credential's Secret); optional.example.com checks one only
// when it is presented.
const mutualGatewayConfig = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: partners
  namespace: istio-system
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: 443, name: https-partners, protocol: HTTPS}
    hosts: ["partners.example.com"]
    tls: {mode: MUTUAL, credentialName: partners-cert}
  - port: {number: 443, name: https-optional, protocol: HTTPS}
    hosts: ["optional.example.com"]
    tls: {mode: OPTIONAL_MUTUAL, credentialName: optional-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: partners
  namespace: default
spec:
  hosts: ["partners.example.com", "optional.example.com"]
  gateways: ["istio-system/partners"]
  http:
  - route:
    - destination: {host: ratings}
`

// TestGatewayChecksClientCertificates: a MUTUAL server answers only clients whose
// certificate chains to the CA in its Secret's ca.crt; an OPTIONAL_MUTUAL server also
// answers clients without one, but not clients with a certificate from another CA.
func TestGatewayChecksClientCertificates(t *testing.T) {
	env := NewEnv(t)
	ratings := env.StartBackendsFrom(223, "ratings-v1")
	serverCA, clientCA, strangerCA := NewPKI(t, "server-ca"), NewPKI(t, "partner-client-ca"), NewPKI(t, "stranger-ca")
	pCert, pKey, _ := serverCA.IssuePEM("partners.example.com")
	oCert, oKey, _ := serverCA.IssuePEM("optional.example.com")
	clientCAPEM, err := os.ReadFile(clientCA.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	_, _, partner := clientCA.Issue("partner-client", nil, nil)
	_, _, stranger := strangerCA.Issue("stranger-client", nil, nil)
	withCA := func(secret, ca string) string {
		return secret + "  ca.crt: |\n" + indent(ca, "    ") + "\n"
	}
	env.WriteFile("services.yaml", ServicePods("ratings", "default", 80, false, ratings))
	env.WriteFile("secrets.yaml", withCA(TLSSecret("partners-cert", "istio-system", pCert, pKey), string(clientCAPEM))+"---\n"+
		withCA(TLSSecret("optional-cert", "istio-system", oCert, oKey), string(clientCAPEM)))
	env.WriteFile("gateway.yaml", mutualGatewayConfig)
	env.StartWeir()
	httpsPort := FreePort(t, "127.0.0.1")
	gw := env.StartEnvoy(EnvoyOptions{Bootstrap: "gateway.yaml", ListenerPorts: map[int]int{443: httpsPort}})
	env.Weir().WaitAcked(t, gw.NodeID)
	addr := fmt.Sprintf("127.0.0.1:%d", httpsPort)
	if !poll(convergeTimeout, 50*time.Millisecond, func() bool {
		a, err := gatewayGetAs(addr, "partners.example.com", serverCA.Pool(), &partner)
		return err == nil && a.status == http.StatusOK
	}) {
		t.Fatalf("the MUTUAL server never answered a partner's certificate")
	}
	cases := []struct {
		host   string
		client *tls.Certificate
		who    string
		ok     bool
	}{
		{"partners.example.com", &partner, "a partner", true},
		{"partners.example.com", nil, "no certificate", false},
		{"partners.example.com", &stranger, "another CA's certificate", false},
		{"optional.example.com", &partner, "a partner", true},
		{"optional.example.com", nil, "no certificate", true},
		{"optional.example.com", &stranger, "another CA's certificate", false},
	}
	for _, c := range cases {
		for range 10 {
			a, err := gatewayGetAs(addr, c.host, serverCA.Pool(), c.client)
			served := err == nil && a.status == http.StatusOK && a.version == "ratings-v1"
			if served != c.ok {
				t.Fatalf("%s with %s: served %v (status %d from %q, %v), want %v", c.host, c.who, served, a.status, a.version, err, c.ok)
			}
		}
	}
	t.Logf("MUTUAL and OPTIONAL_MUTUAL: 10 requests per host and client kind, each served or refused as configured")
}
