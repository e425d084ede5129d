// Package v1alpha1 holds weir's own API: the Rollout, which moves traffic from a stable
// DestinationRule subset to a canary subset step by step, judged by metrics.
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Group, Version and Kind of a Rollout, as written in apiVersion and kind.
const (
	Group      = "weir.dev"
	Version    = "v1alpha1"
	APIVersion = Group + "/" + Version
	Kind       = "Rollout"
)

// Rollout moves the traffic of one service from its stable subset to a canary subset.
// A rollout starts when spec.canary names a subset other than the current stable one;
// it ends with all traffic on the canary (which becomes the stable subset) or, on
// failure, all traffic back on the stable subset.
type Rollout struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            RolloutSpec       `json:"spec"`
	Status          *RolloutStatus    `json:"status,omitempty"`
}

// RolloutSpec says what moves, how, and how each step is judged.
type RolloutSpec struct {
	// Host is the service whose traffic moves, as a VirtualService names it: a short name
	// ("reviews", resolved in the Rollout's namespace) or a full one.
	Host string `json:"host"`
	// Stable and Canary are DestinationRule subsets of Host. Stable is where traffic
	// starts the first time; afterwards the last promoted canary is the stable subset.
	Stable string `json:"stable"`
	Canary string `json:"canary"`
	// VirtualService names the VirtualService route whose weights the rollout drives.
	// Without it weir owns the host's default route (a VirtualService for Host may still
	// add header-match routes before it).
	VirtualService *VirtualServiceRef `json:"virtualService,omitempty"`
	Strategy       Strategy           `json:"strategy"`
	Analysis       Analysis           `json:"analysis"`
	// SkipAnalysis promotes without checking metrics (Flagger's skipAnalysis).
	SkipAnalysis bool `json:"skipAnalysis,omitempty"`
}

// VirtualServiceRef points at one HTTP route of a VirtualService.
type VirtualServiceRef struct {
	Name string `json:"name"`
	// Namespace defaults to the Rollout's.
	Namespace string `json:"namespace,omitempty"`
	// Route is the name of the http route whose destinations are set. Empty: the last
	// route (the catch-all, by convention).
	Route string `json:"route,omitempty"`
}

// Strategy holds exactly one of canary, blueGreen and abTesting.
type Strategy struct {
	Canary    *CanaryStrategy    `json:"canary,omitempty"`
	BlueGreen *BlueGreenStrategy `json:"blueGreen,omitempty"`
	ABTesting *ABStrategy        `json:"abTesting,omitempty"`
}

// CanaryStrategy shifts weight step by step: stepWeight up to maxWeight (Flagger),
// an explicit stepWeights list (Flagger), or steps with pauses (Argo Rollouts). After the
// last step passes, all traffic goes to the canary.
type CanaryStrategy struct {
	StepWeight  int32   `json:"stepWeight,omitempty"`
	MaxWeight   int32   `json:"maxWeight,omitempty"`
	StepWeights []int32 `json:"stepWeights,omitempty"`
	Steps       []Step  `json:"steps,omitempty"`
}

// Step is one entry of steps: set a weight, or pause.
type Step struct {
	SetWeight *int32 `json:"setWeight,omitempty"`
	Pause     *Pause `json:"pause,omitempty"`
}

// Pause holds the rollout: for a duration, or until `weir rollout resume` when no
// duration is given.
type Pause struct {
	Duration *Duration `json:"duration,omitempty"`
}

// BlueGreenStrategy keeps the canary at 0 % of user traffic for iterations checks, then
// switches everything at once.
type BlueGreenStrategy struct {
	Iterations int32 `json:"iterations"`
}

// ABStrategy sends requests that match to the canary for iterations checks, then
// promotes.
type ABStrategy struct {
	Iterations int32   `json:"iterations"`
	Match      []Match `json:"match"`
}

// Match selects requests by headers and cookies; every condition must hold.
type Match struct {
	Headers map[string]StringMatch `json:"headers,omitempty"`
	// Cookies match one cookie's value by name.
	Cookies map[string]StringMatch `json:"cookies,omitempty"`
}

// StringMatch is one of exact, prefix and regex (RE2), as in Istio.
type StringMatch struct {
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Regex  string `json:"regex,omitempty"`
}

// NoData says what a check does when the canary saw fewer than minRequests requests.
type NoData string

const (
	// NoDataHold neither passes nor fails the check: the rollout waits for traffic.
	NoDataHold NoData = "hold"
	// NoDataFail counts the check as failed.
	NoDataFail NoData = "fail"
	// NoDataPass counts the check as passed.
	NoDataPass NoData = "pass"
)

