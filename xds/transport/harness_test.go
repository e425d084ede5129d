package transport

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // registers the compressor the client offers in TestRefusedRequests
	"google.golang.org/grpc/status"
)

// These tests drive the transport with grpc-go's own client over loopback TCP, through the
// Envoy ADS service: its SotW method natively (HandleStream) and, registered with
// RegisterAggregatedDiscoveryServiceServer, both methods as blocking handlers.
//
// This file holds the servers, clients and waits they share; recorder_test.go the native
// receivers and the messages.

const (
	sotwMethod  = discoveryv3.AggregatedDiscoveryService_StreamAggregatedResources_FullMethodName
	clusterType = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	// wait bounds every wait of these tests.
	wait = 5 * time.Second
)

// testServer is a Server serving a loopback listener.
type testServer struct {
	*Server
	addr     string
	served   chan error // Serve's result
	stopOnce sync.Once
}

// startServer starts a server configured by setup; the test's cleanup stops it and checks
// that Stop and Serve return.
func startServer(t *testing.T, setup func(*Server)) *testServer {
	t.Helper()
	return serveOn(t, Options{}, setup, nil)
}

// serveOn is startServer with options, and the listener wrapped by wrap (when not nil).
func serveOn(t *testing.T, opts Options, setup func(*Server), wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	srv := NewServer(zaptest.NewLogger(t), opts)
	if setup != nil {
		setup(srv)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ts := &testServer{Server: srv, addr: lis.Addr().String(), served: make(chan error, 1)}
	if wrap != nil {
		lis = wrap(lis)
	}
	go func() { ts.served <- srv.Serve(lis) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop stops the server once, failing the test if Stop or Serve does not return in time
// or Serve returns an error.
func (ts *testServer) stop(t *testing.T) {
	t.Helper()
	ts.stopOnce.Do(func() {
		waitCheck(t, async(func() error { ts.Stop(); return nil }), wait, "Server.Stop did not return")
		if err, ok := waitCheck(t, ts.served, wait, "Serve did not return after Stop"); ok && err != nil {
			t.Errorf("Serve returned %v after Stop, want nil", err)
		}
	})
}

// dial connects grpc-go's client to addr; the test's cleanup closes it.
func dial(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)),
	}, opts...)
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatalf("grpc.NewClient(%s): %v", addr, err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// fixedWindows turns off grpc-go's BDP estimation: the client's windows stay at 64 KiB
// and it sends no BDP pings.
var fixedWindows = []grpc.DialOption{grpc.WithInitialWindowSize(defaultWindow), grpc.WithInitialConnWindowSize(defaultWindow)}

func adsClient(cc *grpc.ClientConn) discoveryv3.AggregatedDiscoveryServiceClient {
	return discoveryv3.NewAggregatedDiscoveryServiceClient(cc)
}

// sotwClient is the client's side of an SotW stream.
type sotwClient = discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient

// openSotw opens an SotW stream on cc, failing the test if it cannot.
func openSotw(t *testing.T, ctx context.Context, cc *grpc.ClientConn, opts ...grpc.CallOption) sotwClient {
	t.Helper()
	stream, err := adsClient(cc).StreamAggregatedResources(ctx, opts...)
	if err != nil {
		t.Fatalf("StreamAggregatedResources: %v", err)
	}
	return stream
}

// testContext is a context that ends with the test, and at the latest after d.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// receive returns the next value from ch (the zero value if ch is closed), or ok false if
// none comes within d. A value already there is taken even when d has run out; with d <= 0
// receive only takes a value already there.
func receive[T any](ch <-chan T, d time.Duration) (v T, ok bool) {
	select {
	case v = <-ch:
		return v, true
	default:
	}
	if d <= 0 {
		return v, false
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v = <-ch:
		return v, true
	case <-timer.C:
		return v, false
	}
}

// waitFor returns the next value from ch; if none comes within d, it fails the test at
// once, saying what did not happen.
func waitFor[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	v, ok := receive(ch, d)
	if !ok {
		t.Fatalf("%s (waited %v)", what, d)
	}
	return v
}

// waitCheck is waitFor for a check the test goes on after: if no value comes within d, it
// reports what did not happen with t.Errorf, and ok is false.
func waitCheck[T any](t *testing.T, ch <-chan T, d time.Duration, what string) (v T, ok bool) {
	t.Helper()
	v, ok = receive(ch, d)
	if !ok {
		t.Errorf("%s (waited %v)", what, d)
	}
	return v, ok
}

// async runs f on a goroutine of its own; the channel it returns gets f's result.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

// recvTimeout runs recv, failing the test if it takes longer than wait (recv is then left
// to the test's cleanup, which ends its stream).
func recvTimeout[T any](t *testing.T, recv func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := recv()
		ch <- result{v, err}
	}()
	r, ok := receive(ch, wait)
	if !ok {
		return r.v, fmt.Errorf("no result within %v", wait)
	}
	return r.v, r.err
}

func wantCode(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	s, ok := status.FromError(err)
	if !ok || s.Code() != code || (msg != "" && s.Message() != msg) {
		t.Errorf("%s: got error %v, want status %v %q", what, err, code, msg)
	}
}

// ads is a registered (blocking) ADS implementation.
type ads struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	sotw  func(discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error
	delta func(discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error
}

func (a *ads) StreamAggregatedResources(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	if a.sotw == nil {
		return status.Error(codes.Unimplemented, "no sotw handler")
	}
	return a.sotw(s)
}

func (a *ads) DeltaAggregatedResources(s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	if a.delta == nil {
		return status.Error(codes.Unimplemented, "no delta handler")
	}
	return a.delta(s)
}

func (a *ads) register(s *Server) { discoveryv3.RegisterAggregatedDiscoveryServiceServer(s, a) }

// serveADS starts a server with impl registered, and dials it.
func serveADS(t *testing.T, impl *ads) *grpc.ClientConn {
	t.Helper()
	return dial(t, startServer(t, impl.register).addr)
}

// echoADS is an ADS whose SotW handler passes each request to got and sends answer's
// response to it, until the client half-closes (it then returns nil) or Recv fails.
func echoADS(got chan<- *discoveryv3.DiscoveryRequest, answer func(*discoveryv3.DiscoveryRequest) *discoveryv3.DiscoveryResponse) *ads {
	return &ads{sotw: func(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
		for {
			req, err := s.Recv()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			got <- req
			if err := s.Send(answer(req)); err != nil {
				return err
			}
		}
	}}
}

// gate holds the writes of the server's connections while closed.
type gate struct {
	mu      sync.Mutex
	cond    sync.Cond
	closed  bool
	waiting int
}

func newGate() *gate { g := &gate{}; g.cond.L = &g.mu; return g }

func (g *gate) set(closed bool) {
	g.mu.Lock()
	g.closed = closed
	g.cond.Broadcast()
	g.mu.Unlock()
}

func (g *gate) pass() {
	g.mu.Lock()
	for g.closed {
		g.waiting++
		g.cond.Wait()
		g.waiting--
	}
	g.mu.Unlock()
}

func (g *gate) blocked() int { g.mu.Lock(); defer g.mu.Unlock(); return g.waiting }

// gatedListener is a listener whose connections' writes pass its gate.
type gatedListener struct {
	net.Listener
	g *gate
}

func (l gatedListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return gatedConn{nc, l.g}, nil
}

type gatedConn struct {
	net.Conn
	g *gate
}

func (c gatedConn) Write(b []byte) (int, error) { c.g.pass(); return c.Conn.Write(b) }
