package rollout

import (
	"time"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

// State is where one rollout stands. The controller persists it (a state file in file
// mode) so that a restart neither resets nor jumps the weights.
type State struct {
	Phase  v1alpha1.Phase `json:"phase"`
	Stable string         `json:"stable"`
	// Canary is the subset being rolled out, or the last one that failed.
	Canary string `json:"canary,omitempty"`
	// Step indexes the plan; len(plan) means promotion.
	Step         int   `json:"step"`
	CanaryWeight int32 `json:"canaryWeight"`
	// Match sends requests that match the A/B rules to the canary.
	Match bool `json:"match,omitempty"`
	// Mirror sends a copy of every request to the canary, its answers discarded, so that
	// a blue/green canary has traffic to be judged on while users see only stable.
	Mirror       bool  `json:"mirror,omitempty"`
	FailedChecks int32 `json:"failedChecks"`
	// Passed counts the checks passed in the current step; Iterations all checks run.
	Passed     int32 `json:"passed"`
	Iterations int32 `json:"iterations"`
	// Applied is false from a change of weights until every proxy has ACKed it. Nothing
	// is judged meanwhile: the step's clock starts at StepStart, once applied.
	Applied bool `json:"applied"`
	// Held is set by a person (pause, set-weight) and cleared by resume.
	Held           bool          `json:"held,omitempty"`
	StepStart      time.Time     `json:"stepStart,omitzero"`
	LastCheck      time.Time     `json:"lastCheck,omitzero"`
	LastTransition time.Time     `json:"lastTransition,omitzero"`
	Message        string        `json:"message,omitempty"`
	Metrics        []MetricCheck `json:"metrics,omitempty"` // the last check's metrics
}

// Weights returns the stable and canary weights, which always add up to 100.
func (s State) Weights() (stable, canary int32) { return 100 - s.CanaryWeight, s.CanaryWeight }

// active reports whether a rollout is under way.
func (s State) active() bool {
	switch s.Phase {
	case v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseWaitingPromotion, v1alpha1.PhasePromoting:
		return true
	}
	return false
}

// MetricCheck is one metric's verdict at a check.
type MetricCheck struct {
	Name     string   `json:"name"`
	Value    float64  `json:"value"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	Requests float64  `json:"requests"` // -1: unknown
	NoData   bool     `json:"noData,omitempty"`
	Verdict  Verdict  `json:"verdict"`
	Error    string   `json:"error,omitempty"`
}

// Verdict of one check or metric.
type Verdict string

const (
	Pass Verdict = "pass"
	Fail Verdict = "fail"
	// Hold neither passes nor fails: too few requests to judge, with noData: hold.
	Hold Verdict = "hold"
)

// Command is what a person asks through the CLI or admin API.
type Command struct {
	Kind   CommandKind `json:"kind"`
	Weight int32       `json:"weight,omitempty"` // set-weight
}

type CommandKind string

const (
	CmdPromote   CommandKind = "promote"
	CmdAbort     CommandKind = "abort"
	CmdPause     CommandKind = "pause"
	CmdResume    CommandKind = "resume"
	CmdSetWeight CommandKind = "set-weight"
)
