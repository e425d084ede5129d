// Package rollout is weir's progressive delivery: a pure decide function that moves a
// Rollout from one state to the next, and a thin controller that feeds it observations
// (ACKs, metrics, webhooks) and carries out what it decides.
package rollout

import (
	"time"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

// step is one stage of a rollout's plan.
type step struct {
	weight int32 // canary weight, in percent
	match  bool  // A/B: requests that match go to the canary
	mirror bool  // blue/green: a copy of every request goes to the canary
	checks int32 // passed checks needed to leave the step; 0 for a pause
	pause  bool
	// pauseFor is how long a pause lasts; 0 waits for `weir rollout resume`.
	pauseFor time.Duration
}

// plan turns a strategy into steps. Promotion (all traffic to the canary) follows the
// last step and is not part of the plan.
func plan(s *v1alpha1.RolloutSpec) []step {
	st := s.Strategy
	switch {
	case st.BlueGreen != nil:
		return []step{{weight: 0, mirror: true, checks: st.BlueGreen.Iterations}}
	case st.ABTesting != nil:
		return []step{{weight: 0, match: true, checks: st.ABTesting.Iterations}}
	case st.Canary != nil:
		return canarySteps(st.Canary)
	}
	return nil
}

func canarySteps(c *v1alpha1.CanaryStrategy) []step {
	var out []step
	switch {
	case len(c.Steps) > 0:
		weight := int32(0)
		for _, s := range c.Steps {
			if s.SetWeight != nil {
				weight = *s.SetWeight
				out = append(out, step{weight: weight, checks: 1})
				continue
			}
			p := step{weight: weight, pause: true}
			if s.Pause != nil && s.Pause.Duration != nil {
				p.pauseFor = s.Pause.Duration.Duration
			}
			out = append(out, p)
		}
	case len(c.StepWeights) > 0:
		for _, w := range c.StepWeights {
			out = append(out, step{weight: w, checks: 1})
		}
	case c.StepWeight > 0:
		max := c.MaxWeight
		if max == 0 {
			max = 100
		}
		for w := c.StepWeight; w <= max; w += c.StepWeight {
			out = append(out, step{weight: w, checks: 1})
		}
	}
	return out
}
