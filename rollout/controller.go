package rollout

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/model"
)

// Router is where the controller's weights go and how it learns they are in effect.
type Router interface {
	// Refresh re-translates with the controller's current weights; Published reports the
	// generation every proxy class was last published with.
	Refresh() uint64
	Published() uint64
	// Pending names the proxies that do not yet run the current routes of host.
	Pending(host string) []string
}

// Providers measure metrics: Builtin for weir's own metrics, Prometheus for metrics with
// a query or a Prometheus address.
type Providers struct {
	Builtin    Provider
	Prometheus Provider
}

// ErrNotFound is returned for a rollout that does not exist.
var ErrNotFound = errors.New("no such rollout")

// Controller runs every rollout: it feeds Decide, carries out its decisions and keeps the
// states. One goroutine (Run) does all of it.
type Controller struct {
	log       *zap.Logger
	router    Router
	providers Providers
	store     Store
	metrics   *metrics
	client    *http.Client
	tick      time.Duration
	now       func() time.Time

	mu        sync.Mutex
	snap      *model.Snapshot
	states    map[string]State
	commands  map[string][]Command
	want      map[string]uint64    // generation that carries each rollout's weights
	started   map[string]time.Time // when each rollout under way started
	pendingOf map[string][]string  // proxies not yet running each rollout's weights
	kick      chan struct{}
}

// Option configures a Controller.
type Option func(*Controller)

// WithTick sets how often rollouts are looked at (default 250 ms).
func WithTick(d time.Duration) Option { return func(c *Controller) { c.tick = d } }

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(c *Controller) { c.now = now } }

// NewController loads the saved states; a state file that cannot be read is an error
// (starting over would reset weights that proxies are serving).
func NewController(log *zap.Logger, router Router, providers Providers, store Store, reg prometheus.Registerer, opts ...Option) (*Controller, error) {
	states, err := store.Load()
	if err != nil {
		return nil, err
	}
	c := &Controller{
		log: log, router: router, providers: providers, store: store, metrics: newMetrics(reg),
		client: &http.Client{}, tick: 250 * time.Millisecond, now: time.Now,
		states: states, commands: map[string][]Command{}, want: map[string]uint64{}, started: map[string]time.Time{}, pendingOf: map[string][]string{},
		kick: make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

func key(r *model.Rollout) string { return r.Source.Namespace + "/" + r.Source.Name }

// Update takes a new source snapshot.
func (c *Controller) Update(snap *model.Snapshot) {
	c.mu.Lock()
	c.snap = snap
	c.mu.Unlock()
	c.wake()
}

func (c *Controller) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Overlay writes the current weights into a snapshot; it is the pipeline's overlay.
func (c *Controller) Overlay(snap *model.Snapshot) (*model.Snapshot, []model.Diagnostic) {
	c.mu.Lock()
	var shifts []Shift
	for _, r := range snap.Rollouts {
		st, ok := c.states[key(r)]
		if !ok {
			st = State{Phase: v1alpha1.PhaseInitialized, Stable: r.Spec.Stable}
		}
		shifts = append(shifts, Shift{Rollout: r, State: st})
	}
	c.mu.Unlock()
	return Apply(snap, shifts)
}

// Command queues a person's request for the next reconcile.
func (c *Controller) Command(namespace, name string, cmd Command) error {
	k := namespace + "/" + name
	c.mu.Lock()
	found := false
	if c.snap != nil {
		for _, r := range c.snap.Rollouts {
			found = found || key(r) == k
		}
	}
	if found {
		c.commands[k] = append(c.commands[k], cmd)
	}
	c.mu.Unlock()
	if !found {
		return fmt.Errorf("%w: %s", ErrNotFound, k)
	}
	c.wake()
	return nil
}

// Run reconciles until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	t := time.NewTicker(c.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		c.reconcileAll(ctx)
	}
}

