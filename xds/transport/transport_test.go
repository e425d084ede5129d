package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap/zaptest"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // registers the compressor the client offers in TestRefusedRequests
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// These tests drive the transport with grpc-go's own client over loopback TCP, through the
// Envoy ADS service: its SotW method natively (HandleStream) and, registered with
// RegisterAggregatedDiscoveryServiceServer, both methods as blocking handlers.

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
		stopped := make(chan struct{})
		go func() { ts.Stop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(wait):
			t.Errorf("Server.Stop did not return within %v", wait)
		}
		select {
		case err := <-ts.served:
			if err != nil {
				t.Errorf("Serve returned %v after Stop, want nil", err)
			}
		case <-time.After(wait):
			t.Errorf("Serve did not return within %v of Stop", wait)
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

// testContext is a context that ends with the test, and at the latest after d.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// recorder is a native stream's Receiver: it queues every message, and counts Close calls
// and messages delivered after Close.
type recorder struct {
	st     *Stream
	msgs   chan []byte
	onMsg  func(r *recorder, n int, b []byte) error // on the reader goroutine; n counts from 0
	count  int                                      // messages so far (reader goroutine)
	closes atomic.Int32
	late   atomic.Int32 // messages after Close
	closed chan struct{}
}

func (r *recorder) Message(b []byte) error {
	if r.closes.Load() > 0 {
		r.late.Add(1)
	}
	n := r.count
	r.count++
	if r.onMsg != nil {
		if err := r.onMsg(r, n, b); err != nil {
			return err
		}
	}
	select {
	case r.msgs <- bytes.Clone(b):
		return nil
	default: // Message must not block
		return status.Error(codes.ResourceExhausted, "test recorder full")
	}
}

func (r *recorder) Close() {
	if r.closes.Add(1) == 1 {
		close(r.closed)
	}
}

// waitClosed waits for the receiver's Close.
func (r *recorder) waitClosed(t *testing.T, why string) bool {
	t.Helper()
	return r.waitClosedBy(t, why, time.Now().Add(wait))
}

// waitClosedBy waits for the receiver's Close until deadline.
func (r *recorder) waitClosedBy(t *testing.T, why string, deadline time.Time) bool {
	t.Helper()
	select {
	case <-r.closed:
		return true
	case <-time.After(time.Until(deadline)):
		t.Errorf("%s: Receiver.Close was not called within %v", why, wait)
		return false
	}
}

// next returns the next message the receiver got, decoded.
func (r *recorder) next(t *testing.T) *discoveryv3.DiscoveryRequest {
	t.Helper()
	select {
	case b := <-r.msgs:
		req := &discoveryv3.DiscoveryRequest{}
		if err := proto.Unmarshal(b, req); err != nil {
			t.Fatalf("Receiver got a message that is not a DiscoveryRequest: %v", err)
		}
		return req
	case <-time.After(wait):
		t.Fatalf("Receiver got no message within %v", wait)
		return nil
	}
}

// natives serves sotwMethod natively with recorders, and checks when the test ends (after
// the server has stopped) that every receiver was closed exactly once and got no message
// after Close.
type natives struct {
	opened chan *recorder
	onMsg  func(r *recorder, n int, b []byte) error
	onOpen func(st *Stream) error // refuses the stream when it returns an error

	mu  sync.Mutex
	all []*recorder
}

// newNatives must be called before the server starts: its check runs after the server's
// cleanup has stopped it.
func newNatives(t *testing.T) *natives {
	n := &natives{opened: make(chan *recorder, 256)}
	t.Cleanup(func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		for i, r := range n.all {
			if c := r.closes.Load(); c != 1 {
				t.Errorf("native stream %d: Receiver.Close called %d times after Stop, want exactly once", i, c)
			}
			if l := r.late.Load(); l != 0 {
				t.Errorf("native stream %d: %d messages delivered after Receiver.Close", i, l)
			}
		}
	})
	return n
}

func (n *natives) open(st *Stream) (Receiver, error) {
	if n.onOpen != nil {
		if err := n.onOpen(st); err != nil {
			return nil, err
		}
	}
	r := &recorder{st: st, msgs: make(chan []byte, 1024), onMsg: n.onMsg, closed: make(chan struct{})}
	n.mu.Lock()
	n.all = append(n.all, r)
	n.mu.Unlock()
	select {
	case n.opened <- r:
	default:
	}
	return r, nil
}

func (n *natives) register(s *Server) { s.HandleStream(sotwMethod, n.open) }

// next waits for the next native stream to open.
func (n *natives) next(t *testing.T) *recorder {
	t.Helper()
	select {
	case r := <-n.opened:
		return r
	case <-time.After(wait):
		t.Fatalf("no native stream opened within %v", wait)
		return nil
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

// marshal encodes m; it can be called from any goroutine (the messages here always encode).
func marshal(m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", m, err))
	}
	return b
}

// split cuts b into n parts of uneven sizes, with an empty part in the middle.
func split(b []byte, n int) [][]byte {
	var parts [][]byte
	for i := n; i > 1; i-- {
		k := len(b) / i
		if i%2 == 0 {
			k = k/2 + 1
		}
		k = min(k, len(b))
		parts = append(parts, b[:k])
		b = b[k:]
		if i == n/2+1 {
			parts = append(parts, nil)
		}
	}
	return append(parts, b)
}

func request(i int) *discoveryv3.DiscoveryRequest {
	if i == 0 {
		return &discoveryv3.DiscoveryRequest{} // encodes to a message of 0 bytes
	}
	return &discoveryv3.DiscoveryRequest{
		VersionInfo:   strconv.Itoa(i),
		Node:          &corev3.Node{Id: fmt.Sprintf("node-%d", i), Cluster: "c"},
		ResourceNames: []string{fmt.Sprintf("r-%d", i), "shared"},
		TypeUrl:       clusterType,
		ResponseNonce: strconv.Itoa(i - 1),
	}
}

// bigResponse is a DiscoveryResponse of about size bytes, its bulk one Any resource.
func bigResponse(size int, seed uint64) *discoveryv3.DiscoveryResponse {
	rng := rand.New(rand.NewPCG(seed, seed))
	v := make([]byte, size)
	for i := range v {
		v[i] = byte(rng.Uint32())
	}
	return &discoveryv3.DiscoveryResponse{
		VersionInfo: strconv.Itoa(size),
		TypeUrl:     clusterType,
		Nonce:       strconv.FormatUint(seed, 10),
		Resources:   []*anypb.Any{{TypeUrl: clusterType, Value: v}},
	}
}

func wantCode(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	s, ok := status.FromError(err)
	if !ok || s.Code() != code || (msg != "" && s.Message() != msg) {
		t.Errorf("%s: got error %v, want status %v %q", what, err, code, msg)
	}
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
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(wait):
		var zero T
		return zero, fmt.Errorf("no result within %v", wait)
	}
}

