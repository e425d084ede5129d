package rollout

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func canarySpec(mut ...func(*v1alpha1.RolloutSpec)) *v1alpha1.RolloutSpec {
	s := &v1alpha1.RolloutSpec{
		Host: "reviews", Stable: "v1", Canary: "v2",
		Strategy: v1alpha1.Strategy{Canary: &v1alpha1.CanaryStrategy{StepWeight: 25, MaxWeight: 50}},
		Analysis: v1alpha1.Analysis{Interval: v1alpha1.Duration{Duration: time.Minute}, Threshold: 2,
			Metrics: []v1alpha1.Metric{{Name: v1alpha1.MetricSuccessRate, ThresholdRange: v1alpha1.ThresholdRange{Min: ptr(99.0)}}}},
	}
	for _, m := range mut {
		m(s)
	}
	return s
}

func withHook(t v1alpha1.WebhookType) func(*v1alpha1.RolloutSpec) {
	return func(s *v1alpha1.RolloutSpec) {
		s.Analysis.Webhooks = append(s.Analysis.Webhooks, v1alpha1.Webhook{Name: string(t), Type: t, URL: "http://hook"})
	}
}

// Observations, written short.
func applied() Observations    { return Observations{Applied: true} }
func notApplied() Observations { return Observations{} }
func checkWith(rate float64, requests float64) Observations {
	return Observations{Applied: true, Check: &Check{Metrics: []MetricCheck{{Name: v1alpha1.MetricSuccessRate, Value: rate, Min: ptr(99.0), Requests: requests}}}}
}
func good() Observations { return checkWith(100, 50) }
func bad() Observations  { return checkWith(80, 50) }
func gates(kv map[v1alpha1.WebhookType]error) Observations {
	return Observations{Applied: true, Gates: kv}
}
func cmd(k CommandKind, w int32) Observations {
	return Observations{Applied: true, Command: &Command{Kind: k, Weight: w}}
}

// view is the part of a State a case asserts.
type view struct {
	Phase   v1alpha1.Phase
	Stable  string
	Canary  string
	Step    int
	Weight  int32
	Match   bool
	Mirror  bool
	Failed  int32
	Applied bool
	Need    []v1alpha1.WebhookType
}

func viewOf(d Decision) view {
	s := d.State
	return view{Phase: s.Phase, Stable: s.Stable, Canary: s.Canary, Step: s.Step, Weight: s.CanaryWeight, Match: s.Match,
		Mirror: s.Mirror, Failed: s.FailedChecks, Applied: s.Applied, Need: d.Need}
}

const (
	initialized = v1alpha1.PhaseInitialized
	progressing = v1alpha1.PhaseProgressing
	paused      = v1alpha1.PhasePaused
	waiting     = v1alpha1.PhaseWaiting
	waitingProm = v1alpha1.PhaseWaitingPromotion
	promoting   = v1alpha1.PhasePromoting
	succeeded   = v1alpha1.PhaseSucceeded
	failed      = v1alpha1.PhaseFailed
)

