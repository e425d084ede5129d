package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weir-mesh/weir/e2e/backend"
)

// entry writes a ServiceEntry for host with one static endpoint: the backend.
func entry(host string, b *backend.Backend) string {
	ip, _, _ := strings.Cut(b.Addr(), ":")
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: %s, namespace: default}
spec:
  hosts: [%s]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: %d}]
  resolution: STATIC
  endpoints: [{address: %s}]
`, strings.Split(host, ".")[0], host, b.Port(), ip)
}

func tlsRule(host, tls string) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: %s, namespace: default}
spec:
  host: %s
  trafficPolicy:
    tls: %s
`, strings.Split(host, ".")[0], host, tls)
}

// tlsAnswer is one request's outcome with what the TLS backend saw.
type tlsAnswer struct {
	status int
	seen   backend.Response
}

func askTLS(tr *Traffic) tlsAnswer {
	req, _ := http.NewRequest(http.MethodGet, tr.URL, nil)
	req.Host = tr.Host
	resp, err := tr.client.Do(req)
	if err != nil {
		return tlsAnswer{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := tlsAnswer{status: resp.StatusCode}
	_ = json.Unmarshal(body, &a.seen)
	return a
}

// expectTLS waits (up to 5 s) for the first answer that ok accepts, the new rule having
// reached Envoy, then requires 50 more in a row to be accepted too.
func expectTLS(t *testing.T, what string, tr *Traffic, ok func(tlsAnswer) bool) tlsAnswer {
	t.Helper()
	var last tlsAnswer
	if !poll(5*time.Second, 20*time.Millisecond, func() bool { last = askTLS(tr); return ok(last) }) {
		t.Fatalf("%s: not seen within 5 s; last answer: status %d, %+v", what, last.status, last.seen)
	}
	for i := range 50 {
		if a := askTLS(tr); !ok(a) {
			t.Fatalf("%s: request %d of 50 after the change: status %d, %+v", what, i, a.status, a.seen)
		}
	}
	t.Logf("MEASURE %s: 51 of 51 requests (status %d, sni %q, client certificate %q)", what, last.status, last.seen.SNI, last.seen.ClientCert)
	return last
}

// TestUpstreamTLSVerifiesTheServerAndPresentsTheClient: backends that speak only TLS, one
// of them requiring a client certificate. SIMPLE with the right CA works and sends the
// service's hostname as SNI; a wrong CA fails; an explicit sni and matching
// subjectAltNames work, a SAN that does not match fails; MUTUAL presents the client
// certificate, and the same backend refuses SIMPLE. Every change is a file edit that
// Envoy accepts (no NACK): the failures are TLS failures, seen by the client as 503.
func TestUpstreamTLSVerifiesTheServerAndPresentsTheClient(t *testing.T) {
	env := NewEnv(t)
	mesh, other := NewPKI(t, "mesh"), NewPKI(t, "other")
	_, _, server := mesh.Issue("ratings", []string{"ratings.example.com"}, []net.IP{net.ParseIP("127.0.0.203"), net.ParseIP("127.0.0.204")})
	clientCert, clientKey, _ := mesh.Issue("weir-client", nil, nil)
	simple := startTLSBackend(t, "127.0.0.203:0", "tls", &tls.Config{Certificates: []tls.Certificate{server}})
	mutual := startTLSBackend(t, "127.0.0.204:0", "mtls", &tls.Config{Certificates: []tls.Certificate{server},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: mesh.Pool()})

	const ratings, payments = "ratings.mesh.internal", "payments.mesh.internal"
	env.WriteFile("services.yaml", entry(ratings, simple)+"---\n"+entry(payments, mutual))
	env.WriteFile("ratings-dr.yaml", tlsRule(ratings, "{mode: SIMPLE, caCertificates: "+mesh.CAFile+"}"))
	env.WriteFile("payments-dr.yaml", tlsRule(payments, fmt.Sprintf("{mode: MUTUAL, caCertificates: %s, clientCertificate: %s, privateKey: %s}",
		mesh.CAFile, clientCert, clientKey)))
	env.StartWeir()
	e := env.StartEnvoy(EnvoyOptions{})
	env.Weir().WaitAcked(t, e.NodeID)
	r, p := e.Traffic(ratings), e.Traffic(payments)
	served := func(sni string) func(tlsAnswer) bool {
		return func(a tlsAnswer) bool {
			return a.status == http.StatusOK && a.seen.Version == "tls" && a.seen.SNI == sni
		}
	}
	refused := func(a tlsAnswer) bool { return a.status == http.StatusServiceUnavailable && a.seen.Version == "" }

	expectTLS(t, "SIMPLE, right CA: served, SNI is the service's hostname", r, served(ratings))
	env.WriteFile("ratings-dr.yaml", tlsRule(ratings, "{mode: SIMPLE, caCertificates: "+other.CAFile+"}"))
	expectTLS(t, "SIMPLE, wrong CA: refused", r, refused)
	env.WriteFile("ratings-dr.yaml", tlsRule(ratings, "{mode: SIMPLE, caCertificates: "+mesh.CAFile+
		", sni: ratings.example.com, subjectAltNames: [ratings.example.com]}"))
	expectTLS(t, "SIMPLE, sni and matching subjectAltNames: served", r, served("ratings.example.com"))
	env.WriteFile("ratings-dr.yaml", tlsRule(ratings, "{mode: SIMPLE, caCertificates: "+mesh.CAFile+
		", sni: ratings.example.com, subjectAltNames: [reviews.example.com]}"))
	expectTLS(t, "SIMPLE, subjectAltNames not matching: refused", r, refused)

	a := expectTLS(t, "MUTUAL: served with the client certificate", p, func(a tlsAnswer) bool {
		return a.status == http.StatusOK && a.seen.Version == "mtls"
	})
	if a.seen.ClientCert != "weir-client" {
		t.Errorf("MUTUAL: the backend saw client certificate %q, want weir-client", a.seen.ClientCert)
	}
	env.WriteFile("payments-dr.yaml", tlsRule(payments, "{mode: SIMPLE, caCertificates: "+mesh.CAFile+"}"))
	expectTLS(t, "SIMPLE to a backend requiring a client certificate: refused", p, refused)
}

func startTLSBackend(t *testing.T, addr, version string, cfg *tls.Config) *backend.Backend {
	t.Helper()
	b, err := backend.StartTLS(addr, version, "", cfg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}