// Analysis says how often and by what each step is judged.
type Analysis struct {
	Interval Duration `json:"interval"`
	// Threshold is the number of failed checks that rolls the canary back.
	Threshold int32 `json:"threshold"`
	// MinRequests is the fewest requests the canary must see in an interval for its
	// metrics to mean something (default 1).
	MinRequests int32 `json:"minRequests,omitempty"`
	// NoData applies below minRequests: hold (default), fail or pass.
	NoData   NoData    `json:"noData,omitempty"`
	Metrics  []Metric  `json:"metrics,omitempty"`
	Webhooks []Webhook `json:"webhooks,omitempty"`
}

// Built-in metric names, measured by weir from the proxies' own statistics.
const (
	MetricSuccessRate = "request-success-rate" // % of requests not answered 5xx
	MetricDuration    = "request-duration"     // a latency percentile, in ms
	MetricErrorRate   = "error-rate"           // % of requests answered 5xx
)

// Metric is one check with its accepted range.
type Metric struct {
	Name string `json:"name"`
	// ThresholdRange is the accepted range; a value outside fails the check.
	ThresholdRange ThresholdRange `json:"thresholdRange"`
	// Interval is the window measured (default: analysis.interval).
	Interval *Duration `json:"interval,omitempty"`
	// Percentile for request-duration (default 99).
	Percentile *float64 `json:"percentile,omitempty"`
	// Query is a PromQL query; it makes the metric a Prometheus one. The query may use
	// {{ name }}, {{ namespace }}, {{ host }}, {{ service }}, {{ canary }}, {{ stable }},
	// {{ interval }}.
	Query string `json:"query,omitempty"`
	// Prometheus is where Query runs.
	Prometheus *PrometheusProvider `json:"prometheus,omitempty"`
}

// ThresholdRange bounds a metric; either end may be open.
type ThresholdRange struct {
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
}

// PrometheusProvider is a Prometheus server's HTTP address.
type PrometheusProvider struct {
	Address string `json:"address"`
}

// WebhookType says when a webhook is called, with Flagger's names and meanings.
type WebhookType string

const (
	HookConfirmRollout         WebhookType = "confirm-rollout"          // before starting; non-2xx holds
	HookPreRollout             WebhookType = "pre-rollout"              // before traffic moves; non-2xx is a failed check
	HookRollout                WebhookType = "rollout"                  // every check; non-2xx is a failed check
	HookConfirmTrafficIncrease WebhookType = "confirm-traffic-increase" // before each weight increase; non-2xx holds
	HookConfirmPromotion       WebhookType = "confirm-promotion"        // before promotion; non-2xx holds
	HookPostRollout            WebhookType = "post-rollout"             // after success or rollback
	HookRollback               WebhookType = "rollback"                 // every check; 2xx rolls back
	HookEvent                  WebhookType = "event"                    // every event
)

// Webhook is a JSON POST to url.
type Webhook struct {
	Name     string            `json:"name"`
	Type     WebhookType       `json:"type"`
	URL      string            `json:"url"`
	Timeout  *Duration         `json:"timeout,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Phase names, Flagger's where they fit.
type Phase string

const (
	PhaseInitialized      Phase = "Initialized"      // all traffic on stable, nothing to do
	PhaseWaiting          Phase = "Waiting"          // a canary waits for confirm-rollout
	PhaseProgressing      Phase = "Progressing"      // steps and checks run
	PhasePaused           Phase = "Paused"           // held by a pause step or `weir rollout pause`
	PhaseWaitingPromotion Phase = "WaitingPromotion" // checks passed; confirm-promotion holds
	PhasePromoting        Phase = "Promoting"        // all traffic moving to the canary
	PhaseSucceeded        Phase = "Succeeded"        // all traffic on the canary, now stable
	PhaseFailed           Phase = "Failed"           // rolled back: all traffic on stable
)

// RolloutStatus is what the rollout is doing.
type RolloutStatus struct {
	Phase  Phase  `json:"phase"`
	Stable string `json:"stable"`
	Canary string `json:"canary,omitempty"`
	// Step is the current step, counted from 1, of Steps.
	Step         int32  `json:"step"`
	Steps        int32  `json:"steps"`
	CanaryWeight int32  `json:"canaryWeight"`
	FailedChecks int32  `json:"failedChecks"`
	Iterations   int32  `json:"iterations"`
	Message      string `json:"message,omitempty"`
	// LastTransitionTime is when the phase last changed.
	LastTransitionTime metav1.Time        `json:"lastTransitionTime,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
}
