package rollout

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

// Observations are what the controller saw since the last decision.
type Observations struct {
	Now time.Time
	// Applied: every proxy that routes to the service has ACKed the state's weights.
	Applied bool
	// Pending names a few proxies that have not ACKed yet, for the message.
	Pending []string
	// Check is the analysis of one interval, when CheckDue said one was due. In the
	// Waiting and WaitingPromotion phases an empty Check marks the interval at which the
	// gate webhooks are asked again.
	Check *Check
	// Gates holds the answers of the gate webhooks Decide asked for (nil: passed).
	Gates map[v1alpha1.WebhookType]error
	// Command is a person's request, applied before anything else.
	Command *Command
}

// Check is one interval's analysis.
type Check struct {
	Metrics []MetricCheck
	// Failed names the rollout webhooks that did not answer 2xx.
	Failed []string
	// Rollback names a rollback webhook that answered 2xx.
	Rollback string
}

// Event is something a person should hear about: logged, counted and sent to event
// webhooks.
type Event struct {
	Warning bool
	Reason  string
	Message string
}

// Decision is Decide's answer.
type Decision struct {
	State  State
	Events []Event
	// Need lists gate webhooks to call before the state can move on; call them and
	// Decide again with their answers in Observations.Gates.
	Need []v1alpha1.WebhookType
}

// CheckDue reports whether an interval has passed since the current weights took effect
// (or since the last check), so the controller should measure and Decide with a Check.
func CheckDue(s State, spec *v1alpha1.RolloutSpec, now time.Time) bool {
	interval := spec.Analysis.Interval.Duration
	since := s.LastCheck
	switch s.Phase {
	case v1alpha1.PhaseWaiting, v1alpha1.PhaseWaitingPromotion:
	case v1alpha1.PhaseProgressing:
		if !s.Applied || s.Held || s.Step >= len(plan(spec)) || plan(spec)[s.Step].pause {
			return false
		}
		if s.StepStart.After(since) {
			since = s.StepStart
		}
	default:
		return false
	}
	return now.Sub(since) >= interval
}

// Decide moves a rollout one decision forward. It is pure: the same state, spec and
// observations always give the same decision.
func Decide(s State, spec *v1alpha1.RolloutSpec, obs Observations) Decision {
	d := &decider{s: s, spec: spec, obs: obs, plan: plan(spec)}
	d.decide()
	return Decision{State: d.s, Events: d.events, Need: d.need}
}

type decider struct {
	s      State
	spec   *v1alpha1.RolloutSpec
	obs    Observations
	plan   []step
	events []Event
	need   []v1alpha1.WebhookType
}

func (d *decider) decide() {
	if d.s.Phase == "" {
		d.s = State{Phase: v1alpha1.PhaseInitialized, Stable: d.spec.Stable}
		d.transition(v1alpha1.PhaseInitialized, "Initialized", "all traffic on %s", d.spec.Stable)
	}
	if d.obs.Command != nil && d.command(*d.obs.Command) {
		return
	}
	if !d.s.active() {
		d.idle()
		return
	}
	switch {
	case d.spec.Canary == d.s.Stable:
		d.rollback("spec.canary is the stable subset again")
		return
	case d.spec.Canary != d.s.Canary:
		d.event(false, "Restarted", "canary changed from %s to %s: analysis starts again", d.s.Canary, d.spec.Canary)
		d.start()
		return
	}
	if !d.s.Applied {
		d.awaitApplied()
		return
	}
	switch {
	case d.s.Phase == v1alpha1.PhasePromoting:
		d.s.Stable, d.s.Canary = d.s.Canary, ""
		d.s.CanaryWeight = 0
		d.transition(v1alpha1.PhaseSucceeded, "Succeeded", "promoted: all traffic on %s", d.s.Stable)
	case d.s.Held:
	case d.s.Phase == v1alpha1.PhaseWaitingPromotion:
		if d.obs.Check != nil {
			d.s.LastCheck = d.obs.Now
			d.promote(false)
		}
	case d.plan[d.s.Step].pause:
		d.pause(d.plan[d.s.Step])
	case d.obs.Check != nil:
		d.check(*d.obs.Check)
	}
}

// idle handles a rollout with nothing under way: it starts one when spec.canary names a
// new subset.
func (d *decider) idle() {
	if !d.s.Applied && d.obs.Applied {
		d.s.Applied = true
	}
	switch {
	case d.spec.Canary == d.s.Stable:
		return
	case d.s.Phase == v1alpha1.PhaseFailed && d.spec.Canary == d.s.Canary:
		return // rolled back; a new spec.canary starts again
	case d.s.Phase == v1alpha1.PhaseWaiting && d.obs.Check == nil && d.obs.Gates == nil:
		return // the gates are asked again each interval
	}
	if d.gatesFail(v1alpha1.HookConfirmRollout, v1alpha1.HookPreRollout) {
		d.s.LastCheck = d.obs.Now
		return
	}
	d.start()
}

