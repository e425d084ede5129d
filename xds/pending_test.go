package xds

import (
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
)

func TestPendingUntilTheNewRouteIsACKed(t *testing.T) {
	srv, conn := startServer(t)
	c := newSotwClient(t, conn, testNode("sidecar-1"))
	class := ClassOf(testNode("x")).Key()
	if err := srv.Publish(class, testResources(90, 10)); err != nil {
		t.Fatal(err)
	}
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: []string{"outbound"}})
	rds := c.recv(5 * time.Second)
	if got := srv.Pending(resourcev3.RouteType, "outbound"); !cmp.Equal(got, []string{"sidecar-1"}) {
		t.Errorf("before the ACK: pending %v, want [sidecar-1]", got)
	}
	c.send(ack(rds, "outbound"))
	waitFor(t, func() bool { return len(srv.Pending(resourcev3.RouteType, "outbound")) == 0 })
	if got := srv.Pending(resourcev3.RouteType, "no-such-route"); len(got) != 0 {
		t.Errorf("a resource no class has: pending %v, want none", got)
	}

	if err := srv.Publish(class, testResources(50, 50)); err != nil {
		t.Fatal(err)
	}
	bad := c.recv(5 * time.Second)
	if got := srv.Pending(resourcev3.RouteType, "outbound"); !cmp.Equal(got, []string{"sidecar-1"}) {
		t.Errorf("new weights sent, not ACKed: pending %v, want [sidecar-1]", got)
	}
	// A NACK keeps the proxy on the old weights: still pending.
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.RouteType, VersionInfo: rds.GetVersionInfo(),
		ResponseNonce: bad.GetNonce(), ResourceNames: []string{"outbound"}, ErrorDetail: &rpcstatus.Status{Code: 3, Message: "rejected"}})
	time.Sleep(100 * time.Millisecond)
	if got := srv.Pending(resourcev3.RouteType, "outbound"); !cmp.Equal(got, []string{"sidecar-1"}) {
		t.Errorf("after a NACK: pending %v, want [sidecar-1]", got)
	}
}
