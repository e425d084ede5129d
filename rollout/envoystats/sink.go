// Package envoystats is weir's own metrics provider for rollouts: it serves Envoy's
// metrics service, keeps a few minutes of each proxy's outbound cluster statistics and
// measures the built-in metrics (success rate, error rate, latency percentile) from them.
package envoystats

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Defaults of the sink's options.
const (
	// DefaultMaxRetention caps how far back the sink keeps samples.
	DefaultMaxRetention = 15 * time.Minute
	// DefaultMaxSamples caps the samples kept per cluster and proxy. At the maximum
	// retention it makes the step 9.1 s, so 5 s flushes are never merged.
	DefaultMaxSamples = 200
	// initialRetention is kept before any query says how long a window is.
	initialRetention = 5 * time.Minute
	// sweepEvery is how often ended streams and old samples are looked for.
	sweepEvery = 30 * time.Second
)

// Sink receives proxies' statistics over Envoy's metrics service and measures the
// built-in rollout metrics from them. It implements rollout.Provider.
type Sink struct {
	log   *zap.Logger
	opts  options
	epoch time.Time
	m     *metrics
	// retention is the longest window asked so far, within [initial, max] retention.
	retention atomic.Int64

	mu        sync.Mutex
	streams   map[uint64]*stream
	nextID    uint64
	lastSweep instant
}

type options struct {
	clock        func() time.Time
	maxRetention time.Duration
	maxSamples   int
}

// Option configures a Sink.
type Option func(*options)

// WithClock sets the clock the sink timestamps samples and measures windows with.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithMaxRetention caps how far back samples are kept (default 15 minutes): the longest
// window a query can measure in full.
func WithMaxRetention(d time.Duration) Option { return func(o *options) { o.maxRetention = d } }

// WithMaxSamples caps the samples kept per cluster and proxy (default 200, at least 3).
// Flushes within 2·retention/(maxSamples-2) of each other may be added into one sample.
func WithMaxSamples(n int) Option { return func(o *options) { o.maxSamples = n } }

// NewSink returns a sink that logs through log and registers its metrics on reg (which
// may be nil). Register serves it on a gRPC server.
func NewSink(log *zap.Logger, reg prometheus.Registerer, opts ...Option) *Sink {
	o := options{clock: time.Now, maxRetention: DefaultMaxRetention, maxSamples: DefaultMaxSamples}
	for _, opt := range opts {
		opt(&o)
	}
	o.maxRetention = max(o.maxRetention, time.Second)
	o.maxSamples = max(o.maxSamples, 3)
	s := &Sink{
		log:     log.Named("envoystats"),
		opts:    o,
		epoch:   o.clock(),
		m:       newMetrics(reg),
		streams: map[uint64]*stream{},
	}
	s.retention.Store(int64(min(initialRetention, o.maxRetention)))
	return s
}

// Register serves envoy.service.metrics.v3.MetricsService on g.
func (s *Sink) Register(g grpc.ServiceRegistrar) { g.RegisterService(&serviceDesc, s) }

// serviceDesc is the generated MetricsService description with a handler that receives
// each message undecoded (as emptypb.Empty, whose unknown fields keep the bytes), so that
// the tens of thousands of statistics weir does not need are skipped without being
// decoded: see readMessage.
var serviceDesc = grpc.ServiceDesc{
	ServiceName: metricsv3.MetricsService_ServiceDesc.ServiceName,
	HandlerType: (*interface{ streamMetrics(grpc.ServerStream) error })(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "StreamMetrics",
		Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(*Sink).streamMetrics(ss) },
		ClientStreams: true,
	}},
	Metadata: metricsv3.MetricsService_ServiceDesc.Metadata,
}

// streamMetrics reads one proxy's flushes until it hangs up. Envoy expects no answer
// but the stream's end.
func (s *Sink) streamMetrics(ss grpc.ServerStream) (err error) {
	st := s.open()
	defer func() {
		if r := recover(); r != nil {
			s.m.panics.Inc()
			s.log.Error("metrics stream panicked; dropping it", zap.Any("panic", r), zap.Stack("stack"))
			err = status.Error(codes.Internal, "metrics stream failed")
		}
		s.close(st, err)
	}()
	var raw emptypb.Empty
	for {
		if err := ss.RecvMsg(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return ss.SendMsg(&metricsv3.StreamMetricsResponse{})
			}
			return err
		}
		m, err := readMessage(raw.ProtoReflect().GetUnknown(), !st.flush.over)
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		s.ingest(st, m)
	}
}

func (s *Sink) open() *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	st := &stream{id: s.nextID, open: true, series: map[string]*series{}}
	s.streams[st.id] = st
	s.m.streams.Inc()
	return st
}

// close marks the stream ended; its samples stay until the retention passes.
func (s *Sink) close(st *stream, err error) {
	now := s.now()
	st.mu.Lock()
	st.open, st.ended = false, now
	node := st.node
	st.mu.Unlock()
	s.m.streams.Dec()
	fields := []zap.Field{zap.String("node_id", node), zap.Uint64("stream", st.id)}
	if err != nil && status.Code(err) != codes.Canceled {
		fields = append(fields, zap.Error(err))
	}
	s.log.Info("metrics stream ended", fields...)
}

// ingest records one message.
func (s *Sink) ingest(st *stream, m message) {
	now := s.now()
	created := st.apply(m, now, s.limits())
	s.m.series.Add(float64(created))
	s.m.messages.Inc()
	if !st.started {
		st.started = true
		s.log.Info("metrics stream started", zap.String("node_id", m.nodeID), zap.Uint64("stream", st.id))
	}
	if m.noBuckets > 0 && !st.warned {
		st.warned = true
		s.log.Warn("proxy sends upstream_rq_time without buckets; request-duration needs histogram_emit_mode: HISTOGRAM in its metrics service sink",
			zap.Uint64("stream", st.id))
	}
	s.log.Debug("metrics received", zap.Uint64("stream", st.id), zap.Int("families", m.families), zap.Int("kept", len(m.updates)))
	s.maybeSweep(now)
}

func (s *Sink) now() instant { return instant(s.opts.clock().Sub(s.epoch)) }

func (s *Sink) limits() limits {
	r := time.Duration(s.retention.Load())
	return limits{retention: r, step: max(2*r/time.Duration(s.opts.maxSamples-2), 1), maxSamples: s.opts.maxSamples}
}

// list returns the streams held now, open or not.
func (s *Sink) list() []*stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*stream, 0, len(s.streams))
	for _, st := range s.streams {
		out = append(out, st)
	}
	return out
}

// maybeSweep, at most every sweepEvery, drops samples past the retention and the streams
// that ended longer than the retention ago. The series of an open stream stay, samples
// or not: their last counter values are what the next flush is measured against.
func (s *Sink) maybeSweep(now instant) {
	s.mu.Lock()
	if now-s.lastSweep < instant(sweepEvery) {
		s.mu.Unlock()
		return
	}
	s.lastSweep = now
	s.mu.Unlock()
	lim := s.limits()
	for _, st := range s.list() {
		st.mu.Lock()
		for _, se := range st.series {
			se.prune(now, lim)
		}
		gone := !st.open && now-st.ended > instant(lim.retention)
		n := len(st.series)
		st.mu.Unlock()
		if gone {
			s.mu.Lock()
			delete(s.streams, st.id)
			s.mu.Unlock()
			s.m.series.Sub(float64(n))
		}
	}
}
