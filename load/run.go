package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

// basePort is the first outbound_port; the port is what puts streams in distinct classes.
const basePort = 20000

// pollInterval is how often the runner looks at the streams' progress.
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

	conns, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)

	r := &runner{cfg: cfg, log: log, conns: conns, start: time.Now(), bytes: &byteCounters{}}
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	r.launch(ctx, &wg)
	allUp := r.waitUp(ctx)
	res := r.result()
	if allUp && cfg.OnAllUp != nil {
		cfg.OnAllUp()
	}
	if allUp && cfg.WatchChange {
		res.Convergence = r.waitChange(ctx, time.Now())
	}
	res.BytesByType = r.bytes.byType()
	res.Versions = versionSummary(r.views(), r.start)
	return res, nil
}

type runner struct {
	cfg   Config
	log   *zap.Logger
	conns []*grpc.ClientConn
	start time.Time
	bytes *byteCounters

	mu      sync.Mutex
	streams []*streamStats
}

func dial(cfg Config) ([]*grpc.ClientConn, error) {
	n := (cfg.Streams + cfg.StreamsPerConn - 1) / cfg.StreamsPerConn
	conns := make([]*grpc.ClientConn, 0, n)
	for range n {
		c, err := grpc.NewClient(cfg.Target,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			// A large mesh's RDS exceeds gRPC's 4 MiB default, and Envoy has no such limit.
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))
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
// server, not a thundering herd of simultaneous connects.
func (r *runner) launch(ctx context.Context, wg *sync.WaitGroup) {
	var tick <-chan time.Time
	if r.cfg.Ramp > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.Ramp))
		defer t.Stop()
		tick = t.C
	}
	for i := range r.cfg.Streams {
		if i > 0 && tick != nil {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
		}
		st := newStreamStats(fmt.Sprintf("%s%d", r.cfg.IDPrefix, i))
		r.mu.Lock()
		r.streams = append(r.streams, st)
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runStream(ctx, i, st)
		}()
	}
}

func (r *runner) runStream(ctx context.Context, i int, st *streamStats) {
	conn := r.conns[i/r.cfg.StreamsPerConn]
	node := r.node(i, st.nodeID)
	var err error
	if r.cfg.Delta {
		err = (&deltaStream{index: i, node: node, stats: st, bytes: r.bytes, ackable: r.cfg.ackFilter}).run(ctx, conn)
	} else {
		err = (&sotwStream{index: i, node: node, stats: st, bytes: r.bytes, ackable: r.cfg.ackFilter}).run(ctx, conn)
	}
	if ctx.Err() == nil && err != nil {
		st.fail(err)
		r.log.Debug("stream ended", zap.String("node_id", st.nodeID), zap.Error(err))
	}
}

// node builds the Envoy node: the outbound port alone spreads streams over classes.
func (r *runner) node(i int, id string) *corev3.Node {
	md, _ := structpb.NewStruct(map[string]any{
		"role":          "sidecar",
		"namespace":     r.cfg.Namespace,
		"labels":        map[string]any{"app": "load"},
		"outbound_port": float64(basePort + i%r.cfg.Classes),
	})
	return &corev3.Node{Id: id, Cluster: "load", Metadata: md}
}

func (r *runner) views() []streamView {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]streamView, len(r.streams))
	for i, s := range r.streams {
		out[i] = s.snapshot()
	}
	return out
}

// waitUp returns true once every stream has its first full config, false when the run
// ends first or every stream not up has failed.
func (r *runner) waitUp(ctx context.Context) bool {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		views := r.views()
		up, failed := 0, 0
		for _, v := range views {
			switch {
			case !v.firstFull.IsZero():
				up++
			case v.err != nil:
				failed++
			}
		}
		if up == r.cfg.Streams {
			r.log.Info("all streams have config", zap.Int("streams", up), zap.Duration("elapsed", time.Since(r.start)))
			return true
		}
		if len(views) == r.cfg.Streams && up+failed == r.cfg.Streams {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// errNoChange is reported when no stream saw a new RDS version before the run ended.
var errNoChange = errors.New("no rds change seen before the run ended")
