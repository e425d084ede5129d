package rollout

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/model"
)

// fakeRouter applies every refresh at once; pending proxies can be set.
type fakeRouter struct {
	mu      sync.Mutex
	gen     uint64
	pending []string
}

func (f *fakeRouter) Refresh() uint64 { f.mu.Lock(); defer f.mu.Unlock(); f.gen++; return f.gen }
func (f *fakeRouter) Published() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen
}
func (f *fakeRouter) Pending(string) []string { f.mu.Lock(); defer f.mu.Unlock(); return f.pending }

// fakeProvider answers every query with one value.
type fakeProvider struct {
	value float64
	calls atomic.Int32
	last  atomic.Value // Query
}

func (f *fakeProvider) Measure(_ context.Context, q Query) (Result, error) {
	f.calls.Add(1)
	f.last.Store(q)
	return Result{Value: f.value, Requests: 100}, nil
}

func meshWith(r *model.Rollout) *model.Snapshot {
	return &model.Snapshot{
		Services: []*model.Service{{Hostname: fqdn, Name: "reviews", Namespace: "default",
			Ports: []model.ServicePort{{Name: "http", Number: 9080, Protocol: model.ProtocolHTTP}}}},
		DestinationRules: []*model.DestinationRule{{Source: model.Ref{Kind: "DestinationRule", Namespace: "default", Name: "reviews"},
			Spec: &networking.DestinationRule{Host: "reviews", Subsets: []*networking.Subset{{Name: "v1"}, {Name: "v2"}}}}},
		Rollouts: []*model.Rollout{r},
	}
}

func fastSpec(s *v1alpha1.RolloutSpec) {
	s.Analysis.Interval = v1alpha1.Duration{Duration: 20 * time.Millisecond}
}