// TestNativeStreamInOrder: requests reach a native receiver in order and intact, and
// responses sent from another goroutine reach the client in order; the client's half-close
// ends the stream with OK.
func TestNativeStreamInOrder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n        int
		lockstep bool // wait for each response before the next request
	}{
		{"one empty request", 1, true},
		{"lockstep", 20, true},
		{"pipelined", 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nat := newNatives(t)
			ts := startServer(t, nat.register)
			cc := dial(t, ts.addr)
			ctx := testContext(t, 20*time.Second)
			stream, err := adsClient(cc).StreamAggregatedResources(ctx)
			if err != nil {
				t.Fatalf("StreamAggregatedResources: %v", err)
			}

			got := make(chan *discoveryv3.DiscoveryRequest, tc.n)
			responder := make(chan error, 1)
			go func() { // the sender: not the connection's reader goroutine
				var r *recorder
				select {
				case r = <-nat.opened:
				case <-time.After(wait):
					responder <- fmt.Errorf("no native stream opened within %v", wait)
					return
				}
				for i := range tc.n {
					var b []byte
					select {
					case b = <-r.msgs:
					case <-time.After(wait):
						responder <- fmt.Errorf("request %d did not arrive within %v", i, wait)
						return
					}
					req := &discoveryv3.DiscoveryRequest{}
					if err := proto.Unmarshal(b, req); err != nil {
						responder <- fmt.Errorf("request %d: %v", i, err)
						return
					}
					got <- req
					resp := &discoveryv3.DiscoveryResponse{VersionInfo: req.GetVersionInfo(), TypeUrl: clusterType, Nonce: strconv.Itoa(i)}
					if err := r.st.SendMsg(marshal(resp)); err != nil {
						responder <- fmt.Errorf("SendMsg of response %d: %v", i, err)
						return
					}
				}
				responder <- nil
			}()

			sendErr := make(chan error, 1)
			send := func(i int) error {
				if err := stream.Send(request(i)); err != nil {
					return fmt.Errorf("Send of request %d: %v", i, err)
				}
				return nil
			}
			if !tc.lockstep {
				go func() {
					for i := range tc.n {
						if err := send(i); err != nil {
							sendErr <- err
							return
						}
					}
					sendErr <- nil
				}()
			}
			for i := range tc.n {
				if tc.lockstep {
					if err := send(i); err != nil {
						t.Fatal(err)
					}
				}
				resp, err := recvTimeout(t, stream.Recv)
				if err != nil {
					t.Fatalf("Recv of response %d: %v", i, err)
				}
				if resp.GetNonce() != strconv.Itoa(i) || resp.GetVersionInfo() != request(i).GetVersionInfo() {
					t.Fatalf("response %d: got nonce %q version %q, want nonce %q version %q", i, resp.GetNonce(), resp.GetVersionInfo(), strconv.Itoa(i), request(i).GetVersionInfo())
				}
			}
			if !tc.lockstep {
				if err := <-sendErr; err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-responder:
				if err != nil {
					t.Fatalf("server side: %v", err)
				}
			case <-time.After(wait):
				t.Fatalf("server side did not finish within %v", wait)
			}
			for i := range tc.n {
				if req := <-got; !proto.Equal(req, request(i)) {
					t.Errorf("request %d: receiver got %v, want %v", i, req, request(i))
				}
			}

			// The client's half-close ends a native stream with OK.
			if err := stream.CloseSend(); err != nil {
				t.Fatalf("CloseSend: %v", err)
			}
			if _, err := recvTimeout(t, stream.Recv); err != io.EOF {
				t.Errorf("Recv after CloseSend: got %v, want io.EOF", err)
			}
		})
	}
}

// TestLargeResponses: native responses of several MiB, sent in several parts, reach the
// client byte-exact through the client's flow-control windows, and the stream goes on.
func TestLargeResponses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		parts int
		opts  []grpc.DialOption
	}{
		{"just over a stream window", defaultWindow + 100, 2, nil},
		{"1 MiB, 64 KiB client windows", 1 << 20, 3, fixedWindows},
		{"5 MiB, 64 KiB client windows", 5 << 20, 7, fixedWindows},
		{"1 MiB, grpc-go's default BDP windows", 1 << 20, 3, nil},
		{"5 MiB, grpc-go's default BDP windows", 5 << 20, 7, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nat := newNatives(t)
			ts := startServer(t, nat.register)
			cc := dial(t, ts.addr, tc.opts...)
			ctx := testContext(t, 20*time.Second)
			stream, err := adsClient(cc).StreamAggregatedResources(ctx)
			if err != nil {
				t.Fatalf("StreamAggregatedResources: %v", err)
			}
			if err := stream.Send(request(1)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			r := nat.next(t)
			r.next(t)

			want := []*discoveryv3.DiscoveryResponse{bigResponse(tc.size, 1), {VersionInfo: "small", Nonce: "2"}, bigResponse(tc.size, 3)}
			encoded := make([][]byte, len(want))
			for i, m := range want {
				encoded[i] = marshal(m)
			}
			sent := make(chan error, 1)
			go func() {
				for i, b := range encoded {
					if err := r.st.SendMsg(split(b, tc.parts)...); err != nil {
						sent <- fmt.Errorf("SendMsg of response %d: %v", i, err)
						return
					}
				}
				sent <- nil
			}()
			for i, w := range want {
				got, err := recvTimeout(t, stream.Recv)
				if err != nil {
					t.Fatalf("Recv of response %d (%d bytes): %v", i, proto.Size(w), err)
				}
				if !proto.Equal(got, w) {
					t.Fatalf("response %d: got %d bytes (nonce %q), want %d bytes (nonce %q), not equal", i, proto.Size(got), got.GetNonce(), proto.Size(w), w.GetNonce())
				}
			}
			select {
			case err := <-sent:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(wait):
				t.Fatalf("SendMsg did not return within %v", wait)
			}
		})
	}
}

