package transport

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
)

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
			nat, cc := serveNatives(t)
			stream := openSotw(t, testContext(t, 20*time.Second), cc)

			got := make(chan *discoveryv3.DiscoveryRequest, tc.n)
			responder := async(func() error { // the sender: not the connection's reader goroutine
				r, ok := receive(nat.opened, wait)
				if !ok {
					return fmt.Errorf("no native stream opened within %v", wait)
				}
				for i := range tc.n {
					b, ok := receive(r.msgs, wait)
					if !ok {
						return fmt.Errorf("request %d did not arrive within %v", i, wait)
					}
					req, err := decodeRequest(b)
					if err != nil {
						return fmt.Errorf("request %d: %v", i, err)
					}
					got <- req
					resp := &discoveryv3.DiscoveryResponse{VersionInfo: req.GetVersionInfo(), TypeUrl: clusterType, Nonce: strconv.Itoa(i)}
					if err := r.st.SendMsg(marshal(resp)); err != nil {
						return fmt.Errorf("SendMsg of response %d: %v", i, err)
					}
				}
				return nil
			})

			send := func(i int) error {
				if err := stream.Send(request(i)); err != nil {
					return fmt.Errorf("Send of request %d: %v", i, err)
				}
				return nil
			}
			var sendErr <-chan error
			if !tc.lockstep {
				sendErr = async(func() error {
					for i := range tc.n {
						if err := send(i); err != nil {
							return err
						}
					}
					return nil
				})
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
			if err := waitFor(t, responder, wait, "server side did not finish"); err != nil {
				t.Fatalf("server side: %v", err)
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
					req, err := decodeRequest(b)
					if err != nil {
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
	done := async(func() error { clients.Wait(); return nil })
	waitFor(t, done, 15*time.Second, fmt.Sprintf("%d streams did not finish", streams))
	nat.mu.Lock()
	n := len(nat.all)
	nat.mu.Unlock()
	if n != streams {
		t.Errorf("%d native streams opened, want %d", n, streams)
	}
}
