package translator

import (
	"slices"
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	previousprioritiesv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
)

// defaultRetryOn is weir's retry condition when retryOn is unset. Istio's default also
// retries 503 (retriable-status-codes), which replays non-idempotent requests that a
// backend may already have acted on; weir retries only failures where the request
// cannot have reached the application.
const defaultRetryOn = "connect-failure,refused-stream,unavailable,cancelled"

// defaultRetryAttempts is Istio's default number of retries when retries is unset.
const defaultRetryAttempts = 2

const retriableStatusCodes = "retriable-status-codes"

// retryPolicy translates retries: unset gives the default policy, attempts 0 none.
func retryPolicy(r *networking.HTTPRetry) *routev3.RetryPolicy {
	if r == nil {
		p := &routev3.RetryPolicy{RetryOn: defaultRetryOn, NumRetries: wrapperspb.UInt32(defaultRetryAttempts)}
		avoidPreviousHosts(p)
		return p
	}
	if r.Attempts <= 0 {
		return nil
	}
	on, codes := parseRetryOn(r.RetryOn)
	p := &routev3.RetryPolicy{
		RetryOn:              on,
		NumRetries:           wrapperspb.UInt32(uint32(r.Attempts)),
		PerTryTimeout:        cloneDuration(r.PerTryTimeout),
		RetriableStatusCodes: codes,
	}
	if r.RetryIgnorePreviousHosts == nil || r.RetryIgnorePreviousHosts.GetValue() {
		avoidPreviousHosts(p)
	}
	if r.GetRetryRemoteLocalities().GetValue() {
		p.RetryPriority = previousPriorities()
	}
	if r.Backoff != nil {
		// Envoy's maximum stays its default, ten times the base interval.
		p.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: cloneDuration(r.Backoff)}
	}
	return p
}

// hostSelectionRetryMaxAttempts is how often Envoy picks again when the host it picked
// was already tried (Istio's value).
const hostSelectionRetryMaxAttempts = 5

// avoidPreviousHosts makes a retry go to a host not tried yet for this request, when
// there is one: Istio does so for every retry policy, its default one included, unless
// retryIgnorePreviousHosts is false.
func avoidPreviousHosts(p *routev3.RetryPolicy) {
	p.RetryHostPredicate = []*routev3.RetryPolicy_RetryHostPredicate{previousHostsPredicate()}
	p.HostSelectionRetryMaxAttempts = hostSelectionRetryMaxAttempts
}

func previousHostsPredicate() *routev3.RetryPolicy_RetryHostPredicate {
	return &routev3.RetryPolicy_RetryHostPredicate{
		Name:       "envoy.retry_host_predicates.previous_hosts",
		ConfigType: &routev3.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: typedConfig(&previoushostsv3.PreviousHostsPredicate{})},
	}
}

// previousPriorities lets retries move on from the priority levels already tried, as
// Istio translates retryRemoteLocalities (with its update frequency of 2). It matters
// only where endpoints are spread over priorities.
func previousPriorities() *routev3.RetryPolicy_RetryPriority {
	return &routev3.RetryPolicy_RetryPriority{
		Name: "envoy.retry_priorities.previous_priorities",
		ConfigType: &routev3.RetryPolicy_RetryPriority_TypedConfig{TypedConfig: typedConfig(
			&previousprioritiesv3.PreviousPrioritiesConfig{UpdateFrequency: 2})},
	}
}

// parseRetryOn splits Istio's retryOn: numeric entries are HTTP status codes, which Envoy
// wants in retriable_status_codes together with the retriable-status-codes condition.
func parseRetryOn(s string) (string, []uint32) {
	var on []string
	var codes []uint32
	for _, tok := range strings.Split(s, ",") {
		tok = strings.TrimSpace(tok)
		if code, err := strconv.ParseUint(tok, 10, 32); err == nil {
			if !slices.Contains(codes, uint32(code)) {
				codes = append(codes, uint32(code))
			}
		} else if tok != "" && !slices.Contains(on, tok) {
			on = append(on, tok)
		}
	}
	if len(codes) > 0 && !slices.Contains(on, retriableStatusCodes) {
		on = append(on, retriableStatusCodes)
	}
	if len(on) == 0 {
		return defaultRetryOn, nil
	}
	return strings.Join(on, ","), codes
}