func startController(t *testing.T, router Router, p Provider, store Store, snap *model.Snapshot) *Controller {
	t.Helper()
	c, err := NewController(zaptest.NewLogger(t), router, Providers{Builtin: p}, store, nil, WithTick(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go c.Run(ctx)
	c.Update(snap)
	return c
}

func waitPhase(t *testing.T, c *Controller, want v1alpha1.Phase) State {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if l := c.List(); len(l) == 1 && l[0].State.Phase == want {
			return l[0].State
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("phase %s not reached: %+v", want, c.List())
	return State{}
}

func TestControllerPromotesAHealthyCanary(t *testing.T) {
	store := &MemoryStore{}
	p := &fakeProvider{value: 100}
	c := startController(t, &fakeRouter{}, p, store, meshWith(rolloutOf(fastSpec)))
	st := waitPhase(t, c, v1alpha1.PhaseSucceeded)
	if st.Stable != "v2" || st.CanaryWeight != 0 {
		t.Errorf("after promotion: %+v", st)
	}
	q := p.last.Load().(Query)
	if q.Canary != "v2" || len(q.Clusters) != 1 || q.Clusters[0] != "outbound|9080|v2|"+fqdn || q.Window != 20*time.Millisecond {
		t.Errorf("metrics asked with %+v", q)
	}
	saved, _ := store.Load()
	if saved["default/reviews"].Phase != v1alpha1.PhaseSucceeded {
		t.Errorf("saved state: %+v", saved)
	}
	// The overlay now routes everything to the new stable subset.
	snap, _ := c.Overlay(meshWith(rolloutOf(fastSpec)))
	if r := snap.VirtualServices[0].Spec.Http[0].Route; len(r) != 1 || r[0].Destination.Subset != "v2" || r[0].Weight != 100 {
		t.Errorf("routes after promotion: %v", r)
	}
}

func TestControllerRollsBackAFailingCanary(t *testing.T) {
	c := startController(t, &fakeRouter{}, &fakeProvider{value: 50}, &MemoryStore{}, meshWith(rolloutOf(fastSpec)))
	st := waitPhase(t, c, v1alpha1.PhaseFailed)
	if st.CanaryWeight != 0 || st.FailedChecks != 2 || !strings.Contains(st.Message, "request-success-rate 50 is below 99") {
		t.Errorf("after rollback: %+v", st)
	}
}

func TestControllerJudgesNothingBeforeEveryProxyACKs(t *testing.T) {
	router := &fakeRouter{pending: []string{"sidecar-7"}}
	p := &fakeProvider{value: 100}
	c := startController(t, router, p, &MemoryStore{}, meshWith(rolloutOf(fastSpec)))
	st := waitPhase(t, c, v1alpha1.PhaseProgressing)
	time.Sleep(100 * time.Millisecond) // five intervals
	st = c.List()[0].State
	if st.Applied || p.calls.Load() != 0 || !strings.Contains(st.Message, "sidecar-7") {
		t.Fatalf("judged before the ACK: applied %v, %d metric queries, message %q", st.Applied, p.calls.Load(), st.Message)
	}
	router.mu.Lock()
	router.pending = nil
	router.mu.Unlock()
	waitPhase(t, c, v1alpha1.PhaseSucceeded)
}

func TestRestartKeepsTheWeights(t *testing.T) {
	store := &MemoryStore{}
	_ = store.Save(map[string]State{"default/reviews": {Phase: v1alpha1.PhaseProgressing, Stable: "v1", Canary: "v2",
		Step: 0, CanaryWeight: 25, Applied: true, StepStart: time.Now()}})
	c, err := NewController(zaptest.NewLogger(t), &fakeRouter{}, Providers{}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Before any reconcile, the routes already carry the saved weights.
	snap, _ := c.Overlay(meshWith(rolloutOf()))
	r := snap.VirtualServices[0].Spec.Http[0].Route
	if len(r) != 2 || r[0].Weight != 75 || r[1].Weight != 25 {
		t.Errorf("routes after restart: %v", r)
	}
}

func TestCommandForAnUnknownRollout(t *testing.T) {
	c := startController(t, &fakeRouter{}, &fakeProvider{value: 100}, &MemoryStore{}, meshWith(rolloutOf(fastSpec)))
	if err := c.Command("default", "nope", Command{Kind: CmdAbort}); err == nil {
		t.Error("no error for an unknown rollout")
	}
}

func TestControllerCountsACheckOnceWhenAGateIsAsked(t *testing.T) {
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer hook.Close()
	spec := func(s *v1alpha1.RolloutSpec) {
		fastSpec(s)
		s.Strategy.Canary = &v1alpha1.CanaryStrategy{StepWeights: []int32{10, 20, 30}}
		s.Analysis.Webhooks = []v1alpha1.Webhook{{Name: "ok", Type: v1alpha1.HookConfirmTrafficIncrease, URL: hook.URL}}
	}
	c := startController(t, &fakeRouter{}, &fakeProvider{value: 100}, &MemoryStore{}, meshWith(rolloutOf(spec)))
	st := waitPhase(t, c, v1alpha1.PhaseSucceeded)
	// Three steps, one check each: a check counted twice would skip a step's gate.
	if st.Iterations != 3 || calls.Load() != 2 {
		t.Errorf("iterations %d and %d confirm-traffic-increase calls, want 3 and 2", st.Iterations, calls.Load())
	}
}

func TestControllerDoesNotStartARolloutItCannotRoute(t *testing.T) {
	p := &fakeProvider{value: 100}
	c := startController(t, &fakeRouter{}, p, &MemoryStore{}, meshWith(rolloutOf(fastSpec, func(s *v1alpha1.RolloutSpec) { s.Canary = "v9" })))
	time.Sleep(100 * time.Millisecond) // five intervals
	st := c.List()[0].State
	if st.Phase != v1alpha1.PhaseInitialized || st.CanaryWeight != 0 || p.calls.Load() != 0 ||
		!strings.Contains(st.Message, `defines subset "v9"`) {
		t.Errorf("a rollout to a subset that does not exist: %+v", st)
	}
}
