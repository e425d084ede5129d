// Package refpeer is a reference ADS server built the way most Go control planes start:
// go-control-plane's SnapshotCache holding one snapshot per node id, served by
// go-control-plane's default server, fed the very resources weir's translator produces.
//
// Benchmarks run it next to weir, with the same clients, to compare weir's cache with
// that typical design. It is deliberately not optimized: every Update builds and sets one
// snapshot per connected node, all under one global version. It is, however, correct:
// every node gets its full, consistent config and every change.
package refpeer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/weir-mesh/weir/model"
	"github.com/weir-mesh/weir/translator"
	"github.com/weir-mesh/weir/xds"
)

// Peer is the reference ADS server.
//
// Two locks keep it correct without making ACK handling wait on translation: setMu
// orders every change to the cache (Update, a node's first snapshot, a node's removal),
// and mu guards the short-lived stream and node bookkeeping. Lock order: setMu, then mu.
type Peer struct {
	log     *zap.Logger
	cache   cachev3.SnapshotCache
	metrics *metrics
	ready   atomic.Bool

	setMu   sync.Mutex
	snap    *model.Snapshot        // latest input; nil until the first Update
	version uint64                 // global snapshot version, bumped by every Update
	classes map[string]classConfig // translated config by class key, for snap
	mu      sync.Mutex             // guards streams and nodes
	streams map[int64]string       // stream key (see streamKey) -> node id
	nodes   map[string]*nodeState  // node id -> its class and open streams

	// updated, when set, is called at the end of each Update, before any node can be
	// cleared: tests use it to look at every node's snapshot.
	updated func()
}

// classConfig is the translated config of one proxy class, by type URL.
type classConfig map[resourcev3.Type][]types.Resource

// nodeState is what the peer knows about one node id.
type nodeState struct {
	class   model.ProxyClass
	streams int
}

// New returns a peer with no config; it serves nothing until the first Update.
func New(log *zap.Logger) *Peer {
	if log == nil {
		log = zap.NewNop()
	}
	return &Peer{
		log:     log,
		cache:   cachev3.NewSnapshotCache(true, cachev3.IDHash{}, cacheLogger{log.Named("cache")}),
		metrics: newMetrics(),
		classes: map[string]classConfig{},
		streams: map[int64]string{},
		nodes:   map[string]*nodeState{},
	}
}

// Update takes a new input model: it bumps the global version, re-translates every class
// of a connected node and sets a new snapshot for every connected node id. It returns
// once every snapshot is set.
func (p *Peer) Update(snap *model.Snapshot) {
	start := time.Now()
	p.setMu.Lock()
	defer p.setMu.Unlock()
	p.snap = snap
	p.version++
	p.classes = map[string]classConfig{}
	nodes := p.connectedNodes()
	for id, class := range nodes {
		p.setNode(id, p.configFor(class))
	}
	p.ready.Store(true)
	if p.updated != nil {
		p.updated()
	}
	p.metrics.updates.Inc()
	p.metrics.version.Set(float64(p.version))
	p.metrics.updateSeconds.Observe(time.Since(start).Seconds())
	p.log.Info("config updated", zap.Uint64("version", p.version), zap.Int("nodes", len(nodes)),
		zap.Int("classes", len(p.classes)), zap.Duration("elapsed", time.Since(start)))
}

// Ready reports whether the first Update has happened.
func (p *Peer) Ready() bool { return p.ready.Load() }

// connectedNodes returns the class of every connected node id.
func (p *Peer) connectedNodes() map[string]model.ProxyClass {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]model.ProxyClass, len(p.nodes))
	for id, n := range p.nodes {
		out[id] = n.class
	}
	return out
}

// configFor returns the class's config for the current input, translating it the first
// time the class is asked for. Callers hold setMu.
func (p *Peer) configFor(class model.ProxyClass) classConfig {
	key := class.Key()
	if cfg, ok := p.classes[key]; ok {
		return cfg
	}
	out, diags := translator.Translate(p.snap, class)
	cfg := toConfig(out)
	p.classes[key] = cfg
	p.metrics.translations.Inc()
	if len(diags) > 0 {
		p.log.Debug("translation diagnostics", zap.String("class", key), zap.Int("count", len(diags)))
	}
	return cfg
}

