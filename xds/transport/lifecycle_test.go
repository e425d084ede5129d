package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestClientCancel: cancelling the client's context ends the server's stream: the
// receiver is closed (or the handler's Recv fails), the stream's context is done, and
// sends fail.
func TestClientCancel(t *testing.T) {
	t.Run("native", func(t *testing.T) {
		nat, cc := serveNatives(t)
		ctx, cancel := context.WithCancel(testContext(t, 20*time.Second))
		stream, r := nat.openStream(t, ctx, cc)
		if err := r.st.Context().Err(); err != nil {
			t.Fatalf("stream context done before the client cancelled: %v", err)
		}
		cancel()
		if !r.waitClosed(t, "after the client cancelled") {
			return
		}
		waitFor(t, r.st.Context().Done(), wait, "Stream.Context() not done after the client cancelled")
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
		cc := serveADS(t, &ads{sotw: func(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
			if _, err := s.Recv(); err != nil {
				return err
			}
			close(started)
			var res result
			if _, ok := receive(s.Context().Done(), wait); ok {
				res.ctxErr = s.Context().Err()
			}
			_, res.recvErr = s.Recv()
			res.sendErr = s.Send(&discoveryv3.DiscoveryResponse{Nonce: "late"})
			results <- res
			return nil
		}})
		ctx, cancel := context.WithCancel(testContext(t, 20*time.Second))
		stream := openSotw(t, ctx, cc)
		if err := stream.Send(request(1)); err != nil {
			t.Fatalf("Send: %v", err)
		}
		waitFor(t, started, wait, "handler got no request")
		cancel()
		res := waitFor(t, results, 2*wait, "handler did not finish")
		if res.ctxErr == nil {
			t.Errorf("handler's context not done within %v of the client cancelling", wait)
		}
		if res.recvErr == nil || res.recvErr == io.EOF {
			t.Errorf("handler's Recv after cancel: got %v, want an error other than io.EOF", res.recvErr)
		}
		if res.sendErr == nil {
			t.Errorf("handler's Send after cancel succeeded, want an error")
		}
	})
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
		if _, ok := receive(s.Context().Done(), 2*wait); !ok {
			handlerDone <- errors.New("context not done")
			return nil
		}
		_, err := s.Recv()
		handlerDone <- err
		return err
	}}
	ts := startServer(t, func(s *Server) {
		impl.register(s) // Delta runs blocking
		nat.register(s)  // SotW natively
	})
	ctx := testContext(t, 20*time.Second)

	type clientStream interface{ RecvMsg(any) error }
	var clients []clientStream
	var recorders []*recorder
	for c := range 2 {
		cc := dial(t, ts.addr, fixedWindows...)
		for range 2 {
			sotw, r := nat.openStream(t, ctx, cc)
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
		waitFor(t, started, wait, fmt.Sprintf("delta handler %d did not start", c))
		clients = append(clients, delta)
	}

	// A 5 MiB response that the client does not read blocks SendMsg on flow control.
	big := marshal(bigResponse(5<<20, 9))
	blocked := async(func() error { return recorders[0].st.SendMsg(big) })
	if err, ok := receive(blocked, 200*time.Millisecond); ok {
		t.Fatalf("SendMsg of 5 MiB to a client that does not read returned early: %v", err)
	}

	ts.stop(t)

	deadline := time.Now().Add(wait)
	for i, r := range recorders {
		r.waitClosedBy(t, fmt.Sprintf("native stream %d after Stop", i), deadline)
		if r.st.Context().Err() == nil {
			t.Errorf("native stream %d: Context() not done after Stop", i)
		}
	}
	if err, ok := waitCheck(t, blocked, wait, "a SendMsg blocked on flow control did not return after Stop"); ok && err == nil {
		t.Errorf("a SendMsg blocked on flow control returned nil after Stop, want an error")
	}
	for range 2 {
		if err, ok := waitCheck(t, handlerDone, 2*wait, "blocking handler did not see Stop"); ok && (err == nil || err == io.EOF) {
			t.Errorf("blocking handler's Recv after Stop: got %v, want an error", err)
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
	err, ok := receive(async(func() error { return ts.Serve(lis) }), wait)
	if !ok {
		lis.Close()
		t.Fatalf("Serve after Stop did not return within %v", wait)
	}
	if err != nil {
		t.Errorf("Serve after Stop: %v, want nil", err)
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

// TestPingPolicy: pings at the permitted rate are answered and keep the connection; a
// client that pings faster while nothing else flows gets GOAWAY ENHANCE_YOUR_CALM.
func TestPingPolicy(t *testing.T) {
	ts := serveOn(t, Options{MinPingInterval: 200 * time.Millisecond}, nil, nil)
	nc, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(nc, nc)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	// next returns the next PING ACK or GOAWAY, skipping settings and window updates.
	next := func() http2.Frame {
		t.Helper()
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			switch f := f.(type) {
			case *http2.PingFrame:
				if f.IsAck() {
					return f
				}
			case *http2.GoAwayFrame:
				return f
			}
		}
	}
	for i := range 4 {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if f, ok := next().(*http2.PingFrame); !ok || f.Data[0] != byte(i) {
			t.Fatalf("ping %d at the permitted rate: got %v, want its ACK", i, f)
		}
		time.Sleep(300 * time.Millisecond)
	}
	for i := range 4 {
		if err := fr.WritePing(false, [8]byte{9, byte(i)}); err != nil {
			break // the server may already have closed the connection
		}
	}
	for {
		if ga, ok := next().(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", ga.ErrCode)
			}
			return
		}
	}
}
