// Package v1alpha1 holds weir's own API: the Rollout, which moves traffic from a stable
// DestinationRule subset to a canary subset step by step, judged by metrics.
//
// The Rollout's CRD is generated from these types by api/crd: `crd` struct tags bound
// values (see crd.Generator), doc comments become descriptions, and the constants of a
// named string type become its enum.
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
	Host string `json:"host" crd:"minLength=1,maxLength=253"`
	// Stable and Canary are DestinationRule subsets of Host. Stable is where traffic
	// starts the first time; afterwards the last promoted canary is the stable subset.
	Stable string `json:"stable" crd:"minLength=1,maxLength=253"`
	// Canary is the subset being rolled out; changing it starts a rollout.
	Canary string `json:"canary" crd:"minLength=1,maxLength=253"`
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
	// Name is the VirtualService's name.
	Name string `json:"name" crd:"minLength=1,maxLength=253"`
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
	StepWeight  int32   `json:"stepWeight,omitempty" crd:"minimum=1,maximum=100"`
	MaxWeight   int32   `json:"maxWeight,omitempty" crd:"minimum=1,maximum=100"`
	StepWeights []int32 `json:"stepWeights,omitempty" crd:"minItems=1,maxItems=100,itemMinimum=1,itemMaximum=100"`
	Steps       []Step  `json:"steps,omitempty" crd:"minItems=1,maxItems=100"`
}

// Step is one entry of steps: set a weight, or pause.
type Step struct {
	SetWeight *int32 `json:"setWeight,omitempty" crd:"minimum=0,maximum=100"`
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
	// Iterations is the number of passed checks before the switch.
	Iterations int32 `json:"iterations" crd:"minimum=1"`
}

// ABStrategy sends requests that match to the canary for iterations checks, then
// promotes.
type ABStrategy struct {
	// Iterations is the number of passed checks before promotion.
	Iterations int32 `json:"iterations" crd:"minimum=1"`
	// Match lists the request conditions, OR'ed, that send a request to the canary.
	Match []Match `json:"match" crd:"minItems=1,maxItems=16"`
}

// Match selects requests by headers and cookies; every condition must hold.
type Match struct {
	// Headers match request headers by name.
	Headers map[string]StringMatch `json:"headers,omitempty" crd:"minProperties=1,maxProperties=16"`
	// Cookies match one cookie's value by name.
	Cookies map[string]StringMatch `json:"cookies,omitempty" crd:"minProperties=1,maxProperties=16"`
}

// StringMatch is one of exact, prefix and regex (RE2), as in Istio.
type StringMatch struct {
	Exact  string `json:"exact,omitempty" crd:"minLength=1,maxLength=1024"`
	Prefix string `json:"prefix,omitempty" crd:"minLength=1,maxLength=1024"`
	Regex  string `json:"regex,omitempty" crd:"minLength=1,maxLength=1024"`
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
	// Interval is how often a check runs, and the window the metrics are measured over.
	Interval Duration `json:"interval"`
	// Threshold is the number of failed checks that rolls the canary back.
	Threshold int32 `json:"threshold" crd:"minimum=1"`
	// MinRequests is the fewest requests the canary must see in an interval for its
	// metrics to mean something (default 1).
	MinRequests int32 `json:"minRequests,omitempty" crd:"minimum=0"`
	// NoData applies below minRequests: hold (default), fail or pass.
	NoData NoData `json:"noData,omitempty"`
	// Metrics are the checks; each must pass. Names are unique.
	Metrics  []Metric  `json:"metrics,omitempty" crd:"maxItems=32,listMapKey=name"`
	Webhooks []Webhook `json:"webhooks,omitempty" crd:"maxItems=32"`
}

// Built-in metric names, measured by weir from the proxies' own statistics.
const (
	MetricSuccessRate = "request-success-rate" // % of requests not answered 5xx
	MetricDuration    = "request-duration"     // a latency percentile, in ms
	MetricErrorRate   = "error-rate"           // % of requests answered 5xx
)

// Metric is one check with its accepted range.
type Metric struct {
	// Name is a built-in metric (request-success-rate, request-duration, error-rate) or,
	// with Query, any name.
	Name string `json:"name" crd:"minLength=1,maxLength=253"`
	// ThresholdRange is the accepted range; a value outside fails the check.
	ThresholdRange ThresholdRange `json:"thresholdRange"`
	// Interval is the window measured (default: analysis.interval).
	Interval *Duration `json:"interval,omitempty"`
	// Percentile for request-duration (default 99).
	Percentile *float64 `json:"percentile,omitempty" crd:"exclusiveMinimum=0,exclusiveMaximum=100"`
	// Query is a PromQL query; it makes the metric a Prometheus one. The query may use
	// {{ name }}, {{ namespace }}, {{ host }}, {{ service }}, {{ canary }}, {{ stable }},
	// {{ interval }}.
	Query string `json:"query,omitempty" crd:"minLength=1"`
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
	Address string `json:"address" crd:"minLength=1"`
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
	Name string      `json:"name" crd:"minLength=1"`
	Type WebhookType `json:"type"`
	// URL is an http:// or https:// address.
	URL string `json:"url" crd:"maxLength=2048"`
	// Timeout bounds one call.
	Timeout *Duration `json:"timeout,omitempty"`
	// Metadata is sent in the payload's metadata, as in Flagger.
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
	Conditions         []metav1.Condition `json:"conditions,omitempty" crd:"maxItems=32,listMapKey=type"`
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
}