// toConfig turns translator output into go-control-plane resources, as weir's pipeline
// does.
func toConfig(out *translator.Output) classConfig {
	cfg := classConfig{
		resourcev3.ClusterType:     make([]types.Resource, 0, len(out.Clusters)),
		resourcev3.EndpointType:    make([]types.Resource, 0, len(out.Endpoints)),
		resourcev3.ListenerType:    make([]types.Resource, 0, len(out.Listeners)),
		resourcev3.RouteType:       make([]types.Resource, 0, len(out.Routes)),
		resourcev3.ScopedRouteType: make([]types.Resource, 0, len(out.Scopes)),
	}
	for _, c := range out.Clusters {
		cfg[resourcev3.ClusterType] = append(cfg[resourcev3.ClusterType], c)
	}
	for _, e := range out.Endpoints {
		cfg[resourcev3.EndpointType] = append(cfg[resourcev3.EndpointType], e)
	}
	for _, l := range out.Listeners {
		cfg[resourcev3.ListenerType] = append(cfg[resourcev3.ListenerType], l)
	}
	for _, r := range out.Routes {
		cfg[resourcev3.RouteType] = append(cfg[resourcev3.RouteType], r)
	}
	for _, r := range out.Scopes {
		cfg[resourcev3.ScopedRouteType] = append(cfg[resourcev3.ScopedRouteType], r)
	}
	return cfg
}

// setNode builds a snapshot of cfg at the current version for one node and sets it, as
// go-control-plane's example server does. An inconsistent snapshot is logged and not
// set: the node keeps its previous config. Callers hold setMu.
func (p *Peer) setNode(id string, cfg classConfig) {
	version := strconv.FormatUint(p.version, 10)
	snapshot, err := cachev3.NewSnapshot(version, cfg)
	if err != nil {
		p.log.Error("build snapshot", zap.String("node_id", id), zap.String("version", version), zap.Error(err))
		return
	}
	if err := snapshot.Consistent(); err != nil {
		p.metrics.inconsistent.Inc()
		p.log.Error("snapshot inconsistent; node keeps its previous config",
			zap.String("node_id", id), zap.String("version", version), zap.Error(err))
		return
	}
	if err := p.cache.SetSnapshot(context.Background(), id, snapshot); err != nil {
		p.log.Error("set snapshot", zap.String("node_id", id), zap.String("version", version), zap.Error(err))
		return
	}
	p.metrics.snapshotsSet.Inc()
}

// streamKey maps go-control-plane's stream ids into one space: SotW and delta streams
// are numbered independently, so both have a stream 1.
func streamKey(id int64, delta bool) int64 {
	if delta {
		return -id
	}
	return id
}

// callbacks returns the go-control-plane callbacks: requests register streams and nodes,
// closes forget them, responses are counted.
func (p *Peer) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			p.streamRequest(streamKey(id, false), req.GetNode())
			return nil
		},
		StreamDeltaRequestFunc: func(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
			p.streamRequest(streamKey(id, true), req.GetNode())
			return nil
		},
		StreamClosedFunc:      func(id int64, _ *corev3.Node) { p.streamClosed(streamKey(id, false)) },
		DeltaStreamClosedFunc: func(id int64, _ *corev3.Node) { p.streamClosed(streamKey(id, true)) },
		StreamResponseFunc: func(_ context.Context, _ int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
			p.metrics.response(resp.GetTypeUrl())
		},
		StreamDeltaResponseFunc: func(_ int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
			p.metrics.response(resp.GetTypeUrl())
		},
	}
}

