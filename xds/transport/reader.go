package transport

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
)

// readBufSize is how much one read takes from the socket: an ACK, a window update and a
// ping arrive together and are handled after one system call.
const readBufSize = 32 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// reader buffers a connection's input in a pooled buffer that it holds only while it has
// unread bytes: a connection waiting for its proxy's next request holds none. It waits
// for the socket to be readable before taking a buffer (syscall.RawConn), and falls back
// to plain reads on connections that are not sockets.
type reader struct {
	nc   net.Conn
	raw  syscall.RawConn
	buf  *[]byte
	r, w int
}

func newReader(nc net.Conn) *reader {
	rd := &reader{nc: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			rd.raw = raw
		}
	}
	return rd
}

func (rd *reader) buffered() int { return rd.w - rd.r }

// release returns the buffer once everything in it is read.
func (rd *reader) release() {
	if rd.buf != nil && rd.r == rd.w {
		readBufs.Put(rd.buf)
		rd.buf, rd.r, rd.w = nil, 0, 0
	}
}

// fill reads at least one more byte into the buffer.
func (rd *reader) fill() error {
	if rd.buf == nil {
		rd.buf = readBufs.Get().(*[]byte)
	}
	if rd.r > 0 && rd.w == len(*rd.buf) { // make room at the end
		rd.w = copy(*rd.buf, (*rd.buf)[rd.r:rd.w])
		rd.r = 0
	}
	if rd.raw == nil {
		n, err := rd.nc.Read((*rd.buf)[rd.w:])
		rd.w += n
		if n > 0 {
			return nil
		}
		rd.release()
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	var n int
	var rerr error
	err := rd.raw.Read(func(fd uintptr) bool {
		if rd.buf == nil {
			rd.buf = readBufs.Get().(*[]byte)
		}
		n, rerr = syscall.Read(int(fd), (*rd.buf)[rd.w:])
		if rerr == syscall.EINTR {
			return false
		}
		if rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK {
			rd.release() // nothing to read: wait without a buffer
			return false
		}
		return true
	})
	switch {
	case err != nil:
		rd.release()
		return err
	case rerr != nil:
		rd.release()
		return rerr
	case n <= 0:
		rd.release()
		return io.EOF
	}
	rd.w += n
	return nil
}

// next returns the next n bytes (n ≤ readBufSize), valid until the following call. They
// are read into the buffer first if needed.
func (rd *reader) next(n int) ([]byte, error) {
	if n > readBufSize {
		return nil, errors.New("read larger than the buffer")
	}
	for rd.buffered() < n {
		if rd.buf != nil && len(*rd.buf)-rd.r < n { // not enough room after r
			rd.w = copy(*rd.buf, (*rd.buf)[rd.r:rd.w])
			rd.r = 0
		}
		if err := rd.fill(); err != nil {
			return nil, err
		}
	}
	b := (*rd.buf)[rd.r : rd.r+n]
	rd.r += n
	return b, nil
}
