package transport

import (
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

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
			cc := serveADS(t, &ads{delta: func(s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
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
			}})
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
			res := waitFor(t, results, wait, "handler's Recv did not return io.EOF after CloseSend")
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
			cc := serveADS(t, echoADS(got, func(req *discoveryv3.DiscoveryRequest) *discoveryv3.DiscoveryResponse {
				return &discoveryv3.DiscoveryResponse{VersionInfo: strconv.Itoa(proto.Size(req))}
			}))
			stream := openSotw(t, testContext(t, 20*time.Second), cc)
			sendErr := async(func() error {
				for i, m := range want {
					if err := stream.Send(m); err != nil {
						return fmt.Errorf("Send of request %d: %v", i, err)
					}
				}
				return stream.CloseSend()
			})
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