// TestLargeRequestsBlocking: requests of several MiB on a registered (blocking) stream reach
// its handler intact, past the 64 KiB stream window the server returns as the handler
// reads, and past the handler's queue limit.
func TestLargeRequestsBlocking(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
	}{
		{"3 MiB", 3 << 20},
		{"5 MiB (over the queue limit)", 5 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A large request of ~size bytes: resource names of 64 bytes each.
			big := &discoveryv3.DiscoveryRequest{TypeUrl: clusterType, VersionInfo: "big"}
			for i := range tc.size / 65 { // a tag, a length and 63 bytes
				big.ResourceNames = append(big.ResourceNames, fmt.Sprintf("%063d", i))
			}
			want := []*discoveryv3.DiscoveryRequest{big, request(2), big, request(3)}

			got := make(chan *discoveryv3.DiscoveryRequest, len(want))
			impl := &ads{sotw: func(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
				for {
					req, err := s.Recv()
					if err == io.EOF {
						return nil
					}
					if err != nil {
						return err
					}
					got <- req
					if err := s.Send(&discoveryv3.DiscoveryResponse{VersionInfo: strconv.Itoa(proto.Size(req))}); err != nil {
						return err
					}
				}
			}}
			ts := startServer(t, func(s *Server) { discoveryv3.RegisterAggregatedDiscoveryServiceServer(s, impl) })
			cc := dial(t, ts.addr)
			ctx := testContext(t, 20*time.Second)
			stream, err := adsClient(cc).StreamAggregatedResources(ctx)
			if err != nil {
				t.Fatalf("StreamAggregatedResources: %v", err)
			}
			sendErr := make(chan error, 1)
			go func() {
				for i, m := range want {
					if err := stream.Send(m); err != nil {
						sendErr <- fmt.Errorf("Send of request %d: %v", i, err)
						return
					}
				}
				sendErr <- stream.CloseSend()
			}()
			for i, w := range want {
				resp, err := recvTimeout(t, stream.Recv)
				if err != nil {
					t.Fatalf("Recv of the answer to request %d (%d bytes): %v", i, proto.Size(w), err)
				}
				if resp.GetVersionInfo() != strconv.Itoa(proto.Size(w)) {
					t.Errorf("request %d: handler saw %s bytes, want %d", i, resp.GetVersionInfo(), proto.Size(w))
				}
				if g := <-got; !proto.Equal(g, w) {
					t.Errorf("request %d: handler got %d bytes, not equal to the %d sent", i, proto.Size(g), proto.Size(w))
				}
			}
			if _, err := recvTimeout(t, stream.Recv); err != io.EOF {
				t.Errorf("Recv after the handler returned nil: got %v, want io.EOF", err)
			}
			if err := <-sendErr; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestManyStreamsOneConnection: 50 concurrent native streams on one grpc.ClientConn, their
// responses interleaved on the wire, each get their own responses in order.
func TestManyStreamsOneConnection(t *testing.T) {
	const streams, perStream = 50, 5
	nat := newNatives(t)
	var responders sync.WaitGroup
	t.Cleanup(responders.Wait) // after the server's Stop, which closes every receiver
	ts := startServer(t, nat.register)
	cc := dial(t, ts.addr)
	var clients sync.WaitGroup
	t.Cleanup(clients.Wait) // after ctx is cancelled
	ctx := testContext(t, 20*time.Second)

	// One responder per native stream: each response names the node that asked and carries
	// 20 KiB, so that several streams' DATA frames share the connection window.
	responders.Add(1)
	go func() {
		defer responders.Done()
		for range streams {
			var r *recorder
			select {
			case r = <-nat.opened:
			case <-ctx.Done():
				return
			}
			responders.Add(1)
			go func() {
				defer responders.Done()
				for i := range perStream {
					var b []byte
					select {
					case b = <-r.msgs:
					case <-r.closed:
						return
					}
					req := &discoveryv3.DiscoveryRequest{}
					if err := proto.Unmarshal(b, req); err != nil {
						t.Errorf("request: %v", err)
						return
					}
					resp := bigResponse(20<<10, uint64(i))
					resp.VersionInfo = req.GetNode().GetId() + "/" + req.GetVersionInfo()
					if err := r.st.SendMsg(marshal(resp)); err != nil {
						t.Errorf("SendMsg to %s: %v", req.GetNode().GetId(), err)
						return
					}
				}
			}()
		}
	}()

	for k := range streams {
		clients.Add(1)
		go func() {
			defer clients.Done()
			stream, err := adsClient(cc).StreamAggregatedResources(ctx)
			if err != nil {
				t.Errorf("stream %d: %v", k, err)
				return
			}
			node := fmt.Sprintf("stream-%d", k)
			for i := range perStream {
				if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: node}, VersionInfo: strconv.Itoa(i)}); err != nil {
					t.Errorf("stream %d: Send %d: %v", k, i, err)
					return
				}
				resp, err := stream.Recv()
				if err != nil {
					t.Errorf("stream %d: Recv %d: %v", k, i, err)
					return
				}
				if want := node + "/" + strconv.Itoa(i); resp.GetVersionInfo() != want {
					t.Errorf("stream %d: response %d is %q, want %q", k, i, resp.GetVersionInfo(), want)
				}
				if !proto.Equal(resp.GetResources()[0], bigResponse(20<<10, uint64(i)).GetResources()[0]) {
					t.Errorf("stream %d: response %d's resource is corrupt", k, i)
				}
			}
			if err := stream.CloseSend(); err != nil {
				t.Errorf("stream %d: CloseSend: %v", k, err)
			}
			if _, err := stream.Recv(); err != io.EOF {
				t.Errorf("stream %d: Recv after CloseSend: got %v, want io.EOF", k, err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { clients.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("%d streams did not finish within 15 s", streams)
	}
	nat.mu.Lock()
	n := len(nat.all)
	nat.mu.Unlock()
	if n != streams {
		t.Errorf("%d native streams opened, want %d", n, streams)
	}
}

// TestClientCancel: cancelling the client's context ends the server's stream: the
// receiver is closed (or the handler's Recv fails), the stream's context is done, and
// sends fail.
func TestClientCancel(t *testing.T) {
	t.Run("native", func(t *testing.T) {
		nat := newNatives(t)
		ts := startServer(t, nat.register)
		cc := dial(t, ts.addr)
		ctx, cancel := context.WithCancel(testContext(t, 20*time.Second))
		stream, err := adsClient(cc).StreamAggregatedResources(ctx)
		if err != nil {
			t.Fatalf("StreamAggregatedResources: %v", err)
		}
		if err := stream.Send(request(1)); err != nil {
			t.Fatalf("Send: %v", err)
		}
		r := nat.next(t)
		r.next(t)
		if err := r.st.Context().Err(); err != nil {
			t.Fatalf("stream context done before the client cancelled: %v", err)
		}
		cancel()
		if !r.waitClosed(t, "after the client cancelled") {
			return
		}
		select {
		case <-r.st.Context().Done():
		case <-time.After(wait):
			t.Fatalf("Stream.Context() not done within %v of the client cancelling", wait)
		}
		if err := r.st.SendMsg(marshal(&discoveryv3.DiscoveryResponse{Nonce: "late"})); err == nil {
			t.Errorf("SendMsg on a cancelled stream succeeded, want an error")
		} else if !errors.Is(err, ErrStreamDone) {
			t.Errorf("SendMsg on a cancelled stream: got %v, want ErrStreamDone", err)
		}
		if _, err := recvTimeout(t, stream.Recv); status.Code(err) != codes.Canceled {
			t.Errorf("client Recv after cancel: got %v, want Canceled", err)
		}
	})
	t.Run("blocking", func(t *testing.T) {
		type result struct{ ctxErr, recvErr, sendErr error }
		results := make(chan result, 1)
		started := make(chan struct{})
		impl := &ads{sotw: func(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
			if _, err := s.Recv(); err != nil {
				return err
			}
			close(started)
			var res result
			select {
			case <-s.Context().Done():
				res.ctxErr = s.Context().Err()
			case <-time.After(wait):
			}
			_, res.recvErr = s.Recv()
			res.sendErr = s.Send(&discoveryv3.DiscoveryResponse{Nonce: "late"})
			results <- res
			return nil
		}}
		ts := startServer(t, func(s *Server) { discoveryv3.RegisterAggregatedDiscoveryServiceServer(s, impl) })
		cc := dial(t, ts.addr)
		ctx, cancel := context.WithCancel(testContext(t, 20*time.Second))
		stream, err := adsClient(cc).StreamAggregatedResources(ctx)
		if err != nil {
			t.Fatalf("StreamAggregatedResources: %v", err)
		}
		if err := stream.Send(request(1)); err != nil {
			t.Fatalf("Send: %v", err)
		}
		select {
		case <-started:
		case <-time.After(wait):
			t.Fatalf("handler got no request within %v", wait)
		}
		cancel()
		select {
		case res := <-results:
			if res.ctxErr == nil {
				t.Errorf("handler's context not done within %v of the client cancelling", wait)
			}
			if res.recvErr == nil || res.recvErr == io.EOF {
				t.Errorf("handler's Recv after cancel: got %v, want an error other than io.EOF", res.recvErr)
			}
			if res.sendErr == nil {
				t.Errorf("handler's Send after cancel succeeded, want an error")
			}
		case <-time.After(2 * wait):
			t.Fatalf("handler did not finish within %v", 2*wait)
		}
	})
}

// longMessage is a status message whose trailers need more than one frame.
var longMessage = strings.Repeat("bad node: no cluster matches ", 1400)

// TestFinish: Stream.Finish, called from another goroutine than the reader, ends the
// client's stream with its status, and closes the receiver.
func TestFinish(t *testing.T) {
	for _, tc := range []struct {
		name      string
		respond   bool // send a response first, so that the status comes in trailers after headers
		err       error
		wantEOF   bool
		wantCode  codes.Code
		wantMsg   string
		closeSend bool // the client half-closed before Finish
	}{
		{name: "status", err: status.Error(codes.InvalidArgument, "bad node"), wantCode: codes.InvalidArgument, wantMsg: "bad node"},
		{name: "status after a response", respond: true, err: status.Error(codes.InvalidArgument, "bad node"), wantCode: codes.InvalidArgument, wantMsg: "bad node"},
		{name: "nil", err: nil, wantEOF: true},
		{name: "nil after a response", respond: true, err: nil, wantEOF: true},
		{name: "message to percent-encode", err: status.Error(codes.FailedPrecondition, "100% bad\nnode ✗"), wantCode: codes.FailedPrecondition, wantMsg: "100% bad\nnode ✗"},
		{name: "plain error", err: errors.New("boom"), wantCode: codes.Unknown, wantMsg: "boom"},
		// Trailers larger than a frame go out as HEADERS and CONTINUATION frames.
		{name: "40 KB message", err: status.Error(codes.InvalidArgument, longMessage), wantCode: codes.InvalidArgument, wantMsg: longMessage},
		{name: "40 KB message after a response", respond: true, err: status.Error(codes.InvalidArgument, longMessage), wantCode: codes.InvalidArgument, wantMsg: longMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nat := newNatives(t)
			ts := startServer(t, nat.register)
			cc := dial(t, ts.addr)
			ctx := testContext(t, 20*time.Second)
			stream, err := adsClient(cc).StreamAggregatedResources(ctx)
			if err != nil {
				t.Fatalf("StreamAggregatedResources: %v", err)
			}
			if err := stream.Send(request(1)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			r := nat.next(t)
			r.next(t)
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				if tc.respond {
					if err := r.st.SendMsg(marshal(&discoveryv3.DiscoveryResponse{Nonce: "1"})); err != nil {
						t.Errorf("SendMsg: %v", err)
					}
				}
				r.st.Finish(tc.err)
				r.st.Finish(status.Error(codes.Internal, "second Finish must be a no-op"))
			}()
			if tc.respond {
				if resp, err := recvTimeout(t, stream.Recv); err != nil || resp.GetNonce() != "1" {
					t.Fatalf("Recv of the response before Finish: got %v, %v", resp, err)
				}
			}
			_, err = recvTimeout(t, stream.Recv)
			if tc.wantEOF {
				if err != io.EOF {
					t.Errorf("Recv after Finish(nil): got %v, want io.EOF", err)
				}
			} else {
				wantCode(t, "Recv after Finish", err, tc.wantCode, tc.wantMsg)
			}
			<-finished
			r.waitClosed(t, "after Finish")
			if r.st.Context().Err() == nil {
				t.Errorf("Stream.Context() not done after Finish")
			}
			if err := r.st.SendMsg([]byte{}); err == nil {
				t.Errorf("SendMsg after Finish succeeded, want an error")
			}
		})
	}
}

// TestFinishBeforeOpenReturns: a stream finished before its OpenFunc returned (by the
// OpenFunc itself, or by a goroutine it started that ran first) still has its receiver
// closed, as Receiver's contract says: Close is called once when the stream ends, for any
// reason.
func TestFinishBeforeOpenReturns(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(st *Stream)
	}{
		{"Finish inside OpenFunc", func(st *Stream) {
			st.Finish(status.Error(codes.InvalidArgument, "bad node"))
		}},
		{"Finish by a goroutine OpenFunc started", func(st *Stream) {
			finished := make(chan struct{})
			go func() { // e.g. a sender that fails at once
				st.Finish(status.Error(codes.InvalidArgument, "bad node"))
				close(finished)
			}()
			select { // the scheduler may well run that goroutine before OpenFunc returns
			case <-finished:
			case <-time.After(wait):
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rcv *recorder
			ts := startServer(t, func(s *Server) {
				s.HandleStream(sotwMethod, func(st *Stream) (Receiver, error) {
					rcv = &recorder{st: st, msgs: make(chan []byte, 16), closed: make(chan struct{})}
					tc.open(st)
					return rcv, nil
				})
			})
			cc := dial(t, ts.addr)
			stream, err := adsClient(cc).StreamAggregatedResources(testContext(t, 20*time.Second))
			if err != nil {
				t.Fatalf("StreamAggregatedResources: %v", err)
			}
			if err := stream.Send(request(1)); err != nil && err != io.EOF {
				t.Fatalf("Send: %v", err)
			}
			_, err = recvTimeout(t, stream.Recv)
			wantCode(t, "Recv", err, codes.InvalidArgument, "bad node")
			ts.stop(t) // every stream has ended now, and the connection goroutine is gone
			if rcv == nil {
				t.Fatalf("OpenFunc was not called")
			}
			if c := rcv.closes.Load(); c != 1 {
				t.Errorf("Receiver.Close called %d times, want once: the stream ended before OpenFunc returned, and its receiver was never closed", c)
			}
			if n := len(rcv.msgs); n != 0 {
				t.Errorf("the receiver of a finished stream got %d messages", n)
			}
		})
	}
}

// TestReceiverError: an error from Receiver.Message ends the stream with its status, closes
// the receiver, and no message follows.
func TestReceiverError(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		wantCode codes.Code
		wantMsg  string
	}{
		{"status", status.Error(codes.PermissionDenied, "not your node"), codes.PermissionDenied, "not your node"},
		{"plain error", errors.New("cannot decode"), codes.Unknown, "cannot decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const failAt = 2
			nat := newNatives(t)
			nat.onMsg = func(r *recorder, n int, b []byte) error {
				if n == failAt {
					return tc.err
				}
				return nil
			}
			ts := startServer(t, nat.register)
			cc := dial(t, ts.addr)
			stream, err := adsClient(cc).StreamAggregatedResources(testContext(t, 20*time.Second))
			if err != nil {
				t.Fatalf("StreamAggregatedResources: %v", err)
			}
			for i := range failAt + 3 { // requests after the failing one are dropped, or fail to send
				if err := stream.Send(request(i + 1)); err != nil {
					break
				}
			}
			_, err = recvTimeout(t, stream.Recv)
			wantCode(t, "Recv", err, tc.wantCode, tc.wantMsg)
			r := nat.next(t)
			r.waitClosed(t, "after Message failed")
			if r.st.Context().Err() == nil {
				t.Errorf("Stream.Context() not done after Message failed")
			}
			if n := len(r.msgs); n != failAt {
				t.Errorf("receiver kept %d messages, want the %d before the failing one", n, failAt)
			}
		})
	}
}

