package translator

import (
	"cmp"
	"fmt"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// gateway builds a gateway proxy's listeners, route configurations and TLS secrets: one
// listener per Gateway port, one route configuration per port holding a virtual host per
// host name that a bound VirtualService serves there.
func (t *translation) gateway(gws []*model.Gateway, secrets []*model.Secret) {
	sent := map[string]bool{}
	for _, gp := range t.w.gatewayPorts(gws) {
		var chains []*listenerv3.FilterChain
		if gp.proto == model.ProtocolHTTPS {
			chains = t.tlsFilterChains(gp, secrets, sent)
		} else {
			chains = []*listenerv3.FilterChain{httpFilterChain(gp.number)}
		}
		if len(chains) == 0 {
			continue
		}
		t.out.Listeners = append(t.out.Listeners, t.gatewayListener(gp, chains))
		t.out.Routes = append(t.out.Routes, t.gatewayRouteConfiguration(gp))
	}
	slices.SortFunc(t.out.Listeners, func(a, b *listenerv3.Listener) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(t.out.Routes, func(a, b *routev3.RouteConfiguration) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(t.out.Secrets, func(a, b *tlsv3.Secret) int { return cmp.Compare(a.Name, b.Name) })
}

// gatewayRouteName names the route configuration of one Gateway port, as Istio does.
func gatewayRouteName(port uint32) string { return fmt.Sprintf("http.%d", port) }

func (t *translation) gatewayListener(gp *gatewayPort, chains []*listenerv3.FilterChain) *listenerv3.Listener {
	addr := t.class.ListenerAddress
	if addr == "" {
		addr = model.DefaultListenerAddress
	}
	port := t.class.BindPort(gp.number)
	l := &listenerv3.Listener{
		Name:         fmt.Sprintf("%s_%d", addr, port),
		Address:      socketAddress(addr, port),
		FilterChains: chains,
	}
	if gp.proto == model.ProtocolHTTPS {
		l.ListenerFilters = []*listenerv3.ListenerFilter{{
			Name:       "envoy.filters.listener.tls_inspector",
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: typedConfig(&tlsinspectorv3.TlsInspector{})},
		}}
	}
	for _, s := range gp.servers {
		t.origin(l.Name, s.gw.Source)
	}
	return l
}

func httpFilterChain(port uint32) *listenerv3.FilterChain {
	return &listenerv3.FilterChain{Filters: []*listenerv3.Filter{gatewayConnectionManager(port)}}
}

// gatewayConnectionManager is the sidecar's HTTP filter chain with the port's route
// configuration from RDS. A gateway faces clients directly, so the client's address is
// the connection's (use_remote_address), as in Istio's gateways.
func gatewayConnectionManager(port uint32) *listenerv3.Filter {
	hcm := httpConnectionManager()
	hcm.StatPrefix = fmt.Sprintf("gateway_%d", port)
	hcm.UseRemoteAddress = wrapperspb.Bool(true)
	hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
		ConfigSource:    adsConfigSource(),
		RouteConfigName: gatewayRouteName(port),
	}}
	return &listenerv3.Filter{
		Name:       "envoy.filters.network.http_connection_manager",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: typedConfig(hcm)},
	}
}

// tlsFilterChains gives each HTTPS server a filter chain picked by SNI that terminates
// TLS with the server's certificate. A server whose certificate is missing, or whose
// names another server already took, is left out: a listener waiting for a secret that
// never comes would stop the whole port.
func (t *translation) tlsFilterChains(gp *gatewayPort, secrets []*model.Secret, sent map[string]bool) []*listenerv3.FilterChain {
	var chains []*listenerv3.FilterChain
	taken := map[string]model.Ref{}
	for _, s := range gp.servers {
		names := sniNames(s.srv)
		if dup := takenName(names, taken); dup != "" {
			t.diags.add(model.Errorf(s.gw.Source, s.path+".hosts",
				"host %q on port %d is already served by %s; server ignored", dup, gp.number, taken[dup]))
			continue
		}
		ctx, ok := t.downstreamTLS(s, secrets, sent)
		if !ok {
			continue
		}
		for _, n := range names {
			taken[n] = s.gw.Source
		}
		chain := httpFilterChain(gp.number)
		chain.TransportSocket = &corev3.TransportSocket{
			Name:       "envoy.transport_sockets.tls",
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: typedConfig(ctx)},
		}
		if len(names) > 0 && names[0] != "*" {
			chain.FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: names}
		}
		chains = append(chains, chain)
	}
	return chains
}

