package transport

import (
	"net"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// headerBlock is a HEADERS frame's fields, gathered across its CONTINUATION frames.
type headerBlock struct {
	streamID  uint32
	endStream bool
	size      int // decoded bytes, bounded by maxHeaderList
	frames    int
	tooLarge  bool
	method    string
	path      string
	ctype     string
	encoding  string
	reading   bool
}

func (b *headerBlock) open() bool { return b.reading }

func (c *conn) onHeaders(h frameHeader, p []byte) error {
	if h.streamID == 0 || h.streamID%2 == 0 {
		return protocolError("HEADERS on stream %d", h.streamID)
	}
	p, err := unpad(h, p)
	if err != nil {
		return err
	}
	if h.has(http2.FlagHeadersPriority) {
		if len(p) < 5 {
			return protocolError("short HEADERS priority")
		}
		p = p[5:]
	}
	c.activity()
	c.block = headerBlock{streamID: h.streamID, endStream: h.has(http2.FlagHeadersEndStream), reading: true}
	return c.headerFragment(p, h.has(http2.FlagHeadersEndHeaders))
}

func (c *conn) onContinuation(h frameHeader, p []byte) error {
	if !c.block.open() || h.streamID != c.block.streamID {
		return protocolError("CONTINUATION without its HEADERS")
	}
	return c.headerFragment(p, h.has(http2.FlagContinuationEndHeaders))
}

// emit records one decoded header field of the block being read.
func (c *conn) emit(f hpack.HeaderField) {
	b := &c.block
	b.size += int(f.Size())
	if b.size > maxHeaderList {
		b.tooLarge = true
		return
	}
	switch f.Name {
	case ":method":
		b.method = f.Value
	case ":path":
		b.path = f.Value
	case "content-type":
		b.ctype = f.Value
	case "grpc-encoding":
		b.encoding = f.Value
	}
}

func (c *conn) headerFragment(p []byte, end bool) error {
	b := &c.block
	if b.frames++; b.frames > 64 { // a CONTINUATION flood
		return connError{code: http2.ErrCodeEnhanceYourCalm, msg: "header block in too many frames"}
	}
	if _, err := c.dec.Write(p); err != nil {
		return connError{code: http2.ErrCodeCompression, msg: err.Error()}
	}
	if !end {
		return nil
	}
	if err := c.dec.Close(); err != nil {
		return connError{code: http2.ErrCodeCompression, msg: err.Error()}
	}
	blk := *b
	*b = headerBlock{}
	return c.endHeaders(blk)
}

// endHeaders acts on a complete header block: a new stream, or trailers on an open one.
func (c *conn) endHeaders(b headerBlock) error {
	if st := c.stream(b.streamID); st != nil { // trailers: only END_STREAM matters
		if !b.endStream {
			return protocolError("second HEADERS without END_STREAM on stream %d", b.streamID)
		}
		return st.data(nil, 0, true)
	}
	c.mu.Lock()
	if b.streamID <= c.lastID {
		c.mu.Unlock()
		return nil // trailers of a stream weir has already ended
	}
	c.lastID = b.streamID
	open := len(c.streams)
	c.mu.Unlock()
	switch {
	case b.tooLarge:
		return c.refuse(b.streamID, http2.ErrCodeProtocol)
	case open >= maxStreams:
		return c.refuse(b.streamID, http2.ErrCodeRefusedStream)
	case b.method != "POST" || !isGRPC(b.ctype):
		return c.answer(b.streamID, status.New(codes.Unimplemented, "weir's xDS port speaks gRPC only"), b.endStream)
	case b.encoding != "" && b.encoding != "identity":
		return c.answer(b.streamID, status.Newf(codes.Unimplemented, "grpc-encoding %q is not supported", b.encoding), b.endStream)
	}
	native, blocking := c.srv.method(b.path)
	if native == nil && blocking == nil {
		return c.answer(b.streamID, status.Newf(codes.Unimplemented, "unknown method %s", b.path), b.endStream)
	}
	st := c.newStream(b.streamID)
	if native != nil {
		rcv, err := native(st)
		if err != nil {
			st.Finish(err)
			return nil
		}
		st.attach(rcv)
	} else {
		st.runBlocking(blocking)
	}
	if b.endStream {
		return st.data(nil, 0, true)
	}
	return nil
}

func isGRPC(ctype string) bool {
	return ctype == "application/grpc" || strings.HasPrefix(ctype, "application/grpc+") || strings.HasPrefix(ctype, "application/grpc;")
}

// refuse resets a stream weir will not open.
func (c *conn) refuse(id uint32, code http2.ErrCode) error {
	return c.writeFrame(rstStream(id, code))
}

func rstStream(id uint32, code http2.ErrCode) []byte {
	b := appendFrameHeader(make([]byte, 0, frameHeaderLen+4), 4, http2.FrameRSTStream, 0, id)
	return append(b, byte(code>>24), byte(code>>16), byte(code>>8), byte(code))
}

// answer ends a stream at once with a trailers-only response.
func (c *conn) answer(id uint32, s *status.Status, clientDone bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	bufs := net.Buffers{c.trailersLocked(id, s, true)}
	if !clientDone {
		bufs = append(bufs, rstStream(id, http2.ErrCodeNo))
	}
	return c.write(bufs)
}

// headersLocked encodes the response headers of stream id; the caller holds wmu.
func (c *conn) headersLocked(id uint32) []byte {
	c.ebuf.b = c.ebuf.b[:0]
	c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	c.enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
	return c.frameLocked(id, 0)
}

// trailersLocked encodes the trailers that end stream id, with the response headers
// folded in when none were sent (a trailers-only response).
func (c *conn) trailersLocked(id uint32, s *status.Status, only bool) []byte {
	c.ebuf.b = c.ebuf.b[:0]
	if only {
		c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		c.enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
	}
	c.enc.WriteField(hpack.HeaderField{Name: "grpc-status", Value: strconv.Itoa(int(s.Code()))})
	if msg := s.Message(); msg != "" {
		c.enc.WriteField(hpack.HeaderField{Name: "grpc-message", Value: encodeGRPCMessage(msg)})
	}
	return c.frameLocked(id, http2.FlagHeadersEndStream)
}

// frameLocked wraps the encoded block in HEADERS (and CONTINUATION) frames.
func (c *conn) frameLocked(id uint32, flags http2.Flags) []byte {
	block := c.ebuf.b
	var out []byte
	typ := http2.FrameHeaders
	for first := true; first || len(block) > 0; first = false {
		n := min(len(block), int(c.maxFrameSize()))
		f := flags
		if !first {
			typ, f = http2.FrameContinuation, 0
		}
		if n == len(block) {
			f |= http2.FlagHeadersEndHeaders
		}
		out = appendFrameHeader(out, n, typ, f, id)
		out = append(out, block[:n]...)
		block = block[n:]
	}
	return out
}

func (c *conn) maxFrameSize() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxFrame
}

// encodeGRPCMessage percent-encodes a status message as gRPC's wire spec asks.
func encodeGRPCMessage(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		ch := msg[i]
		if ch >= ' ' && ch <= '~' && ch != '%' {
			b.WriteByte(ch)
		} else {
			const hex = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&15])
		}
	}
	return b.String()
}