func (c *Controller) reconcileAll(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			c.metrics.panics.Inc()
			c.log.Error("rollout reconcile panicked; weights stay as they are", zap.Any("panic", r), zap.Stack("stack"))
		}
	}()
	c.mu.Lock()
	snap := c.snap
	c.mu.Unlock()
	if snap == nil {
		return // nothing read yet: never judge or move anything on an empty world
	}
	changed := false
	for _, r := range snap.Rollouts {
		if c.reconcile(ctx, snap, r) {
			changed = true
		}
	}
	if changed {
		c.save()
	}
}

// reconcile runs one decision for one rollout; it reports whether the state changed.
func (c *Controller) reconcile(ctx context.Context, snap *model.Snapshot, r *model.Rollout) bool {
	k := key(r)
	host := Host(snap, r)
	c.mu.Lock()
	old, known := c.states[k]
	cmds := c.commands[k]
	delete(c.commands, k)
	want := c.want[k]
	c.mu.Unlock()

	now := c.now()
	obs := Observations{Now: now}
	obs.Applied, obs.Pending = c.applied(want, host)
	c.mu.Lock()
	c.pendingOf[k] = obs.Pending
	c.mu.Unlock()
	s := old
	var events []Event
	decide := func(o Observations) Decision {
		// obs.Applied speaks of the weights at the start of this reconcile only: once a
		// decision (a command, say) changed them, they are not in effect yet.
		if !sameRoutes(s, old) {
			o.Applied, o.Pending = false, nil
		}
		d := Decide(s, r.Spec, o)
		s, events = d.State, append(events, d.Events...)
		return d
	}
	for _, cmd := range cmds {
		o := obs
		o.Command = &cmd
		decide(o)
	}
	if CheckDue(s, r.Spec, now) {
		obs.Check = c.check(ctx, snap, r, s, host)
	}
	if why := Blocked(snap, r, s); why != "" {
		// Nothing moves until the config is fixed: a step must not be judged (or a
		// promotion recorded) on routes that could not be written.
		if s.Phase == "" {
			s = State{Phase: v1alpha1.PhaseInitialized, Stable: r.Spec.Stable, LastTransition: now}
		}
		if s.Message != why {
			s.Message = why
			events = append(events, Event{Warning: true, Reason: "Blocked", Message: why})
		}
		c.report(r, old, s, events)
		return c.store1(k, old, s, known)
	}
	base, baseEvents := s, events
	if d := decide(obs); len(d.Need) > 0 {
		// Decide again from the same state and observations, with the gates' answers:
		// the check must not be counted twice.
		s, events = base, baseEvents
		obs.Gates = c.gates(ctx, r, base, d.Need)
		decide(obs)
	}
	c.report(r, old, s, events)
	return c.store1(k, old, s, known)
}

// store1 keeps a rollout's new state and, when its routes changed, asks for them to be
// published; it reports whether anything changed.
func (c *Controller) store1(k string, old, s State, known bool) bool {
	if known && reflect.DeepEqual(s, old) {
		return false
	}
	c.mu.Lock()
	c.states[k] = s
	c.mu.Unlock()
	if !known || !sameRoutes(s, old) {
		gen := c.router.Refresh()
		c.mu.Lock()
		c.want[k] = gen
		c.mu.Unlock()
	}
	return true
}

// sameRoutes reports whether two states route traffic alike.
func sameRoutes(a, b State) bool {
	return a.CanaryWeight == b.CanaryWeight && a.Match == b.Match && a.Mirror == b.Mirror && a.Stable == b.Stable && a.Canary == b.Canary
}

// applied reports whether the weights of the generation want are published and ACKed by
// every proxy that routes to host.
func (c *Controller) applied(want uint64, host string) (bool, []string) {
	if c.router.Published() < want {
		return false, nil
	}
	pending := c.router.Pending(host)
	if len(pending) > 3 {
		pending = append(pending[:3:3], fmt.Sprintf("and %d more", len(pending)-3))
	}
	return len(pending) == 0, pending
}

