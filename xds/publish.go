package xds

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
)

// publisher moves each class from the config it is serving to the config it should serve,
// make-before-break:
//
//  1. clusters and endpoints of both old and new config, old listeners and routes —
//     wait until every proxy of the class has ACKed (new clusters are warm);
//  2. new listeners and routes, still all clusters — wait for the ACKs (no proxy routes to
//     the old clusters any more);
//  3. exactly the new config.
//
// A stage whose content equals what is served is skipped, so a weight change is a single
// RDS push and an endpoint change a single EDS push. Each wait is bounded: a proxy that
// never answers slows a change down but cannot stop it.
type publisher struct {
	s       *Server
	mu      sync.Mutex
	classes map[string]*classPub
}

type classPub struct {
	key    string
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	mu        sync.Mutex
	desired   classState
	changedAt time.Time
	hist      history
	serving   classState // what the cache holds for the class now
}

func newPublisher(s *Server) *publisher {
	return &publisher{s: s, classes: map[string]*classPub{}}
}

// set records the config a class should serve and wakes its goroutine.
func (p *publisher) set(ctx context.Context, key string, res *Resources) error {
	if err := res.consistent(); err != nil {
		return fmt.Errorf("class %s: %w", key, err)
	}
	st, err := buildState(res)
	if err != nil {
		return fmt.Errorf("class %s: %w", key, err)
	}
	p.mu.Lock()
	p.shareLocked(st)
	origins := p.shareOriginsLocked(res.Origins)
	cp, ok := p.classes[key]
	if !ok {
		cctx, cancel := context.WithCancel(ctx)
		cp = &classPub{key: key, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
		p.classes[key] = cp
		go p.run(cctx, cp)
	}
	p.mu.Unlock()

	for _, v := range st {
		p.s.metrics.marshaled.Add(float64(v.marshaled))
	}
	cp.mu.Lock()
	cp.desired, cp.changedAt = st, time.Now()
	cp.hist.add(st, origins)
	cp.mu.Unlock()
	select {
	case cp.kick <- struct{}{}:
	default:
	}
	return nil
}

// shareLocked replaces each version of st that some class already holds (this one
// included) by that very object. Classes usually differ in a listener or two and share
// everything else; one copy then serves them all. And a stream knows what it holds by the
// identity of the version's "returned" map: an equal but new version would send every
// stream down the slow path of comparing names. p.mu is held.
func (p *publisher) shareLocked(st classState) {
	for _, cp := range p.classes {
		cp.mu.Lock()
		for _, held := range []classState{cp.serving, cp.desired} {
			for t, v := range st {
				if h, ok := held[t]; ok && h.version == v.version {
					st[t] = h
				}
			}
		}
		cp.mu.Unlock()
	}
}

// shareOriginsLocked returns an equal origins map some class already keeps, else o.
// Origins name the sources of every resource; classes and successive versions mostly
// have the same, and each class keeps the origins of its last few versions. p.mu is held.
func (p *publisher) shareOriginsLocked(o map[string][]string) map[string][]string {
	for _, cp := range p.classes {
		cp.mu.Lock()
		n := len(cp.hist.entries)
		var last map[string][]string
		if n > 0 {
			last = cp.hist.entries[n-1].origins
		}
		cp.mu.Unlock()
		if last != nil && maps.EqualFunc(last, o, slices.Equal) {
			return last
		}
	}
	return o
}

func (p *publisher) run(ctx context.Context, cp *classPub) {
	defer close(cp.done)
	var serving classState
	for {
		select {
		case <-ctx.Done():
			return
		case <-cp.kick:
		}
		cp.mu.Lock()
		desired, changedAt := cp.desired, cp.changedAt
		cp.mu.Unlock()
		next, err := p.converge(ctx, cp.key, serving, desired)
		if err != nil && ctx.Err() != nil {
			return // weir is stopping: not a failure to report
		}
		if err != nil {
			p.s.log.Error("publish failed; still serving the previous config", zap.String("class", cp.key), zap.Error(err))
			continue
		}
		serving = next
		cp.mu.Lock()
		cp.serving = serving
		cp.mu.Unlock()
		if p.s.reg.settled(cp.key, versionsOf(serving, orderedTypes...)) {
			p.s.metrics.convergence.Observe(time.Since(changedAt).Seconds())
		}
	}
}

// routingTypes are the types that send traffic to clusters: they change only once the
// clusters they need are in place.
var routingTypes = []string{resourcev3.ListenerType, resourcev3.ScopedRouteType, resourcev3.RouteType}

// suppliedTypes are what routing types point at: clusters, their endpoints and the TLS
// certificates listeners take. New ones arrive first; old ones stay until nothing that
// proxies hold still uses them.
var suppliedTypes = []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.SecretType}

