// Package transport serves gRPC over HTTP/2 for long-lived streams, with one goroutine
// per connection: a proxy at rest costs one parked reader, not gRPC-go's four goroutines.
//
// Streams handled natively (HandleStream) receive each message on the connection's
// reader goroutine and send from whichever goroutine has something to say. Other
// services (RegisterService, the grpc.ServiceRegistrar interface) run their generated
// handlers on a goroutine per stream, as in gRPC-go. Only what xDS needs is spoken: no
// unary methods, no compression, no TLS; a stream is refused, never half-served.
package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

// Receiver gets the messages of one natively handled stream, on the connection's reader
// goroutine: Message must not block, and b is valid only during the call. An error from
// Message ends the stream with that error's gRPC status. Close is called once, when the
// stream ends for any reason; after it no Message is delivered, except that one already
// under way when another goroutine calls Finish may still be running.
type Receiver interface {
	Message(b []byte) error
	Close()
}

// OpenFunc starts a natively handled stream. Returning an error refuses it with that
// error's status.
type OpenFunc func(st *Stream) (Receiver, error)

// Options tune a Server; the zero value works.
type Options struct {
	// Codec encodes and decodes the messages of registered services (default: gRPC's
	// proto codec).
	Codec encoding.CodecV2
	// MaxRecvMsgSize bounds one received message (default 64 MiB: an Envoy with thousands
	// of clusters sends large stats flushes).
	MaxRecvMsgSize int
	// WriteTimeout closes a connection whose peer stops reading (default 30 s).
	WriteTimeout time.Duration
	// KeepAlive probes an idle connection's peer at the TCP level (default 30 s idle,
	// then every 10 s, 3 probes), so a proxy that vanished is noticed without a goroutine
	// per connection.
	KeepAlive net.KeepAliveConfig
	// MinPingInterval is how often a client may ping while nothing else flows; a client
	// that pings faster three times running loses its connection (default 10 s, as
	// gRPC-go's keepalive enforcement that weir used before).
	MinPingInterval time.Duration
	// OnPanic counts a panic recovered in a connection or handler goroutine.
	OnPanic func()
}

// Server serves registered streaming methods until Stop.
type Server struct {
	log  *zap.Logger
	opts Options

	mu       sync.Mutex
	native   map[string]OpenFunc
	blocking map[string]blockingMethod
	conns    map[*conn]struct{}
	lis      []net.Listener
	stopped  bool
	running  sync.WaitGroup // connection and handler goroutines
}

type blockingMethod struct {
	desc grpc.StreamDesc
	impl any
}

// NewServer returns a server that logs through log.
func NewServer(log *zap.Logger, opts Options) *Server {
	if opts.Codec == nil {
		opts.Codec = encoding.GetCodecV2("proto")
	}
	if opts.MaxRecvMsgSize <= 0 {
		opts.MaxRecvMsgSize = 64 << 20
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	if opts.MinPingInterval <= 0 {
		opts.MinPingInterval = 10 * time.Second
	}
	if !opts.KeepAlive.Enable {
		opts.KeepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3}
	}
	return &Server{log: log, opts: opts, native: map[string]OpenFunc{}, blocking: map[string]blockingMethod{}, conns: map[*conn]struct{}{}}
}

var _ grpc.ServiceRegistrar = (*Server)(nil)

// RegisterService serves desc's streaming methods, each stream on a goroutine of its own
// running desc's handler. Unary methods are answered Unimplemented.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range desc.Streams {
		s.blocking["/"+desc.ServiceName+"/"+m.StreamName] = blockingMethod{desc: m, impl: impl}
	}
}

// HandleStream serves the method at path (/package.Service/Method) natively; it takes
// precedence over a registered service's method of the same path.
func (s *Server) HandleStream(path string, open OpenFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.native[path] = open
}

// Serve accepts connections on lis until Stop, which makes it return nil.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		lis.Close()
		return nil
	}
	s.lis = append(s.lis, lis)
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := lis.Accept()
		if err != nil {
			if s.isStopped() {
				return nil
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		delay = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetKeepAliveConfig(s.opts.KeepAlive)
			_ = tc.SetNoDelay(true)
		}
		c := newConn(s, nc)
		if !s.track(c) {
			nc.Close()
			return nil
		}
		go func() {
			defer s.running.Done()
			c.serve()
		}()
	}
}

// Stop closes the listeners and every connection, and returns once their streams have
// ended.
func (s *Server) Stop() {
	s.mu.Lock()
	s.stopped = true
	lis, conns := s.lis, s.conns
	s.lis, s.conns = nil, map[*conn]struct{}{}
	s.mu.Unlock()
	for _, l := range lis {
		l.Close()
	}
	for c := range conns {
		c.shutdown()
	}
	s.running.Wait()
}

func (s *Server) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.conns[c] = struct{}{}
	s.running.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// method finds what serves path.
func (s *Server) method(path string) (OpenFunc, *blockingMethod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if open, ok := s.native[path]; ok {
		return open, nil
	}
	if m, ok := s.blocking[path]; ok {
		return nil, &m
	}
	return nil, nil
}

func (s *Server) panicked(r any) {
	if s.opts.OnPanic != nil {
		s.opts.OnPanic()
	}
	s.log.Error("xDS transport recovered a panic", zap.Any("panic", r), zap.Stack("stack"))
}

// serverContext is the parent of every stream's context.
var serverContext = context.Background()