func (d *decider) start() {
	d.s.Canary = d.spec.Canary
	d.s.Step, d.s.Passed, d.s.Iterations, d.s.FailedChecks = 0, 0, 0, 0
	d.s.Held, d.s.Metrics, d.s.LastCheck = false, nil, time.Time{}
	d.setWeights(d.plan[0])
	d.transition(v1alpha1.PhaseProgressing, "Started", "rolling out %s: step 1 of %d, %d%% to the canary%s",
		d.s.Canary, len(d.plan), d.s.CanaryWeight, mirrorNote(d.s))
}

func mirrorNote(s State) string {
	if s.Mirror {
		return ", which gets a copy of every request (answers discarded)"
	}
	return ""
}

func (d *decider) awaitApplied() {
	if !d.obs.Applied {
		d.s.Message = fmt.Sprintf("waiting for every proxy to ACK %d%% to %s", d.s.CanaryWeight, d.s.Canary)
		if n := len(d.obs.Pending); n > 0 {
			d.s.Message += fmt.Sprintf(" (not yet: %s)", strings.Join(d.obs.Pending, ", "))
		}
		return
	}
	d.s.Applied, d.s.StepStart = true, d.obs.Now
	d.s.Message = fmt.Sprintf("%d%% to %s in effect on every proxy", d.s.CanaryWeight, d.s.Canary)
	if d.s.Phase == v1alpha1.PhasePromoting {
		d.decide() // finish the promotion now
	}
}

func (d *decider) pause(st step) {
	if st.pauseFor > 0 && !d.obs.Now.Before(d.s.StepStart.Add(st.pauseFor)) {
		d.s.Phase = v1alpha1.PhaseProgressing
		d.advance()
		return
	}
	d.s.Phase = v1alpha1.PhasePaused
	if st.pauseFor > 0 {
		left := d.s.StepStart.Add(st.pauseFor).Sub(d.obs.Now).Round(time.Second)
		d.s.Message = fmt.Sprintf("paused at %d%% for %s (%s left)", d.s.CanaryWeight, st.pauseFor, left)
	} else {
		d.s.Message = fmt.Sprintf("paused at %d%% until `weir rollout resume`", d.s.CanaryWeight)
	}
}

func (d *decider) check(c Check) {
	d.s.LastCheck = d.obs.Now
	d.s.Iterations++
	c.Metrics = slices.Clone(c.Metrics) // judge writes each verdict; the input stays as given
	d.s.Metrics = c.Metrics
	if c.Rollback != "" {
		d.rollback(fmt.Sprintf("rollback webhook %s asked for it", c.Rollback))
		return
	}
	verdict, why := judge(d.spec.Analysis, c)
	switch verdict {
	case Fail:
		d.s.FailedChecks++
		if d.s.FailedChecks >= d.spec.Analysis.Threshold {
			d.rollback(fmt.Sprintf("%d failed checks (threshold %d); last: %s", d.s.FailedChecks, d.spec.Analysis.Threshold, why))
			return
		}
		d.event(true, "CheckFailed", "check failed (%d of %d before rollback): %s", d.s.FailedChecks, d.spec.Analysis.Threshold, why)
		d.s.Message = "check failed: " + why
	case Hold:
		d.s.Message = "check held: " + why
	case Pass:
		d.s.Passed++
		d.s.Message = fmt.Sprintf("check passed at %d%%", d.s.CanaryWeight)
		if d.s.Passed >= d.plan[d.s.Step].checks {
			d.advance()
		}
	}
}

// advance moves to the next step, or to promotion after the last.
func (d *decider) advance() {
	next := d.s.Step + 1
	if next >= len(d.plan) {
		d.promote(false)
		return
	}
	st := d.plan[next]
	if st.weight > d.s.CanaryWeight && d.gatesFail(v1alpha1.HookConfirmTrafficIncrease) {
		return
	}
	d.s.Step, d.s.Passed = next, 0
	if st.weight == d.s.CanaryWeight && st.match == d.s.Match && st.mirror == d.s.Mirror {
		d.s.StepStart = d.obs.Now // nothing to ACK: the step starts now
	} else {
		d.setWeights(st)
	}
	d.event(false, "Step", "step %d of %d: %d%% to %s", next+1, len(d.plan), st.weight, d.s.Canary)
}

