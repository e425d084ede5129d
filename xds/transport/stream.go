package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
)

// ErrStreamDone is returned by sends on a stream that has ended.
var ErrStreamDone = errors.New("stream ended")

// Stream is one gRPC call on a connection.
type Stream struct {
	c      *conn
	id     uint32
	ctx    context.Context
	cancel context.CancelFunc

	// Reader-owned: the message being assembled.
	pre      [5]byte
	preN     int
	want     int // the message's length once its prefix is read, else -1
	msg      []byte
	recvOwed int // stream-level bytes read and not yet returned by WINDOW_UPDATE

	rcv     Receiver   // a natively handled stream
	q       *recvQueue // a stream run by a registered handler
	sendWin int64      // guarded by c.mu
	ended   bool       // end has run; guarded by c.mu

	headersSent bool        // guarded by c.wmu
	done        atomic.Bool // trailers sent or stream reset: nothing more is written
	clientDone  atomic.Bool // the client half-closed
	endOnce     sync.Once
}

func (c *conn) newStream(id uint32) *Stream {
	ctx, cancel := c.newStreamContext()
	c.mu.Lock()
	st := &Stream{c: c, id: id, ctx: ctx, cancel: cancel, want: -1, sendWin: int64(c.initWin)}
	c.streams = append(c.streams, st)
	c.mu.Unlock()
	return st
}

// Context ends when the stream does.
func (st *Stream) Context() context.Context { return st.ctx }

// RemoteAddr is the client's address.
func (st *Stream) RemoteAddr() net.Addr { return st.c.nc.RemoteAddr() }

// attach gives the stream its receiver; a stream that ended meanwhile (its open function
// finished it) closes the receiver at once.
func (st *Stream) attach(r Receiver) {
	st.c.mu.Lock()
	ended := st.ended
	if !ended {
		st.rcv = r
	}
	st.c.mu.Unlock()
	if ended {
		r.Close()
	}
}

// data takes a DATA frame's payload (n flow-controlled bytes) and delivers every message
// it completes.
func (st *Stream) data(b []byte, n int, end bool) error {
	for len(b) > 0 && !st.done.Load() {
		if st.want < 0 && st.preN == 0 {
			if msg, rest, ok := wholeMessage(b, st.c.srv.opts.MaxRecvMsgSize); ok {
				st.deliver(msg, false) // the usual case: the message lies in this frame
				b = rest
				continue
			}
		}
		if st.want < 0 {
			b = st.prefix(b)
			continue
		}
		k := min(len(b), st.want-len(st.msg))
		st.msg, b = append(st.msg, b[:k]...), b[k:]
		if len(st.msg) == st.want {
			msg := st.msg
			st.msg, st.want = nil, -1
			st.deliver(msg, true)
		}
	}
	if st.q == nil { // a native stream (or a refused one) has used its bytes already
		if err := st.returnWindow(n); err != nil {
			return err
		}
	} else {
		st.q.owe(n)
	}
	if end {
		st.clientDone.Store(true)
		if st.rcv != nil {
			st.Finish(nil) // as gRPC-go does when a handler's Recv sees the end
		} else if st.q != nil {
			st.q.closeSend()
		}
	}
	return nil
}

// wholeMessage returns the message at the start of b if all of it is there.
func wholeMessage(b []byte, max int) (msg, rest []byte, ok bool) {
	if len(b) < 5 || b[0] != 0 {
		return nil, b, false
	}
	size := int(binary.BigEndian.Uint32(b[1:]))
	if size > max || 5+size > len(b) {
		return nil, b, false
	}
	return b[5 : 5+size], b[5+size:], true
}

// prefix reads (the rest of) a message's 5-byte prefix from b and returns what follows.
func (st *Stream) prefix(b []byte) []byte {
	k := copy(st.pre[st.preN:], b)
	st.preN, b = st.preN+k, b[k:]
	if st.preN < len(st.pre) {
		return b
	}
	st.preN = 0
	max := st.c.srv.opts.MaxRecvMsgSize
	size := int(binary.BigEndian.Uint32(st.pre[1:]))
	switch {
	case st.pre[0] != 0:
		st.Finish(status.Error(codes.Unimplemented, "compressed messages are not supported"))
	case size > max:
		st.Finish(status.Errorf(codes.ResourceExhausted, "message of %d bytes is larger than the limit of %d", size, max))
	case size == 0:
		st.deliver(nil, false)
	default:
		st.want = size
		// Grown as bytes arrive, not allocated on the prefix's word alone.
		st.msg = make([]byte, 0, min(size, 64<<10))
	}
	return b
}

// deliver hands a message over. A borrowed message (owned false) lies in the read
// buffer: a native receiver reads it during the call; a queue needs a copy.
func (st *Stream) deliver(msg []byte, owned bool) {
	if st.rcv == nil {
		if !owned {
			msg = append([]byte(nil), msg...)
		}
		st.q.push(msg)
		return
	}
	if err := st.rcv.Message(msg); err != nil {
		st.Finish(err)
	}
}

