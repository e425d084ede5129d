// Package pipeline connects the stages: it takes each model.Snapshot a watcher publishes,
// translates it once per proxy class and hands the result to the xDS server.
package pipeline

import (
	"context"
	"sort"
	"sync"
	"time"
	"unique"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/weir-mesh/weir/model"
	"github.com/weir-mesh/weir/translator"
	"github.com/weir-mesh/weir/xds"
)

// Publisher is where translated config goes; *xds.Server implements it.
type Publisher interface {
	Publish(class string, res *xds.Resources) error
}

// Pipeline owns the current snapshot and the set of proxy classes. One goroutine does all
// translation, so gRPC goroutines and watchers never wait on it.
type Pipeline struct {
	log     *zap.Logger
	out     Publisher
	metrics *metrics

	mu      sync.Mutex
	snap    *model.Snapshot
	dirty   bool                        // snap changed since last translation
	classes map[string]model.ProxyClass // every class ever seen
	pending map[string]bool             // classes not yet translated
	diags   []model.Diagnostic
	ready   bool
	kick    chan struct{}

	overlay   Overlay
	gen       uint64 // bumped by Refresh
	published uint64 // the generation every class was last published with
}

// Overlay rewrites each source snapshot before translation (the rollout controller's
// weights) and says what it could not apply.
type Overlay func(*model.Snapshot) (*model.Snapshot, []model.Diagnostic)

// New returns a pipeline that publishes to out.
func New(log *zap.Logger, out Publisher, reg prometheus.Registerer) *Pipeline {
	return &Pipeline{
		log: log, out: out, metrics: newMetrics(reg),
		classes: map[string]model.ProxyClass{}, pending: map[string]bool{},
		kick: make(chan struct{}, 1),
	}
}

// Update takes a new snapshot from a watcher.
func (p *Pipeline) Update(snap *model.Snapshot) {
	p.mu.Lock()
	p.snap, p.dirty = snap, true
	p.mu.Unlock()
	p.wake()
}

// AddClass takes a proxy class seen on an ADS stream.
func (p *Pipeline) AddClass(class model.ProxyClass) {
	p.mu.Lock()
	key := class.Key()
	if _, ok := p.classes[key]; !ok {
		p.classes[key] = class
		p.pending[key] = true
	}
	p.mu.Unlock()
	p.wake()
}

// RemoveClass forgets a class no proxy uses any more.
func (p *Pipeline) RemoveClass(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.classes, key)
	delete(p.pending, key)
}

func (p *Pipeline) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// SetOverlay installs the overlay applied to every snapshot from now on.
func (p *Pipeline) SetOverlay(o Overlay) {
	p.mu.Lock()
	p.overlay = o
	p.mu.Unlock()
}

// Refresh asks for a new translation because what the overlay returns changed. It returns
// a generation: once Published reports it (or a later one), every class has been
// published with the overlay as it was when Refresh was called.
func (p *Pipeline) Refresh() uint64 {
	p.mu.Lock()
	p.gen++
	gen := p.gen
	p.dirty = true
	p.mu.Unlock()
	p.wake()
	return gen
}

// Published returns the generation of the last translation published for every class.
func (p *Pipeline) Published() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.published
}

// Ready reports whether a first snapshot has been read.
func (p *Pipeline) Ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready
}

// Diagnostics returns the current diagnostics: the sources' and the translator's.
func (p *Pipeline) Diagnostics() []model.Diagnostic {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]model.Diagnostic(nil), p.diags...)
}

// Run translates until ctx ends.
func (p *Pipeline) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
			p.step()
		}
	}
}

