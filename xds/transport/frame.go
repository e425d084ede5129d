package transport

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/http2"
)

// The HTTP/2 pieces this server speaks (RFC 9113). Frames are read and written here, not
// through http2.Framer, because a Framer keeps its largest read and write buffers for as
// long as the connection lives: 16 KB or more for each of thousands of idle proxies.
const (
	frameHeaderLen = 9
	// maxReadFrame is the largest frame weir accepts: the default SETTINGS_MAX_FRAME_SIZE,
	// which weir never raises.
	maxReadFrame = 16384
	// defaultWindow is the flow-control window every stream and connection starts with.
	defaultWindow = 65535
	// connWindow is what weir lets a client send on a connection before it is read: the
	// connection window is raised to it at once.
	connWindow = 1 << 20
	// maxHeaderList bounds the decoded size of one header block.
	maxHeaderList = 64 << 10
	// maxStreams is SETTINGS_MAX_CONCURRENT_STREAMS: an Envoy opens one or two streams on
	// its xDS connection; load tools multiplex more.
	maxStreams = 1000
)

const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

type frameHeader struct {
	length   uint32
	typ      http2.FrameType
	flags    http2.Flags
	streamID uint32
}

func (h frameHeader) has(f http2.Flags) bool { return h.flags&f != 0 }

func parseFrameHeader(b *[frameHeaderLen]byte) frameHeader {
	return frameHeader{
		length:   uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		typ:      http2.FrameType(b[3]),
		flags:    http2.Flags(b[4]),
		streamID: binary.BigEndian.Uint32(b[5:]) & (1<<31 - 1),
	}
}

func appendFrameHeader(b []byte, length int, typ http2.FrameType, flags http2.Flags, streamID uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), byte(typ), byte(flags),
		byte(streamID>>24), byte(streamID>>16), byte(streamID>>8), byte(streamID))
}

// connError ends the connection with a GOAWAY carrying code.
type connError struct {
	code http2.ErrCode
	msg  string
}

func (e connError) Error() string { return fmt.Sprintf("http2 %v: %s", e.code, e.msg) }

func protocolError(format string, a ...any) error {
	return connError{code: http2.ErrCodeProtocol, msg: fmt.Sprintf(format, a...)}
}

// unpad strips the padding of a DATA or HEADERS frame.
func unpad(h frameHeader, p []byte) ([]byte, error) {
	if !h.has(http2.FlagDataPadded) { // same bit as FlagHeadersPadded
		return p, nil
	}
	if len(p) < 1 || int(p[0]) > len(p)-1 {
		return nil, protocolError("bad padding on stream %d", h.streamID)
	}
	return p[1 : len(p)-int(p[0])], nil
}