// TestOpenError: an OpenFunc's error refuses the stream with its status, and the
// connection goes on serving.
func TestOpenError(t *testing.T) {
	nat := newNatives(t)
	var refuse atomic.Bool
	refuse.Store(true)
	nat.onOpen = func(*Stream) error {
		if refuse.Load() {
			return status.Error(codes.ResourceExhausted, "too many streams")
		}
		return nil
	}
	ts := startServer(t, nat.register)
	cc := dial(t, ts.addr)
	for _, send := range []bool{false, true} {
		stream, err := adsClient(cc).StreamAggregatedResources(testContext(t, 20*time.Second))
		if err != nil {
			t.Fatalf("StreamAggregatedResources: %v", err)
		}
		if send {
			if err := stream.Send(request(1)); err != nil && err != io.EOF {
				t.Fatalf("Send: %v", err)
			}
		}
		_, err = recvTimeout(t, stream.Recv)
		wantCode(t, fmt.Sprintf("Recv on a refused stream (request sent: %v)", send), err, codes.ResourceExhausted, "too many streams")
	}
	refuse.Store(false)
	roundTrip(t, cc, nat)
}

// roundTrip checks that a native stream on cc works: one request, one response.
func roundTrip(t *testing.T, cc *grpc.ClientConn, nat *natives) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	stream, err := adsClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatalf("round trip: StreamAggregatedResources: %v", err)
	}
	if err := stream.Send(request(7)); err != nil {
		t.Fatalf("round trip: Send: %v", err)
	}
	r := nat.next(t)
	if req := r.next(t); !proto.Equal(req, request(7)) {
		t.Fatalf("round trip: receiver got %v, want %v", req, request(7))
	}
	if err := r.st.SendMsg(marshal(&discoveryv3.DiscoveryResponse{Nonce: "rt"})); err != nil {
		t.Fatalf("round trip: SendMsg: %v", err)
	}
	resp, err := recvTimeout(t, stream.Recv)
	if err != nil || resp.GetNonce() != "rt" {
		t.Fatalf("round trip: Recv: got %v, %v; want nonce rt", resp, err)
	}
	r.st.Finish(nil)
	if _, err := recvTimeout(t, stream.Recv); err != io.EOF {
		t.Fatalf("round trip: Recv after Finish(nil): got %v, want io.EOF", err)
	}
}

