package xds

import (
	"context"
	"net"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap/zaptest"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// fixture: one listener → route config "outbound" → weighted clusters a and b.
func testResources(weightA, weightB uint32) *Resources {
	cluster := func(name string) types.Resource {
		return &clusterv3.Cluster{
			Name:                 name,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
			EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{
				ResourceApiVersion:    corev3.ApiVersion_V3,
				ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
			}},
		}
	}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: "outbound_http",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: "outbound",
			ConfigSource: &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3,
				ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}},
		}},
	}
	hcmAny, _ := anypb.New(hcm)
	var weighted []*routev3.WeightedCluster_ClusterWeight
	res := &Resources{Origins: map[string][]string{"reviews": {"VirtualService default/reviews (vs.yaml)"}}}
	for _, cw := range []struct { // a fixed order: equal inputs must give equal bytes
		name string
		w    uint32
	}{{"a", weightA}, {"b", weightB}} {
		name, w := cw.name, cw.w
		res.Clusters = append(res.Clusters, cluster(name))
		res.Endpoints = append(res.Endpoints, &endpointv3.ClusterLoadAssignment{ClusterName: name})
		if w > 0 {
			weighted = append(weighted, &routev3.WeightedCluster_ClusterWeight{Name: name, Weight: wrap(w)})
		}
	}
	res.Listeners = []types.Resource{&listenerv3.Listener{
		Name: "outbound_http",
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcmAny}}}}},
	}}
	res.Routes = []types.Resource{&routev3.RouteConfiguration{Name: "outbound", VirtualHosts: []*routev3.VirtualHost{{
		Name: "reviews", Domains: []string{"reviews"},
		Routes: []*routev3.Route{{
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{
				WeightedClusters: &routev3.WeightedCluster{Clusters: weighted}}}},
		}},
	}}}}
	return res
}

func testNode(id string) *corev3.Node {
	md, _ := structpb.NewStruct(map[string]any{"role": "sidecar", "namespace": "default", "labels": map[string]any{"app": "productpage"}})
	return &corev3.Node{Id: id, Cluster: "productpage", Metadata: md}
}

func startServer(t *testing.T) (*Server, *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := New(ctx, zaptest.NewLogger(t), nil, Options{StageTimeout: 2 * time.Second})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(lis); close(done) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); cancel(); <-done })
	return srv, conn
}

// sotwClient is a minimal Envoy-like ADS client.
type sotwClient struct {
	t      *testing.T
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node   *corev3.Node
	first  bool
	in     chan *discoveryv3.DiscoveryResponse
}

func newSotwClient(t *testing.T, conn *grpc.ClientConn, node *corev3.Node) *sotwClient {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &sotwClient{t: t, stream: s, node: node, first: true, in: make(chan *discoveryv3.DiscoveryResponse, 16)}
	go func() { // one reader, so a timed-out wait never loses a response
		defer close(c.in)
		for {
			r, err := s.Recv()
			if err != nil {
				return
			}
			c.in <- r
		}
	}()
	return c
}

func (c *sotwClient) send(req *discoveryv3.DiscoveryRequest) {
	c.t.Helper()
	if c.first {
		req.Node, c.first = c.node, false
	}
	if err := c.stream.Send(req); err != nil {
		c.t.Fatal(err)
	}
}

// recv waits for the next response, failing after d.
func (c *sotwClient) recv(d time.Duration) *discoveryv3.DiscoveryResponse {
	c.t.Helper()
	resp, err := c.recvOrTimeout(d)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}

func (c *sotwClient) recvOrTimeout(d time.Duration) (*discoveryv3.DiscoveryResponse, error) {
	select {
	case r, ok := <-c.in:
		if !ok {
			return nil, context.Canceled
		}
		return r, nil
	case <-time.After(d):
		return nil, context.DeadlineExceeded
	}
}

func ack(resp *discoveryv3.DiscoveryResponse, names ...string) *discoveryv3.DiscoveryRequest {
	return &discoveryv3.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce(), ResourceNames: names}
}

func TestSotwServesPublishedConfigAndTracksAcks(t *testing.T) {
	srv, conn := startServer(t)
	c := newSotwClient(t, conn, testNode("sidecar-1"))
	class := ClassOf(testNode("x")).Key()
	if err := srv.Publish(class, testResources(90, 10)); err != nil {
		t.Fatal(err)
	}

	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType})
	cds := c.recv(5 * time.Second)
	if got := len(cds.GetResources()); got != 2 {
		t.Fatalf("CDS resources = %d, want 2", got)
	}
	c.send(ack(cds))
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: []string{"outbound"}})
	rds := c.recv(5 * time.Second)
	c.send(ack(rds, "outbound"))

	waitFor(t, func() bool {
		ps := srv.Proxies()
		return len(ps) == 1 && ps[0].Types["cds"].AckedVersion == cds.GetVersionInfo() && ps[0].Types["rds"].AckedVersion == rds.GetVersionInfo()
	})

	// A weight change moves RDS only: CDS keeps its version, so no CDS push.
	if err := srv.Publish(class, testResources(50, 50)); err != nil {
		t.Fatal(err)
	}
	rds2 := c.recv(5 * time.Second)
	if rds2.GetTypeUrl() != resourcev3.RouteType || rds2.GetVersionInfo() == rds.GetVersionInfo() {
		t.Fatalf("after weight change got %s version %s, want a new RDS version", rds2.GetTypeUrl(), rds2.GetVersionInfo())
	}
}

