package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

// basePort is the first outbound_port; the port is what puts streams in distinct classes.
const basePort = 20000

// pollInterval is how often a session looks at the streams' progress. It bounds how late
// a wait returns, not what it measures: every time is taken by the stream itself.
const pollInterval = 50 * time.Millisecond

// Run opens cfg.Streams ADS streams, waits until each has its first full config (and,
// with WatchChange, until the next RDS change has converged) or cfg.Duration passes,
// then closes every stream and returns what it measured.
func Run(ctx context.Context, log *zap.Logger, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()

	s, err := Start(ctx, log, cfg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	allUp := s.WaitUp(ctx)
	res := s.Result()
	since := time.Now()
	if allUp && cfg.OnAllUp != nil {
		cfg.OnAllUp()
	}
	if allUp && cfg.WatchChange {
		res.Convergence = s.WaitChange(ctx, resourcev3.RouteType, since)
	}
	res.BytesByType = s.counters.bytesByType()
	res.Versions = versionSummary(s.views(), s.start)
	return res, nil
}

// Session is a set of live ADS streams on which a caller runs phases: wait until all are
// up, change the server's input, wait until the change has converged, read the traffic
// counters, and so on, then Close.
type Session struct {
	cfg      Config
	log      *zap.Logger
	conns    []*grpc.ClientConn
	start    time.Time
	counters *typeCounters
	names    *sharedNames
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	close    sync.Once

	mu         sync.Mutex
	streams    []*streamStats
	lastOpened time.Time // when the ramp opened the last stream
}

// Start dials the server and opens cfg.Streams streams at cfg.Ramp per second, in the
// background: it returns at once. The streams live until ctx ends or Close is called;
// cfg.Duration and the callbacks of cfg are Run's and are ignored here.
func Start(ctx context.Context, log *zap.Logger, cfg Config) (*Session, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	conns, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Session{cfg: cfg, log: log, conns: conns, start: time.Now(), counters: &typeCounters{},
		names: &sharedNames{}, cancel: cancel, streams: make([]*streamStats, 0, cfg.Streams)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.launch(ctx)
	}()
	return s, nil
}

// Close ends every stream and connection and waits for their goroutines. It is safe to
// call more than once.
func (s *Session) Close() {
	s.close.Do(func() {
		s.cancel()
		s.wg.Wait()
		closeAll(s.conns)
	})
}

// Counts returns, per type (cds, eds, lds, rds), what all streams have received since
// the session started. Diff two readings to get what a phase caused.
func (s *Session) Counts() map[string]Counters {
	return s.counters.counts()
}

// Streams is the number of streams the session opens.
func (s *Session) Streams() int { return s.cfg.Streams }

func dial(cfg Config) ([]*grpc.ClientConn, error) {
	n := (cfg.Streams + cfg.StreamsPerConn - 1) / cfg.StreamsPerConn
	conns := make([]*grpc.ClientConn, 0, n)
	for range n {
		c, err := grpc.NewClient(cfg.Target,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			// A large mesh's RDS exceeds gRPC's 4 MiB default, and Envoy has no such limit.
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30), grpc.ForceCodecV2(newLightCodec())))
		if err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("dial %s: %w", cfg.Target, err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []*grpc.ClientConn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// launch opens the streams at cfg.Ramp per second so that a large run measures the
// server, not a thundering herd of simultaneous connects. Stream i opens at i/Ramp
// seconds; when the machine falls behind, the late streams open at once to catch up,
// so the ramp takes Streams/Ramp seconds however busy the client is.
func (s *Session) launch(ctx context.Context) {
	var interval time.Duration
	if s.cfg.Ramp > 0 {
		interval = time.Duration(float64(time.Second) / s.cfg.Ramp)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i := range s.cfg.Streams {
		if wait := time.Until(s.start.Add(time.Duration(i) * interval)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		st := newStreamStats(fmt.Sprintf("%s%d", s.cfg.IDPrefix, i))
		s.mu.Lock()
		s.streams = append(s.streams, st)
		s.lastOpened = time.Now()
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runStream(ctx, i, st)
		}()
	}
}

func (s *Session) runStream(ctx context.Context, i int, st *streamStats) {
	conn := s.conns[i/s.cfg.StreamsPerConn]
	node := s.node(i, st.nodeID)
	var err error
	if s.cfg.Delta {
		err = (&deltaStream{index: i, node: node, stats: st, counters: s.counters, shared: s.names, ackable: s.cfg.ackFilter}).run(ctx, conn)
	} else {
		err = (&sotwStream{index: i, node: node, stats: st, counters: s.counters, shared: s.names, ackable: s.cfg.ackFilter}).run(ctx, conn)
	}
	if ctx.Err() == nil && err != nil {
		st.fail(err)
		s.log.Debug("stream ended", zap.String("node_id", st.nodeID), zap.Error(err))
	}
}

// node builds the Envoy node: the outbound port alone spreads streams over classes.
func (s *Session) node(i int, id string) *corev3.Node {
	md, _ := structpb.NewStruct(map[string]any{
		"role":          "sidecar",
		"namespace":     s.cfg.Namespace,
		"labels":        map[string]any{"app": "load"},
		"outbound_port": float64(basePort + i%s.cfg.Classes),
	})
	return &corev3.Node{Id: id, Cluster: "load", Metadata: md}
}

// opened returns the streams opened so far; the slice must not be modified.
func (s *Session) opened() []*streamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[:len(s.streams):len(s.streams)]
}

func (s *Session) views() []streamView {
	streams := s.opened()
	out := make([]streamView, len(streams))
	for i, st := range streams {
		out[i] = st.snapshot()
	}
	return out
}

// WaitUp returns true once every stream has its first full config, false when ctx ends
// first or every stream not up has failed.
func (s *Session) WaitUp(ctx context.Context) bool {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var pending []*streamStats // opened, neither up nor failed at the last look
	seen, up, failed := 0, 0, 0
	for {
		streams := s.opened()
		pending = append(pending, streams[seen:]...)
		seen = len(streams)
		still := pending[:0]
		for _, st := range pending {
			switch isUp, isFailed := st.upState(); {
			case isUp:
				up++
			case isFailed:
				failed++
			default:
				still = append(still, st)
			}
		}
		pending = still
		if up == s.cfg.Streams {
			s.log.Info("all streams have config", zap.Int("streams", up), zap.Duration("elapsed", time.Since(s.start)))
			return true
		}
		if seen == s.cfg.Streams && up+failed == s.cfg.Streams {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// errNoChange is reported when no stream saw a new version before the wait ended.
var errNoChange = errors.New("no change seen before the wait ended")
