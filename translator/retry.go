package translator

import (
	"slices"
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
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
		return &routev3.RetryPolicy{RetryOn: defaultRetryOn, NumRetries: wrapperspb.UInt32(defaultRetryAttempts)}
	}
	if r.Attempts <= 0 {
		return nil
	}
	on, codes := parseRetryOn(r.RetryOn)
	return &routev3.RetryPolicy{
		RetryOn:              on,
		NumRetries:           wrapperspb.UInt32(uint32(r.Attempts)),
		PerTryTimeout:        cloneDuration(r.PerTryTimeout),
		RetriableStatusCodes: codes,
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