// TestUnknownMethod: a method nobody serves is answered Unimplemented, and the connection
// goes on serving.
func TestUnknownMethod(t *testing.T) {
	nat := newNatives(t)
	ts := startServer(t, nat.register) // SotW natively; Delta is not registered
	cc := dial(t, ts.addr)
	for _, tc := range []struct {
		name   string
		method string
		unary  bool
	}{
		{"unknown service, stream", "/foo.Bar/Baz", false},
		{"unknown service, unary", "/foo.Bar/Baz", true},
		{"unregistered method of a known service", discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResources_FullMethodName, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t, wait)
			var err error
			if tc.unary {
				err = cc.Invoke(ctx, tc.method, &discoveryv3.DiscoveryRequest{}, &discoveryv3.DiscoveryResponse{})
			} else {
				var cs grpc.ClientStream
				cs, err = cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, tc.method)
				if err == nil {
					_ = cs.SendMsg(request(1))
					err = cs.RecvMsg(&discoveryv3.DiscoveryResponse{})
				}
			}
			wantCode(t, tc.method, err, codes.Unimplemented, "")
		})
	}
	roundTrip(t, cc, nat)
}

// TestRefusedRequests: what the transport does not serve is refused with a status, on
// native and registered streams alike, and the connection goes on serving.
func TestRefusedRequests(t *testing.T) {
	const limit = 4 << 10
	over := &discoveryv3.DiscoveryRequest{ResourceNames: []string{strings.Repeat("x", 2*limit)}}
	for _, tc := range []struct {
		name     string
		blocking bool
		req      *discoveryv3.DiscoveryRequest
		call     []grpc.CallOption
		wantCode codes.Code
		wantMsg  string
	}{
		{"compressed, native", false, request(1), []grpc.CallOption{grpc.UseCompressor("gzip")}, codes.Unimplemented, `grpc-encoding "gzip" is not supported`},
		{"compressed, blocking", true, request(1), []grpc.CallOption{grpc.UseCompressor("gzip")}, codes.Unimplemented, `grpc-encoding "gzip" is not supported`},
		{"over MaxRecvMsgSize, native", false, over, nil, codes.ResourceExhausted, ""},
		{"over MaxRecvMsgSize, blocking", true, over, nil, codes.ResourceExhausted, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nat := newNatives(t)
			handled := make(chan *discoveryv3.DiscoveryRequest, 4)
			impl := &ads{sotw: func(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
				for {
					req, err := s.Recv()
					if err != nil {
						return err
					}
					handled <- req
					if err := s.Send(&discoveryv3.DiscoveryResponse{Nonce: "rt"}); err != nil {
						return err
					}
				}
			}}
			ts := serveOn(t, Options{MaxRecvMsgSize: limit}, func(s *Server) {
				if tc.blocking {
					discoveryv3.RegisterAggregatedDiscoveryServiceServer(s, impl)
				} else {
					nat.register(s)
				}
			}, nil)
			cc := dial(t, ts.addr)
			stream, err := adsClient(cc).StreamAggregatedResources(testContext(t, 20*time.Second), tc.call...)
			if err != nil {
				t.Fatalf("StreamAggregatedResources: %v", err)
			}
			if err := stream.Send(tc.req); err != nil && err != io.EOF {
				t.Fatalf("Send: %v", err)
			}
			_, err = recvTimeout(t, stream.Recv)
			wantCode(t, "Recv", err, tc.wantCode, tc.wantMsg)
			select {
			case req := <-handled:
				t.Errorf("the handler got a request it should not have: %d bytes", proto.Size(req))
			default:
			}
			if !tc.blocking {
				select {
				case r := <-nat.opened:
					r.waitClosed(t, "the refused stream")
					if n := len(r.msgs); n != 0 {
						t.Errorf("the receiver got %d messages, want none", n)
					}
				default:
				}
			}
			// The connection still serves a request under the limit.
			stream, err = adsClient(cc).StreamAggregatedResources(testContext(t, 20*time.Second))
			if err != nil {
				t.Fatalf("StreamAggregatedResources: %v", err)
			}
			if err := stream.Send(request(3)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if tc.blocking {
				if resp, err := recvTimeout(t, stream.Recv); err != nil || resp.GetNonce() != "rt" {
					t.Fatalf("Recv on the same connection afterwards: got %v, %v", resp, err)
				}
				if req := <-handled; !proto.Equal(req, request(3)) {
					t.Errorf("handler got %v, want %v", req, request(3))
				}
			} else if req := nat.next(t).next(t); !proto.Equal(req, request(3)) {
				t.Errorf("receiver got %v, want %v", req, request(3))
			}
		})
	}
}

