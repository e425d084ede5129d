package xds

import (
	"context"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A stream whose first request names no node cannot be served: it is refused, not guessed.
func TestSotwStreamWithoutNodeIsRefused(t *testing.T) {
	_, conn := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
}

// A request that answers an older response (its nonce is not the latest) is ignored, as
// the xDS protocol says: the proxy is about to receive the newer one.
func TestSotwStaleNonceIsIgnored(t *testing.T) {
	srv, conn := startServer(t)
	c := newSotwClient(t, conn, testNode("sidecar-1"))
	class := ClassOf(testNode("x")).Key()
	if err := srv.Publish(class, testResources(90, 10)); err != nil {
		t.Fatal(err)
	}
	c.send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: []string{"outbound"}})
	first := c.recv(5 * time.Second)
	if err := srv.Publish(class, testResources(50, 50)); err != nil {
		t.Fatal(err)
	}
	// The proxy has not ACKed the first response yet, so the class's stages wait; ACK it
	// and the second response follows.
	c.send(ack(first, "outbound"))
	second := c.recv(5 * time.Second)
	if second.GetVersionInfo() == first.GetVersionInfo() {
		t.Fatal("no new version after the change")
	}
	// Now an ACK of the first response arrives late, with its old nonce and version: it
	// must not open a watch at the old version (which would resend the new config).
	c.send(ack(first, "outbound"))
	if r, err := c.recvOrTimeout(300 * time.Millisecond); err == nil {
		t.Fatalf("a stale request was answered with version %s", r.GetVersionInfo())
	}
}
