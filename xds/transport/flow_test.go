package transport

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

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
			nat, cc := serveNatives(t, tc.opts...)
			stream, r := nat.openStream(t, testContext(t, 20*time.Second), cc)

			want := []*discoveryv3.DiscoveryResponse{bigResponse(tc.size, 1), {VersionInfo: "small", Nonce: "2"}, bigResponse(tc.size, 3)}
			encoded := make([][]byte, len(want))
			for i, m := range want {
				encoded[i] = marshal(m)
			}
			sent := async(func() error {
				for i, b := range encoded {
					if err := r.st.SendMsg(split(b, tc.parts)...); err != nil {
						return fmt.Errorf("SendMsg of response %d: %v", i, err)
					}
				}
				return nil
			})
			for i, w := range want {
				got, err := recvTimeout(t, stream.Recv)
				if err != nil {
					t.Fatalf("Recv of response %d (%d bytes): %v", i, proto.Size(w), err)
				}
				if !proto.Equal(got, w) {
					t.Fatalf("response %d: got %d bytes (nonce %q), want %d bytes (nonce %q), not equal", i, proto.Size(got), got.GetNonce(), proto.Size(w), w.GetNonce())
				}
			}
			if err := waitFor(t, sent, wait, "SendMsg did not return"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestServerPushesWithoutRequests: a native stream may push many responses while the
// client sends nothing (as an xDS server pushes updates). grpc-go's client answers the
// server's DATA with BDP pings; those must not count against it as abusive pings.
func TestServerPushesWithoutRequests(t *testing.T) {
	nat, cc := serveNatives(t)
	stream, r := nat.openStream(t, testContext(t, 20*time.Second), cc)
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
	streamA, a := nat.openStream(t, ctx, cc)
	ctxB, cancelB := context.WithCancel(ctx)
	_, b := nat.openStream(t, ctxB, cc)

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
	sentA := async(func() error { return a.st.SendMsg(small) })
	before := initial - int64(len(small)+5)
	until("A's write blocked", func() bool { return g.blocked() > 0 && sendWin() == before })
	// B takes most of the connection window, then waits for the write lock.
	sentB := async(func() error { return b.st.SendMsg(make([]byte, 60000)) })
	until("B's window reserved", func() bool { return sendWin() <= before-60000 })
	// The client resets B, then the socket drains.
	cancelB()
	b.waitClosed(t, "B after the client cancelled")
	g.set(false)
	if err := <-sentA; err != nil {
		t.Fatalf("A's SendMsg: %v", err)
	}
	if err := waitFor(t, sentB, wait, "B's SendMsg did not return after its stream's reset"); err == nil {
		t.Fatalf("B's SendMsg succeeded on a reset stream")
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
	async(func() error { return a.st.SendMsg(nextB) })
	resp, err := recvTimeout(t, streamA.Recv)
	if err != nil || !proto.Equal(resp, next) {
		t.Fatalf("A's Recv of a 20 KiB response after B's abandoned send: %v (connection send window %d)", err, sendWin())
	}
}