// TestBlockingHalfClose: on a registered stream, the handler's Recv returns the queued
// messages then io.EOF once the client half-closes; the handler can still send, and its
// return value is the client's status.
func TestBlockingHalfClose(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       int
		ret     error
		wantErr codes.Code // OK: io.EOF
	}{
		{"no requests", 0, nil, codes.OK},
		{"three requests", 3, nil, codes.OK},
		{"handler error", 2, status.Error(codes.Aborted, "done with you"), codes.Aborted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				got []*discoveryv3.DiscoveryRequest
				err error
			}
			results := make(chan result, 1)
			impl := &ads{delta: func(s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
				var res result
				for {
					req, err := s.Recv()
					if err != nil {
						res.err = err
						break
					}
					res.got = append(res.got, &discoveryv3.DiscoveryRequest{TypeUrl: req.GetTypeUrl(), ResponseNonce: req.GetResponseNonce()})
				}
				results <- res
				if res.err != io.EOF {
					return res.err
				}
				for _, req := range res.got { // after the client's half-close
					if err := s.Send(&discoveryv3.DeltaDiscoveryResponse{Nonce: req.GetResponseNonce()}); err != nil {
						return err
					}
				}
				return tc.ret
			}}
			ts := startServer(t, func(s *Server) { discoveryv3.RegisterAggregatedDiscoveryServiceServer(s, impl) })
			cc := dial(t, ts.addr)
			stream, err := adsClient(cc).DeltaAggregatedResources(testContext(t, 20*time.Second))
			if err != nil {
				t.Fatalf("DeltaAggregatedResources: %v", err)
			}
			for i := range tc.n {
				if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: clusterType, ResponseNonce: strconv.Itoa(i)}); err != nil {
					t.Fatalf("Send %d: %v", i, err)
				}
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatalf("CloseSend: %v", err)
			}
			select {
			case res := <-results:
				if res.err != io.EOF {
					t.Errorf("handler's Recv after the client's half-close: got %v, want io.EOF", res.err)
				}
				if len(res.got) != tc.n {
					t.Errorf("handler got %d messages before io.EOF, want %d", len(res.got), tc.n)
				}
				for i, req := range res.got {
					if req.GetResponseNonce() != strconv.Itoa(i) || req.GetTypeUrl() != clusterType {
						t.Errorf("handler's message %d: got %v, want nonce %d", i, req, i)
					}
				}
			case <-time.After(wait):
				t.Fatalf("handler's Recv did not return io.EOF within %v of CloseSend", wait)
			}
			for i := range tc.n {
				resp, err := recvTimeout(t, stream.Recv)
				if err != nil || resp.GetNonce() != strconv.Itoa(i) {
					t.Fatalf("Recv %d after CloseSend: got %v, %v; want nonce %d", i, resp, err, i)
				}
			}
			_, err = recvTimeout(t, stream.Recv)
			if tc.wantErr == codes.OK {
				if err != io.EOF {
					t.Errorf("Recv once the handler returned nil: got %v, want io.EOF", err)
				}
			} else {
				wantCode(t, "Recv once the handler returned an error", err, tc.wantErr, status.Convert(tc.ret).Message())
			}
		})
	}
}