// check measures every metric and calls the rollout and rollback webhooks.
func (c *Controller) check(ctx context.Context, snap *model.Snapshot, r *model.Rollout, s State, host string) *Check {
	chk := &Check{}
	if s.Phase != v1alpha1.PhaseProgressing {
		return chk // an interval tick for the gates
	}
	if !r.Spec.SkipAnalysis {
		q := Query{Namespace: r.Source.Namespace, Name: r.Source.Name, Host: host, Service: serviceName(snap, host),
			Stable: s.Stable, Canary: s.Canary, Clusters: canaryClusters(snap, host, s.Canary)}
		for _, m := range r.Spec.Analysis.Metrics {
			chk.Metrics = append(chk.Metrics, c.measure(ctx, q, m, r.Spec.Analysis.Interval.Duration))
		}
	}
	for _, h := range r.Spec.Analysis.Webhooks {
		switch h.Type {
		case v1alpha1.HookRollout:
			if err := callHook(ctx, c.client, h, payload(r, s)); err != nil {
				chk.Failed = append(chk.Failed, h.Name)
				c.log.Warn("rollout webhook failed", zap.String("rollout", key(r)), zap.String("webhook", h.Name), zap.Error(err))
			}
		case v1alpha1.HookRollback:
			if err := callHook(ctx, c.client, h, payload(r, s)); err == nil && chk.Rollback == "" {
				chk.Rollback = h.Name
			}
		}
	}
	return chk
}

func (c *Controller) measure(ctx context.Context, q Query, m v1alpha1.Metric, interval time.Duration) MetricCheck {
	q.Metric, q.Window = m, interval
	if m.Interval != nil {
		q.Window = m.Interval.Duration
	}
	mc := MetricCheck{Name: m.Name, Min: m.ThresholdRange.Min, Max: m.ThresholdRange.Max, Requests: -1}
	p := c.providers.Builtin
	if m.Query != "" || m.Prometheus != nil {
		p = c.providers.Prometheus
	}
	if p == nil {
		mc.Error = "no provider for this metric"
		return mc
	}
	res, err := p.Measure(ctx, q)
	if err != nil {
		mc.Error = err.Error()
		return mc
	}
	mc.Value, mc.Requests, mc.NoData = res.Value, res.Requests, res.NoData
	c.metrics.metricValue.WithLabelValues(q.Namespace+"/"+q.Name, m.Name).Set(res.Value)
	return mc
}

// gates calls the gate webhooks of the given types; the first error of each type is its
// answer.
func (c *Controller) gates(ctx context.Context, r *model.Rollout, s State, types []v1alpha1.WebhookType) map[v1alpha1.WebhookType]error {
	out := map[v1alpha1.WebhookType]error{}
	for _, t := range types {
		out[t] = nil
		for _, h := range r.Spec.Analysis.Webhooks {
			if h.Type != t {
				continue
			}
			if err := callHook(ctx, c.client, h, payload(r, s)); err != nil {
				out[t] = fmt.Errorf("%s: %w", h.Name, err)
				break
			}
		}
	}
	return out
}

// report logs events, fires event and post-rollout webhooks and updates metrics.
func (c *Controller) report(r *model.Rollout, old, s State, events []Event) {
	k := key(r)
	for _, e := range events {
		fields := []zap.Field{zap.String("rollout", k), zap.String("reason", e.Reason), zap.String("phase", string(s.Phase)), zap.Int32("canary_weight", s.CanaryWeight)}
		if e.Warning {
			c.log.Warn(e.Message, fields...)
		} else {
			c.log.Info(e.Message, fields...)
		}
		c.fire(r, s, v1alpha1.HookEvent, map[string]string{"eventMessage": e.Message, "eventType": eventType(e), "eventReason": e.Reason})
	}
	c.mu.Lock()
	switch {
	case s.active() && !old.active():
		c.started[k] = s.LastTransition
	case !s.active() && old.active():
		if t, ok := c.started[k]; ok {
			c.metrics.duration.Observe(s.LastTransition.Sub(t).Seconds())
			delete(c.started, k)
		}
		c.metrics.outcomes.WithLabelValues(string(s.Phase)).Inc()
	}
	c.mu.Unlock()
	if !s.active() && old.active() {
		c.fire(r, s, v1alpha1.HookPostRollout, nil)
	}
	c.metrics.set(k, s)
}