// step translates for every class when the snapshot changed, else for new classes only.
func (p *Pipeline) step() {
	defer func() {
		if r := recover(); r != nil {
			p.metrics.panics.Inc()
			p.log.Error("translation panicked; still serving the previous config", zap.Any("panic", r), zap.Stack("stack"))
		}
	}()
	p.mu.Lock()
	snap := p.snap
	if snap == nil {
		p.mu.Unlock()
		return
	}
	var todo []model.ProxyClass
	for key, class := range p.classes {
		if p.dirty || p.pending[key] {
			todo = append(todo, class)
		}
	}
	full, gen, overlay := p.dirty, p.gen, p.overlay
	p.dirty, p.pending, p.ready = false, map[string]bool{}, true
	p.mu.Unlock()

	sort.Slice(todo, func(i, j int) bool { return todo[i].Key() < todo[j].Key() })
	diags := append([]model.Diagnostic(nil), snap.Diagnostics...)
	if overlay != nil {
		var od []model.Diagnostic
		snap, od = overlay(snap)
		diags = append(diags, od...)
	}
	allPublished := true
	for _, class := range todo {
		d, ok := p.translate(snap, class)
		diags = append(diags, d...)
		allPublished = allPublished && ok
	}
	if full {
		p.setDiagnostics(dedupe(diags))
	}
	if full && allPublished {
		p.mu.Lock()
		p.published = max(p.published, gen)
		p.mu.Unlock()
	}
}

// translate publishes one class's config; false means it could not be published.
func (p *Pipeline) translate(snap *model.Snapshot, class model.ProxyClass) ([]model.Diagnostic, bool) {
	start := time.Now()
	out, diags := translator.Translate(snap, class)
	p.metrics.translate.Observe(time.Since(start).Seconds())
	p.mu.Lock()
	_, wanted := p.classes[class.Key()]
	p.mu.Unlock()
	if !wanted { // forgotten while we translated
		return diags, true
	}
	if err := p.out.Publish(class.Key(), toResources(out)); err != nil {
		p.log.Error("config not published; still serving the previous one", zap.String("class", class.Key()), zap.Error(err))
		return diags, false
	}
	return diags, true
}

// setDiagnostics stores the new set and logs what is new in it.
func (p *Pipeline) setDiagnostics(diags []model.Diagnostic) {
	p.mu.Lock()
	old := map[string]bool{}
	for _, d := range p.diags {
		old[d.String()] = true
	}
	p.diags = diags
	p.mu.Unlock()
	counts := map[model.Severity]int{}
	for _, d := range diags {
		counts[d.Severity]++
		if old[d.String()] {
			continue
		}
		fields := []zap.Field{zap.String("object", d.Source.String()), zap.String("field", d.Field)}
		if d.Severity == model.SeverityError {
			p.log.Error(d.Message, fields...)
		} else {
			p.log.Warn(d.Message, fields...)
		}
	}
	for _, sev := range []model.Severity{model.SeverityError, model.SeverityWarning} {
		p.metrics.diagnostics.WithLabelValues(string(sev)).Set(float64(counts[sev]))
	}
}

func dedupe(diags []model.Diagnostic) []model.Diagnostic {
	seen := map[string]bool{}
	out := diags[:0]
	for _, d := range diags {
		if k := d.String(); !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out
}

func toResources(out *translator.Output) *xds.Resources {
	res := &xds.Resources{Origins: make(map[string][]string, len(out.Origins))}
	for _, c := range out.Clusters {
		res.Clusters = append(res.Clusters, c)
	}
	for _, e := range out.Endpoints {
		res.Endpoints = append(res.Endpoints, e)
	}
	for _, l := range out.Listeners {
		res.Listeners = append(res.Listeners, l)
	}
	for _, r := range out.Routes {
		res.Routes = append(res.Routes, types.Resource(r))
	}
	for _, r := range out.Scopes {
		res.Scopes = append(res.Scopes, types.Resource(r))
	}
	for _, s := range out.Secrets {
		res.Secrets = append(res.Secrets, types.Resource(s))
	}
	for name, refs := range out.Origins {
		for _, ref := range refs {
			// Interned: every class and each kept version names the same sources.
			res.Origins[name] = append(res.Origins[name], unique.Make(ref.String()).Value())
		}
	}
	return res
}
