package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// conn is one client connection. Its reader goroutine (serve) owns the frame decoding
// state; senders take mu for flow control and wmu to write.
type conn struct {
	srv *Server
	nc  net.Conn
	log *zap.Logger

	// Reader-owned.
	rd         *reader
	dec        *hpack.Decoder
	block      headerBlock // the header block being read, across CONTINUATION frames
	lastID     uint32      // highest stream id the client has opened
	recvUnsent int         // connection-level bytes read and not yet returned by WINDOW_UPDATE
	lastPing   time.Time
	pingStrike int
	sentData   atomic.Bool // data was written since the last ping: the ping is not abuse

	mu        sync.Mutex
	sendReady sync.Cond // signalled when send windows grow or streams end
	streams   []*Stream // open streams; a proxy has one or two
	sendWin   int64     // connection-level send window
	initWin   int32     // the client's SETTINGS_INITIAL_WINDOW_SIZE
	maxFrame  uint32    // the client's SETTINGS_MAX_FRAME_SIZE
	closed    bool

	wmu        sync.Mutex // serializes writes; guards what follows
	enc        *hpack.Encoder
	ebuf       headerBuf
	deadlineAt time.Time // when the write deadline was last pushed back
}

type headerBuf struct{ b []byte }

func (h *headerBuf) Write(p []byte) (int, error) { h.b = append(h.b, p...); return len(p), nil }

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, rd: newReader(nc), log: s.log, sendWin: defaultWindow, initWin: defaultWindow, maxFrame: 16384}
	c.sendReady.L = &c.mu
	c.dec = hpack.NewDecoder(4096, c.emit)
	c.dec.SetMaxStringLength(maxHeaderList)
	c.enc = hpack.NewEncoder(&c.ebuf)
	// weir's responses carry a handful of fixed headers: no dynamic table to keep per
	// connection.
	c.enc.SetMaxDynamicTableSizeLimit(0)
	return c
}

// serve runs the connection until it breaks or the server stops. Its goroutine spends
// its life parked in a read at the bottom of this frame and readFrame's: both are kept
// small (logging lives in helpers), so that the parked stack uses under a quarter of
// 8 KB and the runtime shrinks it to 4 KB.
func (c *conn) serve() {
	defer c.srv.untrack(c)
	defer c.finish()
	if !c.start() {
		return
	}
	var err error
	for err == nil {
		err = c.readFrame()
	}
	c.fail(err)
}

// start runs the handshake.
//
//go:noinline
func (c *conn) start() bool {
	if err := c.handshake(); err != nil {
		c.log.Debug("http2 handshake failed", zap.String("peer", c.nc.RemoteAddr().String()), zap.Error(err))
		return false
	}
	return true
}

// fail ends a connection whose reading stopped with err: a protocol error is answered
// with GOAWAY.
//
//go:noinline
func (c *conn) fail(err error) {
	var ce connError
	if errors.As(err, &ce) {
		c.log.Debug("closing connection", zap.String("peer", c.nc.RemoteAddr().String()), zap.Error(err))
		c.goAway(ce.code, ce.msg)
	}
}

// finish recovers a panic of the connection's goroutine and ends its streams.
func (c *conn) finish() {
	if r := recover(); r != nil {
		c.srv.panicked(r)
	}
	c.teardown()
}

func (c *conn) handshake() error {
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	pre, err := c.rd.next(len(clientPreface))
	if err != nil {
		return err
	}
	if string(pre) != clientPreface {
		return errors.New("not an HTTP/2 client preface")
	}
	var b []byte
	settings := [][2]uint32{
		{uint32(http2.SettingMaxConcurrentStreams), maxStreams},
		{uint32(http2.SettingMaxHeaderListSize), maxHeaderList},
	}
	b = appendFrameHeader(b, 6*len(settings), http2.FrameSettings, 0, 0)
	for _, s := range settings {
		b = binary.BigEndian.AppendUint16(b, uint16(s[0]))
		b = binary.BigEndian.AppendUint32(b, s[1])
	}
	b = appendFrameHeader(b, 4, http2.FrameWindowUpdate, 0, 0)
	b = binary.BigEndian.AppendUint32(b, connWindow-defaultWindow)
	if _, err := c.nc.Write(b); err != nil {
		return err
	}
	c.recvUnsent = 0
	return c.nc.SetDeadline(time.Time{})
}