// TestStop: Stop ends every stream: native receivers are closed, a SendMsg blocked on flow
// control returns, blocking handlers see their context end, clients get Unavailable, Serve
// returns nil, and the port no longer accepts.
func TestStop(t *testing.T) {
	nat := newNatives(t)
	handlerDone := make(chan error, 8)
	started := make(chan struct{}, 8)
	impl := &ads{delta: func(s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
		if _, err := s.Recv(); err != nil {
			return err
		}
		started <- struct{}{}
		select {
		case <-s.Context().Done():
		case <-time.After(2 * wait):
			handlerDone <- errors.New("context not done")
			return nil
		}
		_, err := s.Recv()
		handlerDone <- err
		return err
	}}
	ts := startServer(t, func(s *Server) {
		discoveryv3.RegisterAggregatedDiscoveryServiceServer(s, impl) // Delta runs blocking
		nat.register(s)                                               // SotW natively
	})
	ctx := testContext(t, 20*time.Second)

	type clientStream interface{ RecvMsg(any) error }
	var clients []clientStream
	var recorders []*recorder
	for c := range 2 {
		cc := dial(t, ts.addr, fixedWindows...)
		for range 2 {
			sotw, err := adsClient(cc).StreamAggregatedResources(ctx)
			if err != nil {
				t.Fatalf("StreamAggregatedResources: %v", err)
			}
			if err := sotw.Send(request(1)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			r := nat.next(t)
			r.next(t)
			recorders = append(recorders, r)
			clients = append(clients, sotw)
		}
		delta, err := adsClient(cc).DeltaAggregatedResources(ctx)
		if err != nil {
			t.Fatalf("DeltaAggregatedResources: %v", err)
		}
		if err := delta.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: clusterType}); err != nil {
			t.Fatalf("Send on delta stream %d: %v", c, err)
		}
		select {
		case <-started:
		case <-time.After(wait):
			t.Fatalf("delta handler %d did not start within %v", c, wait)
		}
		clients = append(clients, delta)
	}

	// A 5 MiB response that the client does not read blocks SendMsg on flow control.
	big := marshal(bigResponse(5<<20, 9))
	blocked := make(chan error, 1)
	go func() { blocked <- recorders[0].st.SendMsg(big) }()
	select {
	case err := <-blocked:
		t.Fatalf("SendMsg of 5 MiB to a client that does not read returned early: %v", err)
	case <-time.After(200 * time.Millisecond):
	}

	ts.stop(t)

	deadline := time.Now().Add(wait)
	for i, r := range recorders {
		r.waitClosedBy(t, fmt.Sprintf("native stream %d after Stop", i), deadline)
		if r.st.Context().Err() == nil {
			t.Errorf("native stream %d: Context() not done after Stop", i)
		}
	}
	select {
	case err := <-blocked:
		if err == nil {
			t.Errorf("a SendMsg blocked on flow control returned nil after Stop, want an error")
		}
	case <-time.After(wait):
		t.Errorf("a SendMsg blocked on flow control did not return within %v of Stop", wait)
	}
	for range 2 {
		select {
		case err := <-handlerDone:
			if err == nil || err == io.EOF {
				t.Errorf("blocking handler's Recv after Stop: got %v, want an error", err)
			}
		case <-time.After(2 * wait):
			t.Errorf("blocking handler did not see Stop within %v", 2*wait)
		}
	}
	for i, cs := range clients {
		var err error
		for err == nil { // the first native stream may have response bytes in flight
			_, err = recvTimeout(t, func() (struct{}, error) { return struct{}{}, cs.RecvMsg(&discoveryv3.DiscoveryResponse{}) })
		}
		if status.Code(err) != codes.Unavailable {
			t.Errorf("client stream %d after Stop: got %v, want Unavailable", i, err)
		}
	}
	if nc, err := net.DialTimeout("tcp", ts.addr, wait); err == nil {
		nc.Close()
		t.Errorf("the server's port still accepts connections after Stop")
	}
	// Serve after Stop returns nil at once, and closes its listener.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- ts.Serve(lis) }()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after Stop: %v, want nil", err)
		}
	case <-time.After(wait):
		lis.Close()
		t.Fatalf("Serve after Stop did not return within %v", wait)
	}
	if nc, err := net.DialTimeout("tcp", lis.Addr().String(), wait); err == nil {
		nc.Close()
		t.Errorf("Serve after Stop left its listener open")
	}
}

// TestNotHTTP2: a peer that does not speak HTTP/2 loses its connection, and the server keeps
// serving others.
func TestNotHTTP2(t *testing.T) {
	nat := newNatives(t)
	ts := startServer(t, nat.register)
	// An oversized frame header after a valid preface.
	oversized := append([]byte(clientPreface), 0x01, 0x00, 0x00, byte(http2.FrameData), 0, 0, 0, 0, 1)
	for _, tc := range []struct {
		name       string
		send       []byte
		wantGoAway http2.ErrCode // after a valid preface, the server says why it closes
	}{
		{name: "HTTP/1.1 request", send: []byte("GET / HTTP/1.1\r\nHost: weir\r\nUser-Agent: test\r\n\r\n")},
		{name: "garbage", send: bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 64)},
		{name: "preface then an oversized frame", send: oversized, wantGoAway: http2.ErrCodeFrameSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.DialTimeout("tcp", ts.addr, wait)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer nc.Close()
			if _, err := nc.Write(tc.send); err != nil {
				t.Fatalf("write: %v", err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(wait))
			if tc.wantGoAway != 0 {
				fr := http2.NewFramer(io.Discard, nc)
				var goAway *http2.GoAwayFrame
				for goAway == nil {
					f, err := fr.ReadFrame()
					if err != nil {
						t.Fatalf("no GOAWAY before the connection ended: %v", err)
					}
					goAway, _ = f.(*http2.GoAwayFrame)
				}
				if goAway.ErrCode != tc.wantGoAway {
					t.Errorf("GOAWAY code %v, want %v", goAway.ErrCode, tc.wantGoAway)
				}
			}
			_, err = io.Copy(io.Discard, nc)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server did not close the connection within %v", wait)
			}
		})
	}
	cc := dial(t, ts.addr)
	roundTrip(t, cc, nat)
}