// returnWindow gives read bytes back to the stream's window, in batches.
func (st *Stream) returnWindow(n int) error {
	st.recvOwed += n
	if st.recvOwed < defaultWindow/4 || st.done.Load() {
		return nil
	}
	inc := st.recvOwed
	st.recvOwed = 0
	return st.c.writeWindowUpdate(st.id, inc)
}

// Send encodes m with codec and sends it uncopied (SendMsg).
func (st *Stream) Send(codec encoding.CodecV2, m any) error {
	data, err := codec.Marshal(m)
	if err != nil {
		return status.Errorf(codes.Internal, "encode message: %v", err)
	}
	defer data.Free()
	parts := make([][]byte, len(data))
	for i, b := range data {
		parts[i] = b.ReadOnlyData()
	}
	return st.SendMsg(parts...)
}

// SendMsg sends one message made of parts, which are not copied and must not change
// until it returns. It blocks while flow control holds the message back, and fails once
// the stream has ended.
func (st *Stream) SendMsg(parts ...[]byte) error {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	var prefix [5]byte
	binary.BigEndian.PutUint32(prefix[1:], uint32(size))
	cur := cursor{bufs: append([][]byte{prefix[:]}, parts...)}
	for left := len(prefix) + size; left > 0; {
		n, err := st.reserve(min(left, writeBatch))
		if err != nil {
			return err
		}
		if err := st.writeData(&cur, n); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

// writeBatch bounds one write: the kernel's iovec array for it stays with the socket
// (internal/poll keeps it per file descriptor), so a megabyte written in one writev would
// pin kilobytes per idle connection; streams sharing a connection also take turns.
const writeBatch = 128 << 10

// reserve takes up to want bytes of send window, waiting for some.
func (st *Stream) reserve(want int) (int, error) {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if st.done.Load() || c.closed {
			return 0, ErrStreamDone
		}
		if avail := min(c.sendWin, st.sendWin); avail > 0 {
			n := min(int64(want), avail)
			c.sendWin -= n
			st.sendWin -= n
			return int(n), nil
		}
		c.sendReady.Wait()
	}
}

// writeData writes n bytes of cur as DATA frames, headers first if none were sent.
func (st *Stream) writeData(cur *cursor, n int) error {
	c := st.c
	frame := int(c.maxFrameSize())
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if st.done.Load() {
		// The window taken for bytes never sent goes back to the connection, or the
		// other streams would wait for WINDOW_UPDATEs that never come.
		c.mu.Lock()
		c.sendWin += int64(n)
		c.sendReady.Broadcast()
		c.mu.Unlock()
		return ErrStreamDone
	}
	var bufs net.Buffers
	if !st.headersSent {
		st.headersSent = true
		bufs = append(bufs, c.headersLocked(st.id))
	}
	heads := make([]byte, 0, frameHeaderLen*((n+frame-1)/frame))
	for n > 0 {
		k := min(n, frame)
		heads = appendFrameHeader(heads, k, http2.FrameData, 0, st.id)
		bufs = append(bufs, heads[len(heads)-frameHeaderLen:])
		bufs = cur.take(k, bufs)
		n -= k
	}
	c.sentData.Store(true)
	return c.write(bufs)
}

// Finish ends the stream with err's gRPC status (OK for nil): trailers, then a reset if
// the client is still sending, as gRPC-go does. It is a no-op on an ended stream.
func (st *Stream) Finish(err error) {
	c := st.c
	c.wmu.Lock()
	if st.done.Swap(true) {
		c.wmu.Unlock()
		return
	}
	s := status.Convert(err)
	if err == nil {
		s = status.New(codes.OK, "")
	}
	bufs := net.Buffers{c.trailersLocked(st.id, s, !st.headersSent)}
	if !st.clientDone.Load() {
		bufs = append(bufs, rstStream(st.id, http2.ErrCodeNo))
	}
	_ = c.write(bufs)
	c.wmu.Unlock()
	st.end(err, true)
}

// end releases the stream: no more messages, its context cancelled, its receiver closed.
// finished says whether trailers were sent; otherwise the stream was reset or its
// connection lost.
func (st *Stream) end(err error, finished bool) {
	st.endOnce.Do(func() {
		st.done.Store(true)
		st.c.mu.Lock()
		st.ended = true
		rcv := st.rcv
		st.c.mu.Unlock()
		st.c.remove(st)
		st.cancel()
		if rcv != nil {
			rcv.Close()
		}
		if st.q != nil {
			if err == nil || finished {
				err = status.Error(codes.Canceled, "stream ended")
			}
			st.q.abort(err)
		}
	})
}

// cursor walks a list of byte slices.
type cursor struct{ bufs [][]byte }

// take appends the next n bytes to out, as sub-slices.
func (c *cursor) take(n int, out net.Buffers) net.Buffers {
	for n > 0 {
		b := c.bufs[0]
		if len(b) == 0 {
			c.bufs = c.bufs[1:]
			continue
		}
		k := min(n, len(b))
		out = append(out, b[:k])
		c.bufs[0] = b[k:]
		n -= k
	}
	return out
}
