package file

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// tlsFileProblems checks that the files each tls block of a DestinationRule names can be
// read and hold what Envoy expects. Envoy reads them itself when it builds the cluster,
// and one it cannot load makes it reject the whole cluster update: every cluster of the
// proxy, not just this rule's. Checked here, the rule alone fails closed. This assumes
// what file mode is for: weir and its Envoys on one machine, sharing the files.
func tlsFileProblems(dr *model.DestinationRule) []model.Diagnostic {
	var out []model.Diagnostic
	check := func(path string, tp *networking.TrafficPolicy) {
		out = append(out, tlsBlockFiles(dr.Source, path+".tls", tp.GetTls())...)
		for i, pl := range tp.GetPortLevelSettings() {
			out = append(out, tlsBlockFiles(dr.Source, fmt.Sprintf("%s.portLevelSettings[%d].tls", path, i), pl.GetTls())...)
		}
	}
	check("spec.trafficPolicy", dr.Spec.GetTrafficPolicy())
	for i, s := range dr.Spec.GetSubsets() {
		check(fmt.Sprintf("spec.subsets[%d].trafficPolicy", i), s.GetTrafficPolicy())
	}
	return out
}

func tlsBlockFiles(src model.Ref, path string, t *networking.ClientTLSSettings) []model.Diagnostic {
	if t == nil || (t.Mode != networking.ClientTLSSettings_SIMPLE && t.Mode != networking.ClientTLSSettings_MUTUAL) {
		return nil
	}
	var out []model.Diagnostic
	fail := func(field, format string, args ...any) {
		out = append(out, model.Errorf(src, path+"."+field, format, args...))
	}
	if t.Mode == networking.ClientTLSSettings_MUTUAL && usable(t.ClientCertificate) && usable(t.PrivateKey) {
		if _, err := tls.LoadX509KeyPair(t.ClientCertificate, t.PrivateKey); err != nil {
			field := "privateKey"
			if _, rerr := readPEM(t.ClientCertificate, "CERTIFICATE"); rerr != nil {
				field, err = "clientCertificate", rerr
			}
			fail(field, "%v", err)
		}
	}
	if t.InsecureSkipVerify.GetValue() {
		return out // the CA and CRL are not used
	}
	if usable(t.CaCertificates) {
		if err := parsePEM(t.CaCertificates, "CERTIFICATE", func(der []byte) error {
			_, err := x509.ParseCertificate(der)
			return err
		}); err != nil {
			fail("caCertificates", "%v", err)
		}
	}
	if usable(t.CaCrl) {
		if err := parsePEM(t.CaCrl, "X509 CRL", func(der []byte) error {
			_, err := x509.ParseRevocationList(der)
			return err
		}); err != nil {
			fail("caCrl", "%v", err)
		}
	}
	return out
}

// parsePEM checks that a file holds PEM blocks of the given type and that each parses.
func parsePEM(name, blockType string, parse func([]byte) error) error {
	blocks, err := readPEM(name, blockType)
	if err != nil {
		return err
	}
	for _, der := range blocks {
		if err := parse(der); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// usable skips names model validation already refuses (empty or relative).
func usable(name string) bool { return name != "" && filepath.IsAbs(name) }

// readPEM returns the DER bytes of each PEM block of the given type in a file, or says
// why there are none.
func readPEM(name, blockType string) ([][]byte, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("cannot read the file Envoy would read: %w", err)
	}
	var der [][]byte
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == blockType {
			der = append(der, b.Bytes)
		}
	}
	if len(der) == 0 {
		return nil, fmt.Errorf("%s holds no PEM %s block", name, blockType)
	}
	return der, nil
}

// gatewayTLSFileProblems checks the certificate and key files of a Gateway's HTTPS
// servers, for the same reason: a file Envoy cannot load makes it reject the listener of
// the whole port.
func gatewayTLSFileProblems(gw *model.Gateway) []model.Diagnostic {
	var out []model.Diagnostic
	for i, s := range gw.Spec.GetServers() {
		t := s.GetTls()
		if t == nil || t.Mode == networking.ServerTLSSettings_PASSTHROUGH || t.Mode == networking.ServerTLSSettings_AUTO_PASSTHROUGH {
			continue
		}
		if t.Mode != networking.ServerTLSSettings_SIMPLE && usable(t.CaCertificates) {
			if err := parsePEM(t.CaCertificates, "CERTIFICATE", func(der []byte) error {
				_, err := x509.ParseCertificate(der)
				return err
			}); err != nil {
				out = append(out, model.Errorf(gw.Source, fmt.Sprintf("spec.servers[%d].tls.caCertificates", i), "%v", err))
			}
		}
		if !usable(t.ServerCertificate) || !usable(t.PrivateKey) {
			continue
		}
		if _, err := tls.LoadX509KeyPair(t.ServerCertificate, t.PrivateKey); err != nil {
			field := "privateKey"
			if _, rerr := readPEM(t.ServerCertificate, "CERTIFICATE"); rerr != nil {
				field, err = "serverCertificate", rerr
			}
			out = append(out, model.Errorf(gw.Source, fmt.Sprintf("spec.servers[%d].tls.%s", i, field), "%v", err))
		}
	}
	return out
}