// TestServerPushesWithoutRequests: a native stream may push many responses while the
// client sends nothing (as an xDS server pushes updates). grpc-go's client answers the
// server's DATA with BDP pings; those must not count against it as abusive pings.
func TestServerPushesWithoutRequests(t *testing.T) {
	nat := newNatives(t)
	ts := startServer(t, nat.register)
	cc := dial(t, ts.addr)
	stream, err := adsClient(cc).StreamAggregatedResources(testContext(t, 20*time.Second))
	if err != nil {
		t.Fatalf("StreamAggregatedResources: %v", err)
	}
	if err := stream.Send(request(1)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := nat.next(t)
	r.next(t)
	const pushes = 20
	for i := range pushes {
		resp := bigResponse(32<<10, uint64(i))
		if err := r.st.SendMsg(marshal(resp)); err != nil {
			t.Fatalf("SendMsg %d: %v", i, err)
		}
		got, err := recvTimeout(t, stream.Recv)
		if err != nil {
			t.Fatalf("Recv of push %d of %d: %v", i, pushes, err)
		}
		if !proto.Equal(got, resp) {
			t.Fatalf("push %d: response not equal to the one sent", i)
		}
		time.Sleep(5 * time.Millisecond) // let each BDP ping be answered, as between real pushes
	}
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

// TestSendAbandonedByResetKeepsWindow: a SendMsg that has taken connection window and is
// waiting for another stream's write when its own stream is reset must give that window
// back; otherwise the connection's other streams stall for want of window the client
// believes it has already granted.
func TestSendAbandonedByResetKeepsWindow(t *testing.T) {
	nat := newNatives(t)
	g := newGate()
	ts := serveOn(t, Options{}, nat.register, func(l net.Listener) net.Listener { return gatedListener{l, g} })
	cc := dial(t, ts.addr, fixedWindows...)
	ctx := testContext(t, 20*time.Second)
	open := func(ctx context.Context) (discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient, *recorder) {
		stream, err := adsClient(cc).StreamAggregatedResources(ctx)
		if err != nil {
			t.Fatalf("StreamAggregatedResources: %v", err)
		}
		if err := stream.Send(request(1)); err != nil {
			t.Fatalf("Send: %v", err)
		}
		r := nat.next(t)
		r.next(t)
		return stream, r
	}
	streamA, a := open(ctx)
	ctxB, cancelB := context.WithCancel(ctx)
	_, b := open(ctxB)

	ts.mu.Lock()
	var c *conn
	for k := range ts.conns {
		c = k
	}
	ts.mu.Unlock()
	sendWin := func() int64 { c.mu.Lock(); defer c.mu.Unlock(); return c.sendWin }
	until := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(wait); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, wait)
			}
		}
	}

	// A's write is stuck on the socket, holding the connection's write lock.
	initial := sendWin()
	g.set(true)
	small := marshal(&discoveryv3.DiscoveryResponse{Nonce: "a1"})
	sentA := make(chan error, 1)
	go func() { sentA <- a.st.SendMsg(small) }()
	before := initial - int64(len(small)+5)
	until("A's write blocked", func() bool { return g.blocked() > 0 && sendWin() == before })
	// B takes most of the connection window, then waits for the write lock.
	sentB := make(chan error, 1)
	go func() { sentB <- b.st.SendMsg(make([]byte, 60000)) }()
	until("B's window reserved", func() bool { return sendWin() <= before-60000 })
	// The client resets B, then the socket drains.
	cancelB()
	b.waitClosed(t, "B after the client cancelled")
	g.set(false)
	if err := <-sentA; err != nil {
		t.Fatalf("A's SendMsg: %v", err)
	}
	select {
	case err := <-sentB:
		if err == nil {
			t.Fatalf("B's SendMsg succeeded on a reset stream")
		}
	case <-time.After(wait):
		t.Fatalf("B's SendMsg did not return within %v of its stream's reset", wait)
	}
	if resp, err := recvTimeout(t, streamA.Recv); err != nil || resp.GetNonce() != "a1" {
		t.Fatalf("A's Recv: got %v, %v", resp, err)
	}

	// None of B's bytes were sent: the connection window is as A left it.
	if got, want := sendWin(), before; got != want {
		t.Errorf("connection send window after B's abandoned send: %d, want %d (B's %d reserved bytes were never given back)", got, want, want-got)
	}
	// And A can send 20 KiB more, which the client's window allows.
	next := bigResponse(20<<10, 1)
	nextB := marshal(next)
	go func() { sentA <- a.st.SendMsg(nextB) }()
	resp, err := recvTimeout(t, streamA.Recv)
	if err != nil || !proto.Equal(resp, next) {
		t.Fatalf("A's Recv of a 20 KiB response after B's abandoned send: %v (connection send window %d)", err, sendWin())
	}
}

// TestKeepalive: grpc-go's client keepalive pings at the rate the server permits (every 10 s)
// do not end the connection. It takes 25 s, so runs only with WEIR_SLOW_TESTS=1.
func TestKeepalive(t *testing.T) {
	if os.Getenv("WEIR_SLOW_TESTS") == "" {
		t.Skip("takes 25 s; set WEIR_SLOW_TESTS=1")
	}
	nat := newNatives(t)
	ts := startServer(t, nat.register)
	cc := dial(t, ts.addr, grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}))
	stream, err := adsClient(cc).StreamAggregatedResources(testContext(t, time.Minute))
	if err != nil {
		t.Fatalf("StreamAggregatedResources: %v", err)
	}
	if err := stream.Send(request(1)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := nat.next(t)
	r.next(t)
	time.Sleep(25 * time.Second) // two or three keepalive pings, nothing else
	select {
	case <-r.closed:
		t.Fatalf("the stream ended while the client only sent keepalive pings")
	default:
	}
	if err := r.st.SendMsg(marshal(&discoveryv3.DiscoveryResponse{Nonce: "alive"})); err != nil {
		t.Fatalf("SendMsg after 25 s of keepalive: %v", err)
	}
	if resp, err := recvTimeout(t, stream.Recv); err != nil || resp.GetNonce() != "alive" {
		t.Fatalf("Recv after 25 s of keepalive: got %v, %v", resp, err)
	}
}
