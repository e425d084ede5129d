package transport

import (
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

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
		stream := openSotw(t, testContext(t, 20*time.Second), cc)
		if send {
			if err := stream.Send(request(1)); err != nil && err != io.EOF {
				t.Fatalf("Send: %v", err)
			}
		}
		_, err := recvTimeout(t, stream.Recv)
		wantCode(t, fmt.Sprintf("Recv on a refused stream (request sent: %v)", send), err, codes.ResourceExhausted, "too many streams")
	}
	refuse.Store(false)
	roundTrip(t, cc, nat)
}

// TestUnknownMethod: a method nobody serves is answered Unimplemented, and the connection
// goes on serving.
func TestUnknownMethod(t *testing.T) {
	nat, cc := serveNatives(t) // SotW natively; Delta is not registered
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
			impl := echoADS(handled, func(*discoveryv3.DiscoveryRequest) *discoveryv3.DiscoveryResponse {
				return &discoveryv3.DiscoveryResponse{Nonce: "rt"}
			})
			ts := serveOn(t, Options{MaxRecvMsgSize: limit}, func(s *Server) {
				if tc.blocking {
					impl.register(s)
				} else {
					nat.register(s)
				}
			}, nil)
			cc := dial(t, ts.addr)
			stream := openSotw(t, testContext(t, 20*time.Second), cc, tc.call...)
			if err := stream.Send(tc.req); err != nil && err != io.EOF {
				t.Fatalf("Send: %v", err)
			}
			_, err := recvTimeout(t, stream.Recv)
			wantCode(t, "Recv", err, tc.wantCode, tc.wantMsg)
			if req, ok := receive(handled, 0); ok {
				t.Errorf("the handler got a request it should not have: %d bytes", proto.Size(req))
			}
			if !tc.blocking {
				if r, ok := receive(nat.opened, 0); ok {
					r.waitClosed(t, "the refused stream")
					if n := len(r.msgs); n != 0 {
						t.Errorf("the receiver got %d messages, want none", n)
					}
				}
			}
			// The connection still serves a request under the limit.
			stream = openSotw(t, testContext(t, 20*time.Second), cc)
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