// readFrame reads and handles one frame.
func (c *conn) readFrame() error {
	defer c.rd.release()
	hb, err := c.rd.next(frameHeaderLen)
	if err != nil {
		return err
	}
	h := parseFrameHeader((*[frameHeaderLen]byte)(hb))
	if h.length > maxReadFrame {
		return connError{code: http2.ErrCodeFrameSize, msg: "frame larger than SETTINGS_MAX_FRAME_SIZE"}
	}
	if c.block.open() && h.typ != http2.FrameContinuation {
		return protocolError("frame of type %v inside a header block", h.typ)
	}
	// The payload is valid until the next read: whatever outlives the frame is copied.
	p, err := c.rd.next(int(h.length))
	if err != nil {
		return err
	}
	switch h.typ {
	case http2.FrameData:
		return c.onData(h, p)
	case http2.FrameHeaders:
		return c.onHeaders(h, p)
	case http2.FrameContinuation:
		return c.onContinuation(h, p)
	case http2.FrameRSTStream:
		if h.streamID == 0 || len(p) != 4 {
			return protocolError("bad RST_STREAM")
		}
		if st := c.stream(h.streamID); st != nil {
			st.end(status.Error(codes.Canceled, "stream reset by the client"), false)
		}
		return nil
	case http2.FrameSettings:
		return c.onSettings(h, p)
	case http2.FramePing:
		return c.onPing(h, p)
	case http2.FrameGoAway:
		return io.EOF // the client is leaving; its streams end with the connection
	case http2.FrameWindowUpdate:
		return c.onWindowUpdate(h, p)
	case http2.FramePushPromise:
		return protocolError("PUSH_PROMISE from a client")
	default: // PRIORITY and unknown types are ignored, as RFC 9113 asks
		return nil
	}
}

func (c *conn) onSettings(h frameHeader, p []byte) error {
	if h.streamID != 0 || len(p)%6 != 0 {
		return protocolError("bad SETTINGS")
	}
	if h.has(http2.FlagSettingsAck) {
		return nil
	}
	c.mu.Lock()
	for ; len(p) > 0; p = p[6:] {
		id, v := http2.SettingID(binary.BigEndian.Uint16(p)), binary.BigEndian.Uint32(p[2:])
		switch id {
		case http2.SettingInitialWindowSize:
			if v > 1<<31-1 {
				c.mu.Unlock()
				return connError{code: http2.ErrCodeFlowControl, msg: "SETTINGS_INITIAL_WINDOW_SIZE too large"}
			}
			delta := int64(v) - int64(c.initWin)
			for _, st := range c.streams {
				st.sendWin += delta
			}
			c.initWin = int32(v)
		case http2.SettingMaxFrameSize:
			if v < 16384 || v > 1<<24-1 {
				c.mu.Unlock()
				return protocolError("bad SETTINGS_MAX_FRAME_SIZE %d", v)
			}
			c.maxFrame = v
		}
	}
	c.sendReady.Broadcast()
	c.mu.Unlock()
	return c.writeFrame(appendFrameHeader(nil, 0, http2.FrameSettings, http2.FlagSettingsAck, 0))
}

// onPing answers pings, and ends a connection that pings more often than MinPingInterval while
// nothing else flows either way (gRPC-go's keepalive enforcement, which weir used before;
// gRPC clients also ping to size their windows while data arrives).
func (c *conn) onPing(h frameHeader, p []byte) error {
	if h.streamID != 0 || len(p) != 8 {
		return protocolError("bad PING")
	}
	if h.has(http2.FlagPingAck) {
		return nil
	}
	now := time.Now()
	if c.sentData.Swap(false) {
		c.activity()
	}
	if !c.lastPing.IsZero() && now.Sub(c.lastPing) < c.srv.opts.MinPingInterval {
		if c.pingStrike++; c.pingStrike > 2 {
			return connError{code: http2.ErrCodeEnhanceYourCalm, msg: "too many pings"}
		}
	}
	c.lastPing = now
	b := appendFrameHeader(make([]byte, 0, frameHeaderLen+8), 8, http2.FramePing, http2.FlagPingAck, 0)
	return c.writeFrame(append(b, p...))
}

// activity resets the ping strikes: pings between requests are not abuse.
func (c *conn) activity() { c.pingStrike = 0; c.lastPing = time.Time{} }

