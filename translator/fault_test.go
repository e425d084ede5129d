package translator

import (
	"fmt"
	"testing"
	"time"

	commonfaultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

var testSource = model.Ref{Kind: "VirtualService", Namespace: "default", Name: "reviews"}

// problems renders diagnostics as "severity field" for comparison; messages are checked
// by the golden files.
func problems(ds []model.Diagnostic) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s %s", d.Severity, d.Field))
	}
	return out
}

func millionths(n uint32) *typev3.FractionalPercent {
	return &typev3.FractionalPercent{Numerator: n, Denominator: typev3.FractionalPercent_MILLION}
}

func TestHTTPFault(t *testing.T) {
	const path = "spec.http[0].fault"
	for _, tc := range []struct {
		name  string
		spec  string
		want  *faultv3.HTTPFault
		diags []string
	}{{
		name: "seed 002 delay",
		spec: `delay: {percentage: {value: 10}, fixedDelay: 5s}`,
		want: &faultv3.HTTPFault{Delay: &commonfaultv3.FaultDelay{
			FaultDelaySecifier: &commonfaultv3.FaultDelay_FixedDelay{FixedDelay: durationpb.New(5 * time.Second)},
			Percentage:         millionths(100000),
		}},
	}, {
		name: "fractional abort survives",
		spec: `abort: {percentage: {value: 0.1}, httpStatus: 503}`,
		want: &faultv3.HTTPFault{Abort: &faultv3.FaultAbort{
			ErrorType: &faultv3.FaultAbort_HttpStatus{HttpStatus: 503}, Percentage: millionths(1000)}},
	}, {
		name: "deprecated whole-number percent of a delay",
		spec: `delay: {percent: 30, fixedDelay: 0.2s}`,
		want: &faultv3.HTTPFault{Delay: &commonfaultv3.FaultDelay{
			FaultDelaySecifier: &commonfaultv3.FaultDelay_FixedDelay{FixedDelay: durationpb.New(200 * time.Millisecond)},
			Percentage:         millionths(300000),
		}},
	}, {
		name:  "no percentage applies to every request, with a warning",
		spec:  `abort: {httpStatus: 418}`,
		want:  &faultv3.HTTPFault{Abort: &faultv3.FaultAbort{ErrorType: &faultv3.FaultAbort_HttpStatus{HttpStatus: 418}, Percentage: millionths(1000000)}},
		diags: []string{"warning spec.http[0].fault.abort.percentage"},
	}, {
		name: "gRPC status by name",
		spec: `abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}`,
		want: &faultv3.HTTPFault{Abort: &faultv3.FaultAbort{ErrorType: &faultv3.FaultAbort_GrpcStatus{GrpcStatus: 14}, Percentage: millionths(1000000)}},
	}, {
		name:  "percentage over 100",
		spec:  `abort: {percentage: {value: 150}, httpStatus: 503}`,
		diags: []string{"error spec.http[0].fault.abort.percentage.value"},
	}, {
		name:  "deprecated percent over 100",
		spec:  `delay: {percent: 101, fixedDelay: 1s}`,
		diags: []string{"error spec.http[0].fault.delay.percent"},
	}, {
		name:  "HTTP status out of range",
		spec:  `abort: {httpStatus: 600, percentage: {value: 1}}`,
		diags: []string{"error spec.http[0].fault.abort.httpStatus"},
	}, {
		name:  "gRPC status by number",
		spec:  `abort: {grpcStatus: "14"}`,
		diags: []string{"error spec.http[0].fault.abort.grpcStatus"},
	}, {
		name:  "delay without duration",
		spec:  `delay: {percentage: {value: 5}}`,
		diags: []string{"error spec.http[0].fault.delay.fixedDelay"},
	}, {
		name:  "zero delay",
		spec:  `delay: {fixedDelay: 0s}`,
		diags: []string{"error spec.http[0].fault.delay.fixedDelay"},
	}, {
		name:  "exponential delay is not injected, the abort is",
		spec:  `{delay: {exponentialDelay: 1s}, abort: {httpStatus: 503, percentage: {value: 1}}}`,
		want:  &faultv3.HTTPFault{Abort: &faultv3.FaultAbort{ErrorType: &faultv3.FaultAbort_HttpStatus{HttpStatus: 503}, Percentage: millionths(10000)}},
		diags: []string{"warning spec.http[0].fault.delay.exponentialDelay"},
	}, {
		name:  "neither delay nor abort",
		spec:  `{}`,
		diags: []string{"warning spec.http[0].fault"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			in := &networking.HTTPFaultInjection{}
			parseSpec(t, tc.spec, in)
			got, ds := httpFault(testSource, path, in)
			if model.HasErrors(ds) && got != nil {
				t.Errorf("an error must not leave a fault to inject: %v", got)
			}
			if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("fault (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.diags, problems(ds)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}