// converge runs the three stages and returns what is served at the end.
func (p *publisher) converge(ctx context.Context, key string, serving, desired classState) (classState, error) {
	if serving == nil {
		return desired, p.apply(key, desired)
	}
	stage1 := classState{}
	for _, t := range routingTypes {
		stage1[t] = serving[t]
	}
	for _, t := range suppliedTypes {
		m, err := merge(serving[t], desired[t])
		if err != nil {
			return serving, err
		}
		switch m.version { // nothing added or removed: keep the object streams hold
		case serving[t].version:
			m = serving[t]
		case desired[t].version:
			m = desired[t]
		}
		stage1[t] = m
	}
	stage2 := classState{}
	for _, t := range suppliedTypes {
		stage2[t] = stage1[t]
	}
	for _, t := range routingTypes {
		stage2[t] = desired[t]
	}
	for _, stage := range []classState{stage1, stage2, desired} {
		if ctx.Err() != nil {
			return serving, ctx.Err()
		}
		if sameVersions(stage, serving) {
			continue
		}
		if err := p.apply(key, stage); err != nil {
			return serving, err
		}
		serving = stage
		p.wait(ctx, key, versionsOf(stage, orderedTypes...))
	}
	return serving, nil
}

func (p *publisher) apply(key string, st classState) error {
	p.s.cache.set(key, st)
	p.s.metrics.publishes.Inc()
	p.s.log.Debug("snapshot set", zap.String("class", key),
		zap.String("cds", st[resourcev3.ClusterType].version), zap.String("rds", st[resourcev3.RouteType].version))
	return nil
}

// settleCheckEvery bounds how often a waiting stage re-checks its class: each check reads
// every proxy of the class, and with thousands of proxies ACKing at once, checking on
// every ACK would cost O(proxies²).
const settleCheckEvery = 5 * time.Millisecond

// wait blocks until every proxy of the class has answered the given versions, or the stage
// timeout passes.
func (p *publisher) wait(ctx context.Context, key string, want map[string]string) {
	deadline := time.NewTimer(p.s.opts.StageTimeout)
	defer deadline.Stop()
	pace := time.NewTicker(settleCheckEvery)
	defer pace.Stop()
	for {
		changed := p.s.reg.watch()
		if p.s.reg.settled(key, want) {
			return
		}
		// A change, then the next tick: checks are spaced out however fast ACKs arrive.
		ok := await(ctx, deadline.C, changed) && await(ctx, deadline.C, pace.C)
		if !ok {
			if ctx.Err() == nil {
				p.s.log.Warn("proxies did not ACK in time; continuing", zap.String("class", key), zap.Duration("timeout", p.s.opts.StageTimeout))
			}
			return
		}
	}
}

// await waits for ch; false means the context ended or the deadline passed first.
func await[T any](ctx context.Context, deadline <-chan time.Time, ch <-chan T) bool {
	select {
	case <-ctx.Done():
		return false
	case <-deadline:
		return false
	case <-ch:
		return true
	}
}

// served returns what a class is being served now, per type URL, sorted by name.
func (p *publisher) served(key string) map[string][]types.Resource {
	p.mu.Lock()
	cp, ok := p.classes[key]
	p.mu.Unlock()
	if !ok {
		return nil
	}
	cp.mu.Lock()
	st := cp.serving
	cp.mu.Unlock()
	out := map[string][]types.Resource{}
	for t, v := range st {
		decoded := v.decoded()
		for _, name := range v.names {
			out[t] = append(out[t], decoded[name])
		}
	}
	return out
}

// forget stops serving a class and drops its snapshot, so a proxy of that class that
// comes back waits for a fresh translation instead of getting stale config.
func (p *publisher) forget(key string) {
	p.mu.Lock()
	cp, ok := p.classes[key]
	delete(p.classes, key)
	p.mu.Unlock()
	if ok {
		cp.cancel()
		<-cp.done // no stage may set a snapshot after it is cleared
	}
	p.s.cache.clear(key)
}

func (p *publisher) attribute(key, typeURL, version, errMsg string) []string {
	p.mu.Lock()
	cp, ok := p.classes[key]
	p.mu.Unlock()
	if !ok {
		return nil
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.hist.attribute(typeURL, version, errMsg)
}

func versionsOf(st classState, typeURLs ...string) map[string]string {
	out := make(map[string]string, len(typeURLs))
	for _, t := range typeURLs {
		out[t] = st[t].version
	}
	return out
}

func sameVersions(a, b classState) bool {
	for _, t := range orderedTypes {
		if a[t].version != b[t].version {
			return false
		}
	}
	return true
}