func (c *conn) onWindowUpdate(h frameHeader, p []byte) error {
	if len(p) != 4 {
		return connError{code: http2.ErrCodeFrameSize, msg: "bad WINDOW_UPDATE"}
	}
	inc := int64(binary.BigEndian.Uint32(p) & (1<<31 - 1))
	if inc == 0 {
		return protocolError("WINDOW_UPDATE of 0")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.streamID == 0 {
		c.sendWin += inc
		if c.sendWin > 1<<31-1 {
			return connError{code: http2.ErrCodeFlowControl, msg: "connection window overflow"}
		}
	} else if st := c.streamLocked(h.streamID); st != nil {
		st.sendWin += inc
	}
	c.sendReady.Broadcast()
	return nil
}

func (c *conn) onData(h frameHeader, p []byte) error {
	if h.streamID == 0 {
		return protocolError("DATA on stream 0")
	}
	c.activity()
	if err := c.consumed(int(h.length)); err != nil {
		return err
	}
	data, err := unpad(h, p)
	if err != nil {
		return err
	}
	st := c.stream(h.streamID)
	if st == nil {
		if h.streamID > c.lastID {
			return protocolError("DATA on idle stream %d", h.streamID)
		}
		return nil // a stream weir already ended; the data is dropped
	}
	return st.data(data, int(h.length), h.has(http2.FlagDataEndStream))
}

// consumed returns read bytes to the client's connection window, in batches.
func (c *conn) consumed(n int) error {
	c.recvUnsent += n
	if c.recvUnsent < connWindow/2 {
		return nil
	}
	inc := c.recvUnsent
	c.recvUnsent = 0
	return c.writeWindowUpdate(0, inc)
}

func (c *conn) writeWindowUpdate(streamID uint32, n int) error {
	b := appendFrameHeader(make([]byte, 0, frameHeaderLen+4), 4, http2.FrameWindowUpdate, 0, streamID)
	return c.writeFrame(binary.BigEndian.AppendUint32(b, uint32(n)))
}

func (c *conn) stream(id uint32) *Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streamLocked(id)
}

func (c *conn) streamLocked(id uint32) *Stream {
	for _, st := range c.streams {
		if st.id == id {
			return st
		}
	}
	return nil
}

func (c *conn) remove(st *Stream) {
	c.mu.Lock()
	for i, s := range c.streams {
		if s == st {
			last := len(c.streams) - 1
			c.streams[i] = c.streams[last]
			c.streams[last] = nil
			c.streams = c.streams[:last]
			break
		}
	}
	if len(c.streams) == 0 {
		c.streams = nil
	}
	c.sendReady.Broadcast()
	c.mu.Unlock()
}

// writeFrame writes complete frames.
func (c *conn) writeFrame(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.write(net.Buffers{b})
}

// write writes bufs; the caller holds wmu. A peer that stops reading for WriteTimeout
// loses its connection.
func (c *conn) write(bufs net.Buffers) error {
	// Pushed back every quarter of the timeout rather than on every write: a push to
	// thousands of proxies would otherwise reset as many timers.
	if now := time.Now(); now.Sub(c.deadlineAt) > c.srv.opts.WriteTimeout/4 {
		_ = c.nc.SetWriteDeadline(now.Add(c.srv.opts.WriteTimeout))
		c.deadlineAt = now
	}
	_, err := bufs.WriteTo(c.nc)
	if err != nil {
		c.nc.Close() // the reader sees it and ends every stream
	}
	return err
}

func (c *conn) goAway(code http2.ErrCode, msg string) {
	_ = c.writeFrame(c.goAwayFrame(code, msg))
}

func (c *conn) goAwayFrame(code http2.ErrCode, msg string) []byte {
	c.mu.Lock()
	last := c.lastID
	c.mu.Unlock()
	b := appendFrameHeader(nil, 8+len(msg), http2.FrameGoAway, 0, 0)
	b = binary.BigEndian.AppendUint32(b, last)
	b = binary.BigEndian.AppendUint32(b, uint32(code))
	return append(b, msg...)
}

// shutdown is Server.Stop's end of a connection: GOAWAY unless a write is stuck on a peer
// that does not read, then close.
func (c *conn) shutdown() {
	if c.wmu.TryLock() {
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.nc.Write(c.goAwayFrame(http2.ErrCodeNo, "server stopping"))
		c.wmu.Unlock()
	}
	c.nc.Close()
}

// teardown ends every stream of a connection that is gone.
func (c *conn) teardown() {
	c.nc.Close()
	c.mu.Lock()
	c.closed = true
	streams := append([]*Stream(nil), c.streams...)
	c.sendReady.Broadcast()
	c.mu.Unlock()
	for _, st := range streams {
		st.end(status.Error(codes.Unavailable, "connection closed"), false)
	}
}

// newStreamContext is the context of a stream of this connection.
func (c *conn) newStreamContext() (context.Context, context.CancelFunc) {
	return context.WithCancel(serverContext)
}
