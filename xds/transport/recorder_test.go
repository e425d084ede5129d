package transport

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

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

// newRecorder is a recorder for st that queues up to size messages.
func newRecorder(st *Stream, size int) *recorder {
	return &recorder{st: st, msgs: make(chan []byte, size), closed: make(chan struct{})}
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
	_, ok := waitCheck(t, r.closed, time.Until(deadline), why+": Receiver.Close was not called")
	return ok
}

// next returns the next message the receiver got, decoded.
func (r *recorder) next(t *testing.T) *discoveryv3.DiscoveryRequest {
	t.Helper()
	req, err := decodeRequest(waitFor(t, r.msgs, wait, "Receiver got no message"))
	if err != nil {
		t.Fatalf("Receiver got a message that is not a DiscoveryRequest: %v", err)
	}
	return req
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

// serveNatives starts a server that serves sotwMethod natively with new natives, and dials
// it with opts.
func serveNatives(t *testing.T, opts ...grpc.DialOption) (*natives, *grpc.ClientConn) {
	t.Helper()
	nat := newNatives(t)
	ts := startServer(t, nat.register)
	return nat, dial(t, ts.addr, opts...)
}

func (n *natives) open(st *Stream) (Receiver, error) {
	if n.onOpen != nil {
		if err := n.onOpen(st); err != nil {
			return nil, err
		}
	}
	r := newRecorder(st, 1024)
	r.onMsg = n.onMsg
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
	return waitFor(t, n.opened, wait, "no native stream opened")
}

// openStream opens an SotW stream on cc and sends request(1); it returns the client's
// stream and the recorder of the native stream, once that has got the request.
func (n *natives) openStream(t *testing.T, ctx context.Context, cc *grpc.ClientConn) (sotwClient, *recorder) {
	t.Helper()
	stream := openSotw(t, ctx, cc)
	if err := stream.Send(request(1)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := n.next(t)
	r.next(t)
	return stream, r
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

// marshal encodes m; it can be called from any goroutine (the messages here always encode).
func marshal(m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", m, err))
	}
	return b
}

// decodeRequest decodes a message a receiver got.
func decodeRequest(b []byte) (*discoveryv3.DiscoveryRequest, error) {
	req := &discoveryv3.DiscoveryRequest{}
	return req, proto.Unmarshal(b, req)
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
