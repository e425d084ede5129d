package xds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/weir-mesh/weir/model"
	"github.com/weir-mesh/weir/xds/transport"
)

// Options tune the server.
type Options struct {
	// StageTimeout bounds each make-before-break wait for ACKs.
	StageTimeout time.Duration
	// ClassGrace is how long a class is kept after its last proxy left, so a reconnecting
	// proxy finds its config ready.
	ClassGrace time.Duration
	// SendBudget bounds the bytes sent and not yet ACKed across all proxies (default 64
	// MiB; negative: unbounded), so a crowd of proxies connecting at once costs bounded
	// memory instead of one marshaled copy of the whole config each.
	SendBudget int64
	// Services are more gRPC services served on the xDS port, such as the metrics
	// service Envoy sends its stats to.
	Services []func(grpc.ServiceRegistrar)
}

// Server is weir's ADS server.
type Server struct {
	log     *zap.Logger
	opts    Options
	metrics *metrics
	reg     *registry
	cache   *sharedCache
	pub     *publisher
	budget  *sendBudget
	codec   internCodec

	ctx context.Context

	mu          sync.Mutex
	onClass     func(model.ProxyClass)
	onClassGone func(key string)
}

// New builds a server whose goroutines live as long as ctx; metrics are registered on reg
// (nil: not registered).
func New(ctx context.Context, log *zap.Logger, reg prometheus.Registerer, opts Options) *Server {
	if opts.StageTimeout <= 0 {
		opts.StageTimeout = 5 * time.Second
	}
	if opts.ClassGrace <= 0 {
		opts.ClassGrace = time.Minute
	}
	if opts.SendBudget == 0 {
		opts.SendBudget = 64 << 20
	}
	s := &Server{log: log, opts: opts, metrics: newMetrics(reg), reg: newRegistry(), ctx: ctx, codec: newInternCodec(),
		budget: newSendBudget(opts.SendBudget, 10*time.Second)}
	s.cache = newSharedCache(s.reg)
	s.pub = newPublisher(s)
	return s
}

// OnClass registers the function told about a proxy class the first time a proxy of that
// class connects, so that its config can be built. Call before Serve.
func (s *Server) OnClass(fn func(model.ProxyClass)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onClass = fn
}

// OnClassGone registers the function told when a class is forgotten: no proxy of it has
// been connected for Options.ClassGrace. Call before Serve.
func (s *Server) OnClassGone(fn func(key string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onClassGone = fn
}

// forgetLater drops a class whose last proxy left, unless one is back by then. Without
// this, classes that churn (labels change with every deployment) would be translated
// forever.
func (s *Server) forgetLater(key string) {
	time.AfterFunc(s.opts.ClassGrace, func() {
		if s.ctx.Err() != nil || s.reg.classCount(key) > 0 {
			return
		}
		s.pub.forget(key)
		s.mu.Lock()
		gone := s.onClassGone
		s.mu.Unlock()
		if gone != nil {
			gone(key)
		}
		// A proxy that connected while we forgot must not be left without config.
		if class, ok := s.reg.class(key); ok {
			s.classSeen(class)
		}
		s.log.Info("forgot proxy class with no proxies", zap.String("class", key))
	})
}

func (s *Server) classSeen(class model.ProxyClass) {
	s.mu.Lock()
	fn := s.onClass
	s.mu.Unlock()
	if fn != nil {
		fn(class)
	}
}

// Publish sets the config every proxy of a class should serve. Resources that are not
// consistent (a route naming a missing route config, an EDS cluster without endpoints
// resource) are refused and the previous config keeps serving.
func (s *Server) Publish(class string, res *Resources) error {
	return s.pub.set(s.ctx, class, res)
}

// Proxies lists every connected proxy with its versions and NACKs.
func (s *Server) Proxies() []ProxyStatus { return s.reg.list() }

// ErrUnknownProxy is returned for a node id no connected proxy has.
var ErrUnknownProxy = errors.New("no connected proxy with that node id")

// Config returns what one connected proxy is being served, keyed by short type name
// (cds, eds, lds, rds), each list sorted by resource name.
func (s *Server) Config(nodeID string) (map[string][]types.Resource, error) {
	for _, p := range s.reg.list() {
		if p.NodeID == nodeID {
			out := map[string][]types.Resource{}
			for t, rs := range s.pub.served(p.Class) {
				out[shortType(t)] = rs
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownProxy, nodeID)
}

// Classes returns the classes of the proxies connected now.
func (s *Server) Classes() map[string]model.ProxyClass { return s.reg.classes() }

// Serve serves ADS on lis until the server's context ends.
//
// The transport is weir's own (xds/transport), not grpc.Server: gRPC-go runs four
// goroutines per connection (reader, writer, keepalive and the stream's handler), about
// 20 KB of stack per proxy that no tuning removes; weir's runs one. State-of-the-world
// ADS, what Envoy speaks, is served natively; delta ADS and the other services run their
// gRPC handlers as usual.
func (s *Server) Serve(lis net.Listener) error {
	ctx := s.ctx
	cb := &callbacks{s: s}
	xs := &adsServer{Server: serverv3.NewServer(ctx, s.cache, cb, sotw.WithLogger(zapAdapter{s.log.Named("ads")})), s: s, cb: cb}
	t := transport.NewServer(s.log.Named("transport"), transport.Options{Codec: s.codec, OnPanic: s.metrics.panics.Inc})
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(t, xs)
	t.HandleStream(discoveryv3.AggregatedDiscoveryService_StreamAggregatedResources_FullMethodName, xs.openSotw)
	for _, register := range s.opts.Services {
		register(t)
	}
	errc := make(chan error, 1)
	go func() { errc <- t.Serve(lis) }()
	select {
	case <-ctx.Done():
		t.Stop()
		<-errc
		return nil
	case err := <-errc:
		t.Stop()
		return fmt.Errorf("serve xds: %w", err)
	}
}

// zapAdapter lets go-control-plane log through zap at debug level.
type zapAdapter struct{ l *zap.Logger }

func (z zapAdapter) Debugf(f string, a ...any) { z.l.Sugar().Debugf(f, a...) }
func (z zapAdapter) Infof(f string, a ...any)  { z.l.Sugar().Debugf(f, a...) }
func (z zapAdapter) Warnf(f string, a ...any)  { z.l.Sugar().Warnf(f, a...) }
func (z zapAdapter) Errorf(f string, a ...any) { z.l.Sugar().Errorf(f, a...) }