// sniNames are a server's host names without their namespace part; "*" alone means any.
func sniNames(srv *networking.Server) []string {
	var out []string
	for _, h := range srv.Hosts {
		if _, host, ok := model.SplitGatewayHost(h); ok {
			if host == "*" {
				return []string{"*"}
			}
			out = append(out, host)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func takenName(names []string, taken map[string]model.Ref) string {
	for _, n := range names {
		if _, ok := taken[n]; ok {
			return n
		}
	}
	return ""
}

// downstreamTLS is the TLS context of one server: its certificate from SDS (a Secret
// named by credentialName, looked up in the proxy's namespace as Istio does) or from the
// files it names, and, for MUTUAL and OPTIONAL_MUTUAL, how client certificates are
// checked (see clientcert.go).
func (t *translation) downstreamTLS(s boundServer, secrets []*model.Secret, sent map[string]bool) (*tlsv3.DownstreamTlsContext, bool) {
	tls := s.srv.Tls
	common := &tlsv3.CommonTlsContext{AlpnProtocols: []string{"h2", "http/1.1"}, TlsParams: tlsParameters(tls)}
	var sec *model.Secret
	if tls.CredentialName == "" {
		common.TlsCertificates = []*tlsv3.TlsCertificate{{
			CertificateChain: fileSource(tls.ServerCertificate),
			PrivateKey:       fileSource(tls.PrivateKey),
		}}
	} else {
		if sec = findSecret(secrets, t.class.Namespace, tls.CredentialName); sec == nil || sec.Cert == nil {
			what := "not found"
			if sec != nil {
				what = "has no certificate (tls.crt and tls.key)"
			}
			t.diags.add(model.Errorf(s.gw.Source, s.path+".tls.credentialName",
				"Secret %s/%s %s; it must be in the gateway proxy's namespace; server ignored",
				t.class.Namespace, tls.CredentialName, what))
			return nil, false
		}
		name := secretName(tls.CredentialName)
		t.sendSecret(name, sec, sent, tlsSecret)
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{{Name: name, SdsConfig: adsConfigSource()}}
	}
	ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: common}
	if tls.Mode == networking.ServerTLSSettings_SIMPLE {
		t.diags.add(clientCheckFieldsUnused(s)...)
		return ctx, true
	}
	return ctx, t.requireClientCertificates(s, ctx, sec, secrets, sent)
}

// sendSecret adds a secret to the output once, built by make.
func (t *translation) sendSecret(name string, sec *model.Secret, sent map[string]bool, make func(string, *model.Secret) *tlsv3.Secret) {
	if sent[name] {
		return
	}
	sent[name] = true
	t.out.Secrets = append(t.out.Secrets, make(name, sec))
	t.origin(name, sec.Source)
}

func findSecret(secrets []*model.Secret, namespace, name string) *model.Secret {
	for _, s := range secrets {
		if s.Source.Namespace == namespace && s.Source.Name == name {
			return s
		}
	}
	return nil
}

// secretName is the SDS name of a credential, spelled as Istio spells it.
func secretName(credential string) string { return "kubernetes://" + credential }

func tlsSecret(name string, s *model.Secret) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: inlineBytes(s.Cert),
		PrivateKey:       inlineBytes(s.Key),
	}}}
}

// tlsParameters carries a server's protocol versions and cipher suites; nil keeps Envoy's
// defaults. Istio's and Envoy's protocol enums number the versions alike.
func tlsParameters(tls *networking.ServerTLSSettings) *tlsv3.TlsParameters {
	if tls.MinProtocolVersion == 0 && tls.MaxProtocolVersion == 0 && len(tls.CipherSuites) == 0 {
		return nil
	}
	return &tlsv3.TlsParameters{
		TlsMinimumProtocolVersion: tlsv3.TlsParameters_TlsProtocol(tls.MinProtocolVersion),
		TlsMaximumProtocolVersion: tlsv3.TlsParameters_TlsProtocol(tls.MaxProtocolVersion),
		CipherSuites:              slices.Clone(tls.CipherSuites),
	}
}

func inlineBytes(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
}