func TestDecide(t *testing.T) {
	type turn struct {
		obs  Observations
		want view
	}
	tests := []struct {
		name  string
		spec  *v1alpha1.RolloutSpec
		start State
		turns []turn
	}{
		{
			name: "nothing to roll out", spec: canarySpec(func(s *v1alpha1.RolloutSpec) { s.Canary = "v1" }),
			turns: []turn{{notApplied(), view{Phase: initialized, Stable: "v1"}}},
		},
		{
			name: "canary steps through to promotion, each step only once applied",
			spec: canarySpec(),
			turns: []turn{
				{notApplied(), view{Phase: progressing, Stable: "v1", Canary: "v2", Weight: 25}},
				{notApplied(), view{Phase: progressing, Stable: "v1", Canary: "v2", Weight: 25}},
				{applied(), view{Phase: progressing, Stable: "v1", Canary: "v2", Weight: 25, Applied: true}},
				{good(), view{Phase: progressing, Stable: "v1", Canary: "v2", Step: 1, Weight: 50}},
				{applied(), view{Phase: progressing, Stable: "v1", Canary: "v2", Step: 1, Weight: 50, Applied: true}},
				{good(), view{Phase: promoting, Stable: "v1", Canary: "v2", Step: 2, Weight: 100}},
				{notApplied(), view{Phase: promoting, Stable: "v1", Canary: "v2", Step: 2, Weight: 100}},
				{applied(), view{Phase: succeeded, Stable: "v2", Step: 2, Applied: true}},
				{applied(), view{Phase: succeeded, Stable: "v2", Step: 2, Applied: true}},
			},
		},
		{
			name: "failed checks up to the threshold roll back",
			spec: canarySpec(),
			turns: []turn{
				{applied(), view{Phase: progressing, Stable: "v1", Canary: "v2", Weight: 25}},
				{applied(), view{Phase: progressing, Stable: "v1", Canary: "v2", Weight: 25, Applied: true}},
				{bad(), view{Phase: progressing, Stable: "v1", Canary: "v2", Weight: 25, Failed: 1, Applied: true}},
				{good(), view{Phase: progressing, Stable: "v1", Canary: "v2", Step: 1, Weight: 50, Failed: 1}},
				{applied(), view{Phase: progressing, Stable: "v1", Canary: "v2", Step: 1, Weight: 50, Failed: 1, Applied: true}},
				{bad(), view{Phase: failed, Stable: "v1", Canary: "v2", Step: 1, Weight: 0, Failed: 2}},
				{applied(), view{Phase: failed, Stable: "v1", Canary: "v2", Step: 1, Weight: 0, Failed: 2, Applied: true}},
			},
		},
		{
			name:  "too few requests hold the step by default",
			spec:  canarySpec(),
			start: State{Phase: progressing, Stable: "v1", Canary: "v2", CanaryWeight: 25, Applied: true},
			turns: []turn{{checkWith(100, 0), view{Phase: progressing, Stable: "v1", Canary: "v2", Weight: 25, Applied: true}}},
		},
		{
			name:  "too few requests fail with noData: fail",
			spec:  canarySpec(func(s *v1alpha1.RolloutSpec) { s.Analysis.NoData = v1alpha1.NoDataFail; s.Analysis.MinRequests = 100 }),
			start: State{Phase: progressing, Stable: "v1", Canary: "v2", CanaryWeight: 25, Applied: true},
			turns: []turn{{checkWith(100, 50), view{Phase: progressing, Stable: "v1", Canary: "v2", Weight: 25, Failed: 1, Applied: true}}},
		},
		{
			name:  "a metric the provider could not measure fails the check",
			spec:  canarySpec(),
			start: State{Phase: progressing, Stable: "v1", Canary: "v2", CanaryWeight: 25, Applied: true},
			turns: []turn{{Observations{Applied: true, Check: &Check{Metrics: []MetricCheck{{Name: "request-success-rate", Error: "prometheus down"}}}},
				view{Phase: progressing, Stable: "v1", Canary: "v2", Weight: 25, Failed: 1, Applied: true}}},
		},
		{
			name:  "a rollback webhook answering 2xx rolls back at once",
			spec:  canarySpec(withHook(v1alpha1.HookRollback)),
			start: State{Phase: progressing, Stable: "v1", Canary: "v2", CanaryWeight: 25, Applied: true},
			turns: []turn{{Observations{Applied: true, Check: &Check{Rollback: "stop"}}, view{Phase: failed, Stable: "v1", Canary: "v2"}}},
		},
		{
			name:  "a failed rollout stays failed until spec.canary changes",
			spec:  canarySpec(),
			start: State{Phase: failed, Stable: "v1", Canary: "v2", Applied: true, Message: "rolled back"},
			turns: []turn{{applied(), view{Phase: failed, Stable: "v1", Canary: "v2", Applied: true}}},
		},
		{
			name:  "a new canary after a failure starts again",
			spec:  canarySpec(func(s *v1alpha1.RolloutSpec) { s.Canary = "v3" }),
			start: State{Phase: failed, Stable: "v1", Canary: "v2", FailedChecks: 2, Applied: true},
			turns: []turn{{applied(), view{Phase: progressing, Stable: "v1", Canary: "v3", Weight: 25}}},
		},
		{
			name:  "the canary changed mid-rollout restarts the analysis",
			spec:  canarySpec(func(s *v1alpha1.RolloutSpec) { s.Canary = "v3" }),
			start: State{Phase: progressing, Stable: "v1", Canary: "v2", Step: 1, CanaryWeight: 50, FailedChecks: 1, Applied: true},
			turns: []turn{{applied(), view{Phase: progressing, Stable: "v1", Canary: "v3", Weight: 25}}},
		},
		{
			name:  "the canary set back to stable mid-rollout rolls back",
			spec:  canarySpec(func(s *v1alpha1.RolloutSpec) { s.Canary = "v1" }),
			start: State{Phase: progressing, Stable: "v1", Canary: "v2", CanaryWeight: 25, Applied: true},
			turns: []turn{{applied(), view{Phase: failed, Stable: "v1", Canary: "v2"}}},
		},
		{
			name: "confirm-rollout holds the start until it answers 2xx",
			spec: canarySpec(withHook(v1alpha1.HookConfirmRollout)),
			turns: []turn{
				{applied(), view{Phase: initialized, Stable: "v1", Applied: true, Need: []v1alpha1.WebhookType{v1alpha1.HookConfirmRollout}}},
				{gates(map[v1alpha1.WebhookType]error{v1alpha1.HookConfirmRollout: errors.New("403")}), view{Phase: waiting, Stable: "v1", Applied: true}},
				{applied(), view{Phase: waiting, Stable: "v1", Applied: true}},
				{Observations{Applied: true, Check: &Check{}}, view{Phase: waiting, Stable: "v1", Applied: true, Need: []v1alpha1.WebhookType{v1alpha1.HookConfirmRollout}}},
				{Observations{Applied: true, Check: &Check{}, Gates: map[v1alpha1.WebhookType]error{v1alpha1.HookConfirmRollout: nil}},
					view{Phase: progressing, Stable: "v1", Canary: "v2", Weight: 25}},
			},
		},
		{
			name: "pre-rollout failures count and roll back at the threshold",
			spec: canarySpec(withHook(v1alpha1.HookPreRollout)),
			turns: []turn{
				{gates(map[v1alpha1.WebhookType]error{v1alpha1.HookPreRollout: errors.New("500")}), view{Phase: waiting, Stable: "v1", Failed: 1, Applied: true}},
				{Observations{Applied: true, Check: &Check{}, Gates: map[v1alpha1.WebhookType]error{v1alpha1.HookPreRollout: errors.New("500")}},
					view{Phase: failed, Stable: "v1", Canary: "v2", Failed: 2, Applied: true}},
			},
		},
		{
			name:  "confirm-traffic-increase holds a weight increase",
			spec:  canarySpec(withHook(v1alpha1.HookConfirmTrafficIncrease)),
			start: State{Phase: progressing, Stable: "v1", Canary: "v2", CanaryWeight: 25, Applied: true},
			turns: []turn{
				{good(), view{Phase: progressing, Stable: "v1", Canary: "v2", Weight: 25, Applied: true, Need: []v1alpha1.WebhookType{v1alpha1.HookConfirmTrafficIncrease}}},
				{Observations{Applied: true, Check: good().Check, Gates: map[v1alpha1.WebhookType]error{v1alpha1.HookConfirmTrafficIncrease: errors.New("no")}},
					view{Phase: progressing, Stable: "v1", Canary: "v2", Weight: 25, Applied: true}},
				{Observations{Applied: true, Check: good().Check, Gates: map[v1alpha1.WebhookType]error{v1alpha1.HookConfirmTrafficIncrease: nil}},
					view{Phase: progressing, Stable: "v1", Canary: "v2", Step: 1, Weight: 50}},
			},
		},
		{
			name:  "confirm-promotion holds promotion",
			spec:  canarySpec(withHook(v1alpha1.HookConfirmPromotion)),
			start: State{Phase: progressing, Stable: "v1", Canary: "v2", Step: 1, CanaryWeight: 50, Applied: true},
			turns: []turn{
				{Observations{Applied: true, Check: good().Check, Gates: map[v1alpha1.WebhookType]error{v1alpha1.HookConfirmPromotion: errors.New("no")}},
					view{Phase: waitingProm, Stable: "v1", Canary: "v2", Step: 1, Weight: 50, Applied: true}},
				{applied(), view{Phase: waitingProm, Stable: "v1", Canary: "v2", Step: 1, Weight: 50, Applied: true}},
				{Observations{Applied: true, Check: &Check{}, Gates: map[v1alpha1.WebhookType]error{v1alpha1.HookConfirmPromotion: nil}},
					view{Phase: promoting, Stable: "v1", Canary: "v2", Step: 2, Weight: 100}},
			},
		},
		{
			name: "blue/green: 0 % but a mirrored copy of every request for its iterations, then everything at once",
			spec: canarySpec(func(s *v1alpha1.RolloutSpec) {
				s.Strategy = v1alpha1.Strategy{BlueGreen: &v1alpha1.BlueGreenStrategy{Iterations: 2}}
			}),
			start: State{Phase: initialized, Stable: "v1", Applied: true},
			turns: []turn{
				// The weight stays 0, yet the mirror is a change of routes to be ACKed.
				{applied(), view{Phase: progressing, Stable: "v1", Canary: "v2", Mirror: true}},
				{applied(), view{Phase: progressing, Stable: "v1", Canary: "v2", Mirror: true, Applied: true}},
				{good(), view{Phase: progressing, Stable: "v1", Canary: "v2", Mirror: true, Applied: true}},
				{good(), view{Phase: promoting, Stable: "v1", Canary: "v2", Step: 1, Weight: 100}},
				{applied(), view{Phase: succeeded, Stable: "v2", Step: 1, Applied: true}},
			},
		},
		{
			name: "blue/green: a rollback stops the mirror, and waits for the routes without it",
			spec: canarySpec(func(s *v1alpha1.RolloutSpec) {
				s.Strategy = v1alpha1.Strategy{BlueGreen: &v1alpha1.BlueGreenStrategy{Iterations: 2}}
			}),
			start: State{Phase: progressing, Stable: "v1", Canary: "v2", Mirror: true, FailedChecks: 1, Applied: true},
			turns: []turn{
				{bad(), view{Phase: failed, Stable: "v1", Canary: "v2", Failed: 2}},
				{applied(), view{Phase: failed, Stable: "v1", Canary: "v2", Failed: 2, Applied: true}},
			},
		},
		{
			name: "A/B: matching requests go to the canary for its iterations",
			spec: canarySpec(func(s *v1alpha1.RolloutSpec) {
				s.Strategy = v1alpha1.Strategy{ABTesting: &v1alpha1.ABStrategy{Iterations: 1,
					Match: []v1alpha1.Match{{Headers: map[string]v1alpha1.StringMatch{"x-canary": {Exact: "true"}}}}}}
			}),
			start: State{Phase: initialized, Stable: "v1", Applied: true},
			turns: []turn{
				{notApplied(), view{Phase: progressing, Stable: "v1", Canary: "v2", Match: true}},
				{applied(), view{Phase: progressing, Stable: "v1", Canary: "v2", Match: true, Applied: true}},
				{good(), view{Phase: promoting, Stable: "v1", Canary: "v2", Step: 1, Weight: 100}},
			},
		},
		{
			name:  "commands: pause holds, set-weight holds at a weight, resume returns to the step",
			spec:  canarySpec(),
			start: State{Phase: progressing, Stable: "v1", Canary: "v2", CanaryWeight: 25, Applied: true},
			turns: []turn{
				{cmd(CmdPause, 0), view{Phase: paused, Stable: "v1", Canary: "v2", Weight: 25, Applied: true}},
				{good(), view{Phase: paused, Stable: "v1", Canary: "v2", Weight: 25, Applied: true}},
				{cmd(CmdSetWeight, 40), view{Phase: paused, Stable: "v1", Canary: "v2", Weight: 40}},
				{cmd(CmdResume, 0), view{Phase: progressing, Stable: "v1", Canary: "v2", Weight: 25}},
			},
		},
		{
			name:  "commands: promote skips the remaining steps",
			spec:  canarySpec(withHook(v1alpha1.HookConfirmPromotion)),
			start: State{Phase: progressing, Stable: "v1", Canary: "v2", CanaryWeight: 25, Applied: true},
			turns: []turn{{cmd(CmdPromote, 0), view{Phase: promoting, Stable: "v1", Canary: "v2", Step: 2, Weight: 100}}},
		},
		{
			name:  "commands: abort rolls back",
			spec:  canarySpec(),
			start: State{Phase: progressing, Stable: "v1", Canary: "v2", CanaryWeight: 25, Applied: true},
			turns: []turn{{cmd(CmdAbort, 0), view{Phase: failed, Stable: "v1", Canary: "v2"}}},
		},
		{
			name: "steps with an open pause wait for resume",
			spec: canarySpec(func(s *v1alpha1.RolloutSpec) {
				s.Strategy.Canary = &v1alpha1.CanaryStrategy{Steps: []v1alpha1.Step{{SetWeight: ptr(int32(20))}, {Pause: &v1alpha1.Pause{}}, {SetWeight: ptr(int32(60))}}}
			}),
			start: State{Phase: progressing, Stable: "v1", Canary: "v2", CanaryWeight: 20, Applied: true},
			turns: []turn{
				{good(), view{Phase: progressing, Stable: "v1", Canary: "v2", Step: 1, Weight: 20, Applied: true}},
				{applied(), view{Phase: paused, Stable: "v1", Canary: "v2", Step: 1, Weight: 20, Applied: true}},
				{good(), view{Phase: paused, Stable: "v1", Canary: "v2", Step: 1, Weight: 20, Applied: true}},
				{cmd(CmdResume, 0), view{Phase: progressing, Stable: "v1", Canary: "v2", Step: 2, Weight: 60}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.start
			for i, tn := range tt.turns {
				tn.obs.Now = t0.Add(time.Duration(i) * time.Minute)
				d := Decide(s, tt.spec, tn.obs)
				if diff := cmp.Diff(tn.want, viewOf(d)); diff != "" {
					t.Fatalf("turn %d (-want +got):\n%s\nmessage: %s", i, diff, d.State.Message)
				}
				if d.State.Message == "" {
					t.Errorf("turn %d: no message", i)
				}
				s = d.State
			}
		})
	}
}

func TestTimedPauseEndsByItself(t *testing.T) {
	spec := canarySpec(func(s *v1alpha1.RolloutSpec) {
		s.Strategy.Canary = &v1alpha1.CanaryStrategy{Steps: []v1alpha1.Step{
			{SetWeight: ptr(int32(20))}, {Pause: &v1alpha1.Pause{Duration: v1alpha1.D(5 * time.Minute)}}, {SetWeight: ptr(int32(60))}}}
	})
	s := State{Phase: progressing, Stable: "v1", Canary: "v2", Step: 1, CanaryWeight: 20, Applied: true, StepStart: t0}
	d := Decide(s, spec, Observations{Now: t0.Add(4 * time.Minute), Applied: true})
	if d.State.Phase != paused || d.State.Step != 1 {
		t.Fatalf("before the pause ends: %+v", d.State)
	}
	d = Decide(d.State, spec, Observations{Now: t0.Add(5 * time.Minute), Applied: true})
	if d.State.Step != 2 || d.State.CanaryWeight != 60 || d.State.Phase != progressing {
		t.Fatalf("after the pause: %+v", d.State)
	}
}

func TestCheckDue(t *testing.T) {
	spec := canarySpec()
	base := State{Phase: progressing, Stable: "v1", Canary: "v2", CanaryWeight: 25, Applied: true, StepStart: t0}
	tests := []struct {
		name string
		mut  func(*State)
		at   time.Duration
		want bool
	}{
		{"before an interval", nil, 59 * time.Second, false},
		{"an interval after the weights took effect", nil, time.Minute, true},
		{"not applied yet", func(s *State) { s.Applied = false }, time.Hour, false},
		{"held by a person", func(s *State) { s.Held = true }, time.Hour, false},
		{"an interval after the last check", func(s *State) { s.LastCheck = t0.Add(time.Minute) }, 90 * time.Second, false},
		{"idle", func(s *State) { s.Phase = succeeded }, time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			if tt.mut != nil {
				tt.mut(&s)
			}
			if got := CheckDue(s, spec, t0.Add(tt.at)); got != tt.want {
				t.Errorf("CheckDue = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name string
		c    v1alpha1.CanaryStrategy
		want []int32
	}{
		{"stepWeight to maxWeight", v1alpha1.CanaryStrategy{StepWeight: 10, MaxWeight: 50}, []int32{10, 20, 30, 40, 50}},
		{"stepWeight without max", v1alpha1.CanaryStrategy{StepWeight: 40}, []int32{40, 80}},
		{"stepWeights", v1alpha1.CanaryStrategy{StepWeights: []int32{1, 5, 25}}, []int32{1, 5, 25}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int32
			for _, s := range canarySteps(&tt.c) {
				got = append(got, s.weight)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("weights (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEveryFailureIsAnEvent(t *testing.T) {
	spec := canarySpec(withHook(v1alpha1.HookConfirmPromotion))
	s := State{Phase: progressing, Stable: "v1", Canary: "v2", Step: 1, CanaryWeight: 50, Applied: true}
	cases := []struct {
		name string
		obs  Observations
	}{
		{"a failed check", bad()},
		{"a gate that says no", Observations{Applied: true, Check: good().Check, Gates: map[v1alpha1.WebhookType]error{v1alpha1.HookConfirmPromotion: errors.New("403")}}},
		{"a rollback", Observations{Applied: true, Check: &Check{Rollback: "stop"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.obs.Now = t0
			d := Decide(s, spec, c.obs)
			warned := false
			for _, e := range d.Events {
				warned = warned || e.Warning
			}
			if !warned {
				t.Errorf("no warning event: %+v", d.Events)
			}
		})
	}
}
