package transport

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap/zaptest"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzConnection feeds arbitrary frames to a connection after a valid preface: whatever
// arrives, weir must not panic, and the connection must end once the peer hangs up. The
// seeds are a well-formed ADS exchange and its pieces; `go test` runs them every time.
//
//	go test ./xds/transport -run '^$' -fuzz FuzzConnection -fuzztime 1m
func FuzzConnection(f *testing.F) {
	ads := discoveryv3.AggregatedDiscoveryService_StreamAggregatedResources_FullMethodName
	headers := encodeHeaders(f, ":method", "POST", ":path", ads, "content-type", "application/grpc")
	msg := []byte{0, 0, 0, 0, 3, 0x12, 0x01, 'x'} // a 3-byte message
	exchange := concat(
		frame(http2.FrameSettings, 0, 0, nil),
		frame(http2.FrameHeaders, http2.FlagHeadersEndHeaders, 1, headers),
		frame(http2.FrameData, 0, 1, msg),
		frame(http2.FramePing, 0, 0, make([]byte, 8)),
		frame(http2.FrameWindowUpdate, 0, 0, []byte{0, 0, 1, 0}),
		frame(http2.FrameData, http2.FlagDataEndStream, 1, nil),
	)
	f.Add(exchange)
	f.Add(concat(frame(http2.FrameHeaders, 0, 3, headers[:len(headers)/2]),
		frame(http2.FrameContinuation, http2.FlagContinuationEndHeaders, 3, headers[len(headers)/2:])))
	f.Add(concat(frame(http2.FrameHeaders, http2.FlagHeadersEndHeaders, 1, headers),
		frame(http2.FrameRSTStream, 0, 1, []byte{0, 0, 0, 8}), frame(http2.FrameData, 0, 1, msg)))
	f.Add(concat(frame(http2.FrameHeaders, http2.FlagHeadersEndHeaders|http2.FlagHeadersPadded, 1, append([]byte{200}, headers...))))
	f.Add(frame(http2.FrameGoAway, 0, 0, make([]byte, 8)))
	f.Add([]byte{0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1})

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer lis.Close()
	f.Fuzz(func(t *testing.T, input []byte) {
		panicked := make(chan struct{}, 1)
		srv := NewServer(zaptest.NewLogger(t), Options{OnPanic: func() { panicked <- struct{}{} }})
		srv.HandleStream(ads, func(*Stream) (Receiver, error) { return discard{}, nil })
		// A real socket pair: the peer half-closes after its input, so every frame is
		// handled (and answered) before the connection sees the end.
		client, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := lis.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c := newConn(srv, server)
		if !srv.track(c) {
			t.Fatal("server refused the connection")
		}
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			defer srv.running.Done()
			c.serve()
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = client.Write([]byte(clientPreface))
		_, _ = client.Write(input)
		_ = client.(*net.TCPConn).CloseWrite()
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Fatal("the connection did not end within 5s of the peer hanging up")
		}
		select {
		case <-panicked: // recovered, so weir would have kept serving; still a bug
			t.Fatal("the connection's goroutine panicked")
		default:
		}
	})
}

type discard struct{}

func (discard) Message([]byte) error { return nil }
func (discard) Close()               {}

func frame(typ http2.FrameType, flags http2.Flags, stream uint32, payload []byte) []byte {
	return append(appendFrameHeader(nil, len(payload), typ, flags, stream), payload...)
}

func encodeHeaders(tb testing.TB, kv ...string) []byte {
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	for i := 0; i < len(kv); i += 2 {
		if err := enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}); err != nil {
			tb.Fatal(err)
		}
	}
	return b.Bytes()
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