// streamRequest registers a stream on its first request. A node id seen for the first
// time gets its snapshot right away, before go-control-plane opens the request's watch,
// so the request is answered at once.
//
// Only a stream's first request is guaranteed to carry the node (and go-control-plane
// hands the delta callback later requests without it), so the node is read only then.
func (p *Peer) streamRequest(key int64, node *corev3.Node) {
	p.mu.Lock()
	if _, known := p.streams[key]; known {
		p.mu.Unlock()
		return
	}
	id := node.GetId()
	p.streams[key] = id
	n, seen := p.nodes[id]
	if !seen {
		n = &nodeState{class: xds.ClassOf(node)}
		p.nodes[id] = n
	}
	n.streams++
	p.setGauges()
	p.mu.Unlock()
	if !seen {
		p.log.Debug("node connected", zap.String("node_id", id), zap.String("class", n.class.Key()))
		p.nodeSeen(id)
	}
}

// nodeSeen sets the first snapshot of a node id, unless it left already or there is no
// config yet (the first Update will set it).
func (p *Peer) nodeSeen(id string) {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	p.mu.Lock()
	n, ok := p.nodes[id]
	var class model.ProxyClass
	if ok {
		class = n.class
	}
	p.mu.Unlock()
	if !ok || p.snap == nil {
		return
	}
	p.setNode(id, p.configFor(class))
}

// streamClosed forgets a stream, and clears the node's snapshot when it was the node id's
// last stream.
func (p *Peer) streamClosed(key int64) {
	p.mu.Lock()
	id, ok := p.streams[key]
	if !ok { // closed before its first request
		p.mu.Unlock()
		return
	}
	delete(p.streams, key)
	n := p.nodes[id]
	n.streams--
	last := n.streams == 0
	if last {
		delete(p.nodes, id)
	}
	p.setGauges()
	p.mu.Unlock()
	if last {
		p.nodeGone(id)
	}
}

// nodeGone clears a node's snapshot unless a stream with its id came back meanwhile.
// Holding setMu orders the clear after any Update or first snapshot that raced with it.
func (p *Peer) nodeGone(id string) {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	p.mu.Lock()
	_, back := p.nodes[id]
	p.mu.Unlock()
	if back {
		return
	}
	p.cache.ClearSnapshot(id)
	p.log.Debug("node disconnected", zap.String("node_id", id))
}

// setGauges publishes the stream and node counts. Callers hold mu.
func (p *Peer) setGauges() {
	p.metrics.streams.Set(float64(len(p.streams)))
	p.metrics.nodes.Set(float64(len(p.nodes)))
}

// Serve serves ADS on lis until ctx ends, with go-control-plane's default server
// options and the same gRPC limits and keepalive enforcement as weir.
func (p *Peer) Serve(ctx context.Context, lis net.Listener) error {
	xs := serverv3.NewServer(ctx, p.cache, p.callbacks())
	g := grpc.NewServer(
		grpc.MaxConcurrentStreams(1<<20),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, xs)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	select {
	case <-ctx.Done():
		g.Stop()
		<-errc
		return nil
	case err := <-errc:
		if errors.Is(err, grpc.ErrServerStopped) {
			return nil
		}
		return fmt.Errorf("serve refpeer xds on %s: %w", lis.Addr(), err)
	}
}

// Handler serves /healthz (200 once the first Update has happened, 503 before) and
// /metrics in the Prometheus text format.
func (p *Peer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !p.Ready() {
			http.Error(w, "no config yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(p.metrics.reg, promhttp.HandlerOpts{}))
	return mux
}

// cacheLogger lets go-control-plane log through zap; its info lines (one per delta
// watch) go to debug.
type cacheLogger struct{ l *zap.Logger }

func (c cacheLogger) Debugf(f string, a ...any) { c.l.Sugar().Debugf(f, a...) }
func (c cacheLogger) Infof(f string, a ...any)  { c.l.Sugar().Debugf(f, a...) }
func (c cacheLogger) Warnf(f string, a ...any)  { c.l.Sugar().Warnf(f, a...) }
func (c cacheLogger) Errorf(f string, a ...any) { c.l.Sugar().Errorf(f, a...) }
