package translator

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	networking "istio.io/api/networking/v1"
)

func TestRetryPolicyOptions(t *testing.T) {
	for _, tc := range []struct {
		name           string
		spec           string
		predicates     int
		priority       bool
		backoff        time.Duration
		retryOn        string
		retriableCodes []uint32
	}{
		{"status codes and named conditions", `{attempts: 2, retryOn: "503,gateway-error,retriable-status-codes"}`, 1, false, 0, "gateway-error,retriable-status-codes", []uint32{503}},
		{"ignore previous hosts", `{attempts: 2, retryIgnorePreviousHosts: true}`, 1, false, 0, defaultRetryOn, nil},
		{"previous hosts allowed", `{attempts: 2, retryIgnorePreviousHosts: false}`, 0, false, 0, defaultRetryOn, nil},
		{"remote localities", `{attempts: 2, retryRemoteLocalities: true}`, 1, true, 0, defaultRetryOn, nil},
		{"backoff", `{attempts: 2, backoff: 0.05s}`, 1, false, 50 * time.Millisecond, defaultRetryOn, nil},
		// Istio's rule: tried hosts are avoided unless retryIgnorePreviousHosts is false.
		{"previous hosts avoided when unset", `{attempts: 2}`, 1, false, 0, defaultRetryOn, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &networking.HTTPRetry{}
			parseSpec(t, tc.spec, r)
			p := retryPolicy(r)
			if len(p.RetryHostPredicate) != tc.predicates || (p.RetryPriority != nil) != tc.priority ||
				p.GetRetryBackOff().GetBaseInterval().AsDuration() != tc.backoff {
				t.Errorf("policy %v: want %d host predicates, priority %v, backoff %v", p, tc.predicates, tc.priority, tc.backoff)
			}
			if p.RetryOn != tc.retryOn || !cmp.Equal(p.RetriableStatusCodes, tc.retriableCodes) {
				t.Errorf("retry_on %q codes %v; want %q %v", p.RetryOn, p.RetriableStatusCodes, tc.retryOn, tc.retriableCodes)
			}
		})
	}
}
