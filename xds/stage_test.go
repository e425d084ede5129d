package xds

import (
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// renamed returns the fixture with cluster "a" renamed to name, everywhere.
func renamed(name string) *Resources {
	res := testResources(50, 50)
	res.Endpoints = nil
	for _, c := range res.Clusters {
		cl := c.(*clusterv3.Cluster)
		if cl.Name == "a" {
			cl.Name = name
		}
		res.Endpoints = append(res.Endpoints, &endpointv3.ClusterLoadAssignment{ClusterName: cl.Name})
	}
	for _, wc := range res.Routes[0].(*routev3.RouteConfiguration).VirtualHosts[0].Routes[0].GetRoute().GetWeightedClusters().Clusters {
		if wc.Name == "a" {
			wc.Name = name
		}
	}
	return res
}

// Regression guard for Istio's 503 NC: a route must never reach a proxy before the
// clusters it names, and a cluster a route stops using must stay until the route is ACKed.
func TestMakeBeforeBreakOrdersStages(t *testing.T) {
	srv, conn := startServer(t)
	c := newSotwClient(t, conn, testNode("sidecar-1"))
	class := ClassOf(testNode("x")).Key()
	if err := srv.Publish(class, testResources(50, 50)); err != nil {
		t.Fatal(err)
	}

	known := map[string]bool{} // clusters the client holds (ACKed CDS)
	var edsNames []string
	handle := func(resp *discoveryv3.DiscoveryResponse) {
		t.Helper()
		switch resp.GetTypeUrl() {
		case resourcev3.ClusterType:
			clear(known)
			edsNames = nil
			for _, a := range resp.GetResources() {
				cl := &clusterv3.Cluster{}
				if err := a.UnmarshalTo(cl); err != nil {
					t.Fatal(err)
				}
				known[cl.Name] = true
				edsNames = append(edsNames, cl.Name)
			}
			c.send(ack(resp))
			c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNames: edsNames})
		case resourcev3.RouteType:
			for _, a := range resp.GetResources() {
				rc := &routev3.RouteConfiguration{}
				if err := a.UnmarshalTo(rc); err != nil {
					t.Fatal(err)
				}
				for _, wc := range rc.VirtualHosts[0].Routes[0].GetRoute().GetWeightedClusters().GetClusters() {
					if !known[wc.Name] {
						t.Fatalf("route names cluster %q before the proxy has it (has %v)", wc.Name, known)
					}
				}
			}
			c.send(ack(resp, "outbound"))
		default:
			c.send(ack(resp, edsNames...))
		}
	}
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType})
	handle(c.recv(5 * time.Second))
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: []string{"outbound"}})
	for i := 0; i < 2; i++ { // EDS and RDS
		handle(c.recv(5 * time.Second))
	}

	if err := srv.Publish(class, renamed("c")); err != nil {
		t.Fatal(err)
	}
	// Expect: CDS {a,b,c}, EDS, RDS {c,b}, then CDS {b,c}.
	var sawUnion, sawFinal bool
	for !sawFinal {
		resp := c.recv(5 * time.Second)
		handle(resp)
		if resp.GetTypeUrl() == resourcev3.ClusterType {
			switch len(known) {
			case 3:
				sawUnion = true
			case 2:
				if !known["c"] || known["a"] {
					t.Fatalf("final clusters = %v, want b and c", known)
				}
				sawFinal = true
			}
		}
	}
	if !sawUnion {
		t.Fatal("old and new clusters were never served together")
	}
}

// An endpoint change must reach proxies as an EDS push only: clusters, listeners and
// routes keep their versions and are not resent.
func TestEndpointChangeIsEDSOnly(t *testing.T) {
	srv, conn := startServer(t)
	c := newSotwClient(t, conn, testNode("sidecar-1"))
	class := ClassOf(testNode("x")).Key()
	if err := srv.Publish(class, testResources(50, 50)); err != nil {
		t.Fatal(err)
	}
	subscribe := []struct {
		typeURL string
		names   []string
	}{
		{resourcev3.ClusterType, nil},
		{resourcev3.EndpointType, []string{"a", "b"}},
		{resourcev3.ListenerType, nil},
		{resourcev3.RouteType, []string{"outbound"}},
	}
	for _, s := range subscribe {
		c.send(&discoveryv3.DiscoveryRequest{TypeUrl: s.typeURL, ResourceNames: s.names})
		resp := c.recv(5 * time.Second)
		c.send(ack(resp, s.names...))
	}

	res := testResources(50, 50)
	for _, e := range res.Endpoints {
		cla := e.(*endpointv3.ClusterLoadAssignment)
		if cla.ClusterName == "a" {
			cla.Endpoints = []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: &corev3.Address{
					Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
						Address: "127.0.0.11", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 9080}}}}}},
			}}}}
		}
	}
	if err := srv.Publish(class, res); err != nil {
		t.Fatal(err)
	}
	resp := c.recv(5 * time.Second)
	if resp.GetTypeUrl() != resourcev3.EndpointType {
		t.Fatalf("endpoint change sent %s, want EDS only", resp.GetTypeUrl())
	}
	c.send(ack(resp, "a", "b"))
	if extra, err := c.recvOrTimeout(700 * time.Millisecond); err == nil {
		t.Fatalf("endpoint change also sent %s", extra.GetTypeUrl())
	}
}

// Regression guard: Envoy keeps serving a modified EDS cluster's old version until the new
// one receives its endpoints, so a cluster change must resend that cluster's (unchanged)
// ClusterLoadAssignment, and only that one, or the change never takes effect.
func TestClusterChangeResendsItsEndpoints(t *testing.T) {
	srv, conn := startServer(t)
	c := newSotwClient(t, conn, testNode("sidecar-1"))
	class := ClassOf(testNode("x")).Key()
	if err := srv.Publish(class, testResources(50, 50)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		typeURL string
		names   []string
	}{
		{resourcev3.ClusterType, nil},
		{resourcev3.EndpointType, []string{"a", "b"}},
		{resourcev3.ListenerType, nil},
		{resourcev3.RouteType, []string{"outbound"}},
	} {
		c.send(&discoveryv3.DiscoveryRequest{TypeUrl: s.typeURL, ResourceNames: s.names})
		c.send(ack(c.recv(5*time.Second), s.names...))
	}

	res := testResources(50, 50)
	for _, r := range res.Clusters {
		if cl := r.(*clusterv3.Cluster); cl.Name == "a" {
			cl.LbPolicy = clusterv3.Cluster_RANDOM
		}
	}
	if err := srv.Publish(class, res); err != nil {
		t.Fatal(err)
	}
	var eds []string
	for eds == nil {
		resp := c.recv(5 * time.Second)
		switch resp.GetTypeUrl() {
		case resourcev3.ClusterType:
			c.send(ack(resp))
		case resourcev3.EndpointType:
			for _, a := range resp.GetResources() {
				cla := &endpointv3.ClusterLoadAssignment{}
				if err := a.UnmarshalTo(cla); err != nil {
					t.Fatal(err)
				}
				eds = append(eds, cla.ClusterName)
			}
			c.send(ack(resp, "a", "b"))
		default:
			t.Fatalf("a cluster change sent %s", resp.GetTypeUrl())
		}
	}
	if len(eds) != 1 || eds[0] != "a" {
		t.Fatalf("EDS after changing cluster a resent %v, want [a]", eds)
	}
}