// promote sends all traffic to the canary, after confirm-promotion unless a person asked.
func (d *decider) promote(byPerson bool) {
	if !byPerson && d.gatesFail(v1alpha1.HookConfirmPromotion) {
		if len(d.need) == 0 {
			d.transition(v1alpha1.PhaseWaitingPromotion, "WaitingPromotion", "checks passed; waiting for confirm-promotion")
		}
		return
	}
	d.s.Step, d.s.Held = len(d.plan), false
	d.setWeights(step{weight: 100})
	d.transition(v1alpha1.PhasePromoting, "Promoting", "all traffic moving to %s", d.s.Canary)
}

func (d *decider) rollback(why string) {
	d.s.Held = false
	d.setWeights(step{weight: 0})
	d.event(true, "RolledBack", "rolled back %s: %s", d.s.Canary, why)
	d.transition(v1alpha1.PhaseFailed, "", "rolled back: %s; all traffic on %s", why, d.s.Stable)
}

func (d *decider) setWeights(st step) {
	if st.weight != d.s.CanaryWeight || st.match != d.s.Match || st.mirror != d.s.Mirror {
		d.s.Applied = false
	}
	d.s.CanaryWeight, d.s.Match, d.s.Mirror = st.weight, st.match, st.mirror
	if d.s.Applied {
		d.s.StepStart = d.obs.Now
	}
}

// command applies a person's request; it reports whether the decision is complete.
func (d *decider) command(c Command) bool {
	if !d.s.active() {
		d.s.Message = fmt.Sprintf("%s: no rollout under way", c.Kind)
		return false
	}
	switch c.Kind {
	case CmdPromote:
		d.event(false, "PromotedByHand", "promoted by hand at %d%%", d.s.CanaryWeight)
		d.promote(true)
	case CmdAbort:
		d.rollback("aborted by hand")
	case CmdPause:
		d.s.Held = true
		d.transition(v1alpha1.PhasePaused, "Paused", "paused by hand at %d%%", d.s.CanaryWeight)
	case CmdResume:
		d.s.Held = false
		if d.s.Step < len(d.plan) {
			d.setWeights(d.plan[d.s.Step])
		}
		d.transition(v1alpha1.PhaseProgressing, "Resumed", "resumed at step %d of %d", d.s.Step+1, len(d.plan))
		if d.s.Step < len(d.plan) && d.plan[d.s.Step].pause && d.plan[d.s.Step].pauseFor == 0 {
			d.advance() // resume ends a pause without a duration
		}
	case CmdSetWeight:
		d.s.Held = true
		d.setWeights(step{weight: c.Weight})
		d.transition(v1alpha1.PhasePaused, "WeightSet", "weight set by hand to %d%%; paused (resume returns to step %d)", c.Weight, d.s.Step+1)
	}
	return true
}

// gatesFail reports whether a gate webhook of one of the given types holds the rollout:
// one not asked yet (added to need) or one that answered with an error.
func (d *decider) gatesFail(types ...v1alpha1.WebhookType) bool {
	for _, t := range types {
		if !hasHook(d.spec, t) {
			continue
		}
		err, asked := d.obs.Gates[t]
		if !asked {
			d.need = append(d.need, t)
			return true
		}
		if err != nil {
			msg := fmt.Sprintf("%s webhook says no: %v", t, err)
			d.event(true, "WebhookRefused", "%s", msg)
			if t == v1alpha1.HookPreRollout {
				d.s.FailedChecks++
				if d.s.FailedChecks >= d.spec.Analysis.Threshold {
					d.s.Canary = d.spec.Canary
					d.rollback(msg)
					return true
				}
			}
			if !d.s.active() {
				d.s.Phase = v1alpha1.PhaseWaiting
			}
			d.s.Message = msg
			return true
		}
	}
	return false
}

func hasHook(spec *v1alpha1.RolloutSpec, t v1alpha1.WebhookType) bool {
	for _, h := range spec.Analysis.Webhooks {
		if h.Type == t {
			return true
		}
	}
	return false
}

func (d *decider) transition(p v1alpha1.Phase, reason, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if d.s.Phase != p {
		d.s.Phase, d.s.LastTransition = p, d.obs.Now
	}
	d.s.Message = msg
	if reason != "" {
		d.event(false, reason, "%s", msg)
	}
}

func (d *decider) event(warning bool, reason, format string, args ...any) {
	d.events = append(d.events, Event{Warning: warning, Reason: reason, Message: fmt.Sprintf(format, args...)})
}