// fire calls every webhook of one type without waiting: events and post-rollout
// notifications must not hold the rollout up.
func (c *Controller) fire(r *model.Rollout, s State, t v1alpha1.WebhookType, md map[string]string) {
	for _, h := range r.Spec.Analysis.Webhooks {
		if h.Type != t {
			continue
		}
		p := payload(r, s)
		p.Metadata = md
		go func() {
			if err := callHook(context.Background(), c.client, h, p); err != nil {
				c.log.Warn("webhook failed", zap.String("rollout", key(r)), zap.String("webhook", h.Name), zap.String("type", string(t)), zap.Error(err))
			}
		}()
	}
}

func eventType(e Event) string {
	if e.Warning {
		return "Warning"
	}
	return "Normal"
}

func payload(r *model.Rollout, s State) hookPayload {
	return hookPayload{Name: r.Source.Name, Namespace: r.Source.Namespace, Phase: s.Phase, Canary: s.Canary, Stable: s.Stable, Weight: s.CanaryWeight}
}

func (c *Controller) save() {
	c.mu.Lock()
	states := maps.Clone(c.states)
	c.mu.Unlock()
	if err := c.store.Save(states); err != nil {
		c.log.Error("rollout state not saved; a restart would start from the last saved state", zap.Error(err))
	}
}

// serviceName is the short name of the service behind host.
func serviceName(snap *model.Snapshot, host string) string {
	for _, s := range snap.Services {
		if s.Hostname == host {
			return s.Name
		}
	}
	return ""
}

// canaryClusters are the Envoy clusters of the canary subset, one per HTTP port.
func canaryClusters(snap *model.Snapshot, host, subset string) []string {
	var out []string
	for _, s := range snap.Services {
		if s.Hostname != host {
			continue
		}
		for _, p := range s.Ports {
			if p.Protocol.IsHTTP() {
				out = append(out, fmt.Sprintf("outbound|%d|%s|%s", p.Number, subset, host))
			}
		}
	}
	slices.Sort(out)
	return out
}

// Status is one rollout as the admin API and `weir rollout` show it.
type Status struct {
	Namespace string                `json:"namespace"`
	Name      string                `json:"name"`
	Host      string                `json:"host"`
	Strategy  string                `json:"strategy"`
	Steps     int                   `json:"steps"`
	Weights   []int32               `json:"weights"` // the canary weight of each step
	Interval  string                `json:"interval"`
	Threshold int32                 `json:"threshold"`
	State     State                 `json:"state"`
	Pending   []string              `json:"pending,omitempty"`
	Spec      *v1alpha1.RolloutSpec `json:"spec"`
}

// List returns every rollout of the current snapshot, sorted by namespace/name.
func (c *Controller) List() []Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap == nil {
		return nil
	}
	var out []Status
	for _, r := range c.snap.Rollouts {
		k := key(r)
		st, ok := c.states[k]
		if !ok {
			st = State{Phase: v1alpha1.PhaseInitialized, Stable: r.Spec.Stable}
		}
		s := Status{Namespace: r.Source.Namespace, Name: r.Source.Name, Host: Host(c.snap, r), Strategy: strategyName(r.Spec),
			Interval: r.Spec.Analysis.Interval.String(), Threshold: r.Spec.Analysis.Threshold, State: st,
			Pending: c.pendingOf[k], Spec: r.Spec}
		for _, p := range plan(r.Spec) {
			s.Weights = append(s.Weights, p.weight)
		}
		s.Steps = len(s.Weights)
		out = append(out, s)
	}
	return out
}

func strategyName(s *v1alpha1.RolloutSpec) string {
	switch {
	case s.Strategy.BlueGreen != nil:
		return "blueGreen"
	case s.Strategy.ABTesting != nil:
		return "abTesting"
	}
	return "canary"
}
