package transport

import (
	"context"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// queueLimit bounds the bytes of received messages a handler has not taken yet; past it
// the client's stream window is not returned, so the client waits.
const queueLimit = 4 << 20

// runBlocking runs a registered handler for st on a goroutine of its own.
func (st *Stream) runBlocking(m *blockingMethod) {
	q := &recvQueue{st: st}
	q.cond.L = &q.mu
	st.q = q
	ss := &serverStream{st: st, codec: st.c.srv.opts}
	// Counted like the connection's goroutine (which is running, so the count is not
	// zero): Stop returns once handlers have returned, as grpc.Server's does.
	st.c.srv.running.Add(1)
	go func() {
		defer st.c.srv.running.Done()
		defer func() {
			if r := recover(); r != nil {
				st.c.srv.panicked(r)
				st.Finish(status.Error(codes.Internal, "handler panicked"))
			}
		}()
		st.Finish(m.desc.Handler(m.impl, ss))
	}()
}

// recvQueue holds the messages of a stream run by a registered handler.
type recvQueue struct {
	st     *Stream
	mu     sync.Mutex
	cond   sync.Cond
	msgs   [][]byte
	queued int   // bytes in msgs
	owed   int   // flow-controlled bytes read and not yet returned to the client
	eof    bool  // the client half-closed
	err    error // the stream ended
}

func (q *recvQueue) push(msg []byte) {
	q.mu.Lock()
	q.msgs = append(q.msgs, msg)
	q.queued += len(msg)
	q.cond.Signal()
	q.mu.Unlock()
}

// owe records n bytes read from the client, and returns them to its window while the
// handler keeps up.
func (q *recvQueue) owe(n int) {
	q.mu.Lock()
	q.owed += n
	inc := q.releasable()
	q.mu.Unlock()
	if inc > 0 {
		_ = q.st.c.writeWindowUpdate(q.st.id, inc)
	}
}

func (q *recvQueue) releasable() int {
	if q.queued >= queueLimit || q.owed < defaultWindow/4 || q.err != nil {
		return 0
	}
	inc := q.owed
	q.owed = 0
	return inc
}

func (q *recvQueue) closeSend() {
	q.mu.Lock()
	q.eof = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

func (q *recvQueue) abort(err error) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	q.cond.Broadcast()
	q.mu.Unlock()
}

// pop waits for the next message; io.EOF once the client has half-closed and every
// message is taken.
func (q *recvQueue) pop() ([]byte, error) {
	q.mu.Lock()
	for len(q.msgs) == 0 && !q.eof && q.err == nil {
		q.cond.Wait()
	}
	if q.err != nil {
		defer q.mu.Unlock()
		return nil, q.err
	}
	if len(q.msgs) == 0 {
		q.mu.Unlock()
		return nil, io.EOF
	}
	msg := q.msgs[0]
	q.msgs[0] = nil
	q.msgs = q.msgs[1:]
	q.queued -= len(msg)
	inc := q.releasable()
	q.mu.Unlock()
	if inc > 0 {
		_ = q.st.c.writeWindowUpdate(q.st.id, inc)
	}
	return msg, nil
}

// serverStream is the grpc.ServerStream a registered handler sees.
type serverStream struct {
	st    *Stream
	codec Options
}

var _ grpc.ServerStream = (*serverStream)(nil)

func (s *serverStream) Context() context.Context { return s.st.ctx }

// Metadata is neither read nor sent: xDS uses none.
func (s *serverStream) SetHeader(metadata.MD) error  { return nil }
func (s *serverStream) SendHeader(metadata.MD) error { return nil }
func (s *serverStream) SetTrailer(metadata.MD)       {}

func (s *serverStream) SendMsg(m any) error { return s.st.Send(s.codec.Codec, m) }

func (s *serverStream) RecvMsg(m any) error {
	msg, err := s.st.q.pop()
	if err != nil {
		return err
	}
	if err := s.codec.Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(msg)}, m); err != nil {
		return status.Errorf(codes.Internal, "decode request: %v", err)
	}
	return nil
}