func TestSotwNackIsAttributedAndNotResent(t *testing.T) {
	srv, conn := startServer(t)
	c := newSotwClient(t, conn, testNode("sidecar-1"))
	class := ClassOf(testNode("x")).Key()
	if err := srv.Publish(class, testResources(90, 10)); err != nil {
		t.Fatal(err)
	}
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: []string{"outbound"}})
	rds := c.recv(5 * time.Second)
	c.send(ack(rds, "outbound"))
	waitFor(t, func() bool { return srv.Proxies()[0].Types["rds"].AckedVersion == rds.GetVersionInfo() })

	if err := srv.Publish(class, testResources(50, 50)); err != nil {
		t.Fatal(err)
	}
	bad := c.recv(5 * time.Second)
	// NACK: the previous accepted version plus an error, as Envoy sends it.
	c.send(&discoveryv3.DiscoveryRequest{
		TypeUrl: resourcev3.RouteType, VersionInfo: rds.GetVersionInfo(), ResponseNonce: bad.GetNonce(),
		ResourceNames: []string{"outbound"}, ErrorDetail: &rpcstatus.Status{Code: 3, Message: "regex too big"},
	})
	if resp, err := c.recvOrTimeout(1500 * time.Millisecond); err == nil {
		t.Fatalf("rejected config was resent: %s version %s", resp.GetTypeUrl(), resp.GetVersionInfo())
	}
	ps := srv.Proxies()
	nack := ps[0].Types["rds"].LastNack
	if nack == nil || nack.Version != bad.GetVersionInfo() || ps[0].Types["rds"].Nacks != 1 {
		t.Fatalf("NACK not recorded: %+v", ps[0].Types["rds"])
	}
	if len(nack.Sources) != 1 || nack.Sources[0] != "VirtualService default/reviews (vs.yaml)" {
		t.Fatalf("NACK sources = %v, want the VirtualService", nack.Sources)
	}

	// A new config is sent again.
	if err := srv.Publish(class, testResources(10, 90)); err != nil {
		t.Fatal(err)
	}
	next := c.recv(5 * time.Second)
	if next.GetVersionInfo() == bad.GetVersionInfo() {
		t.Fatalf("got the rejected version again")
	}
}

func TestDeltaServesAndAcks(t *testing.T) {
	srv, conn := startServer(t)
	class := ClassOf(testNode("x")).Key()
	if err := srv.Publish(class, testResources(90, 10)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: testNode("delta-1"), TypeUrl: resourcev3.ClusterType}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResources()) != 2 {
		t.Fatalf("delta CDS resources = %d, want 2", len(resp.GetResources()))
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: resp.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		ps := srv.Proxies()
		return len(ps) == 1 && ps[0].Delta && ps[0].Types["cds"].AckedVersion == resp.GetSystemVersionInfo()
	})
}

func TestPublishRefusesInconsistentConfig(t *testing.T) {
	srv, _ := startServer(t)
	res := testResources(90, 10)
	res.Endpoints = res.Endpoints[:1] // an EDS cluster without its endpoints resource
	if err := srv.Publish("c", res); err == nil {
		t.Fatal("inconsistent config was accepted")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wrap(v uint32) *wrapperspb.UInt32Value { return wrapperspb.UInt32(v) }

// Regression guard: go-control-plane numbers SotW and delta streams independently, so a
// delta stream and a SotW stream can both be "stream 1"; each must be its own proxy.
func TestSotwAndDeltaStreamsAreDistinctProxies(t *testing.T) {
	srv, conn := startServer(t)
	sotwNode, deltaNode := testNode("sotw-1"), testNode("delta-1")
	deltaNode.Metadata.Fields["outbound_port"] = structpb.NewNumberValue(15002) // another class
	deltaClass := ClassOf(deltaNode).Key()

	c := newSotwClient(t, conn, sotwNode)
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType})
	waitFor(t, func() bool { return len(srv.Proxies()) == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: deltaNode, TypeUrl: resourcev3.ClusterType}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(srv.Proxies()) == 2 })
	if err := srv.Publish(deltaClass, testResources(90, 10)); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil || len(resp.GetResources()) != 2 {
		t.Fatalf("delta stream got %v, %v; want its class's 2 clusters", resp, err)
	}
	waitFor(t, func() bool { return len(srv.Proxies()) == 2 })
	ps := srv.Proxies()
	if ps[0].NodeID != "delta-1" || !ps[0].Delta || ps[1].NodeID != "sotw-1" || ps[1].Delta {
		t.Fatalf("proxies = %+v, want delta-1 (delta) and sotw-1 (sotw)", ps)
	}
}

// A class whose last proxy left is forgotten after the grace period: its snapshot is
// dropped (a returning proxy must not get stale config) and the owner is told.
func TestClassIsForgottenAfterItsLastProxyLeaves(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := New(ctx, zaptest.NewLogger(t), nil, Options{ClassGrace: 100 * time.Millisecond})
	gone := make(chan string, 1)
	srv.OnClassGone(func(key string) { gone <- key })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	class := ClassOf(testNode("x")).Key()
	if err := srv.Publish(class, testResources(90, 10)); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: testNode("sidecar-1"), TypeUrl: resourcev3.ClusterType}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	scancel()

	select {
	case key := <-gone:
		if key != class {
			t.Fatalf("forgot %q, want %q", key, class)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("class not forgotten after its last proxy left")
	}
	if srv.cache.has(class) {
		t.Fatal("forgotten class still has a snapshot")
	}
}
