package translator

import (
	"math"
	"slices"
	"time"

	commonfaultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

// httpFault translates an http route's fault into the fault filter's config for that
// route, or nil when there is nothing to inject. Errors mean the fault cannot be
// translated as written.
func httpFault(src model.Ref, path string, f *networking.HTTPFaultInjection) (*faultv3.HTTPFault, []model.Diagnostic) {
	if f == nil {
		return nil, nil
	}
	if f.Delay == nil && f.Abort == nil {
		return nil, []model.Diagnostic{model.Warnf(src, path, "fault has neither delay nor abort; ignored")}
	}
	delay, ds := faultDelay(src, path+".delay", f.Delay)
	abort, more := faultAbort(src, path+".abort", f.Abort)
	ds = append(ds, more...)
	if delay == nil && abort == nil {
		return nil, ds
	}
	return &faultv3.HTTPFault{Delay: delay, Abort: abort}, ds
}

// faultDelay holds back the given share of requests for fixedDelay before forwarding them.
func faultDelay(src model.Ref, path string, d *networking.HTTPFaultInjection_Delay) (*commonfaultv3.FaultDelay, []model.Diagnostic) {
	if d == nil {
		return nil, nil
	}
	ds := ignoredFields(src, path, d, "percent", "percentage", "fixedDelay", "exponentialDelay")
	fixed := d.GetFixedDelay()
	switch {
	case d.GetExponentialDelay() != nil:
		// Envoy has no exponential delay; Istio drops it too.
		return nil, append(ds, model.Warnf(src, path+".exponentialDelay", "exponentialDelay is not supported; no delay is injected"))
	case fixed == nil:
		return nil, append(ds, model.Errorf(src, path+".fixedDelay", "fixedDelay is required"))
	case fixed.CheckValid() != nil || fixed.AsDuration() < time.Millisecond:
		return nil, append(ds, model.Errorf(src, path+".fixedDelay", "must be at least 1ms (got %s)", fixed.AsDuration()))
	}
	pct, more := faultPercentage(src, path, d.Percentage, d.Percent)
	ds = append(ds, more...)
	if pct == nil {
		return nil, ds
	}
	return &commonfaultv3.FaultDelay{
		FaultDelaySecifier: &commonfaultv3.FaultDelay_FixedDelay{FixedDelay: cloneDuration(fixed)},
		Percentage:         pct,
	}, ds
}

// faultAbort answers the given share of requests with an HTTP or gRPC status at once,
// without forwarding them.
func faultAbort(src model.Ref, path string, a *networking.HTTPFaultInjection_Abort) (*faultv3.FaultAbort, []model.Diagnostic) {
	if a == nil {
		return nil, nil
	}
	ds := ignoredFields(src, path, a, "percentage", "httpStatus", "grpcStatus", "http2Error")
	out := &faultv3.FaultAbort{}
	switch e := a.ErrorType.(type) {
	case *networking.HTTPFaultInjection_Abort_HttpStatus:
		if e.HttpStatus < 200 || e.HttpStatus > 599 {
			return nil, append(ds, model.Errorf(src, path+".httpStatus", "must be between 200 and 599 (got %d)", e.HttpStatus))
		}
		out.ErrorType = &faultv3.FaultAbort_HttpStatus{HttpStatus: uint32(e.HttpStatus)}
	case *networking.HTTPFaultInjection_Abort_GrpcStatus:
		code, ok := grpcStatusCode(e.GrpcStatus)
		if !ok {
			return nil, append(ds, model.Errorf(src, path+".grpcStatus",
				"unknown gRPC status %q (use a name such as UNAVAILABLE, in capitals)", e.GrpcStatus))
		}
		out.ErrorType = &faultv3.FaultAbort_GrpcStatus{GrpcStatus: code}
	case *networking.HTTPFaultInjection_Abort_Http2Error:
		// Istio does not translate it either.
		return nil, append(ds, model.Warnf(src, path+".http2Error", "http2Error is not supported; no abort is injected"))
	default:
		return nil, append(ds, model.Errorf(src, path, "httpStatus or grpcStatus is required"))
	}
	pct, more := faultPercentage(src, path, a.Percentage, 0)
	ds = append(ds, more...)
	if pct == nil {
		return nil, ds
	}
	out.Percentage = pct
	return out, ds
}

// faultPercentage is the share of requests a fault applies to: percentage, else the
// delay's deprecated whole-number percent, else every request. Istio applies a fault
// with neither to no request at all, which its users rarely expect (its docs once said
// the opposite); weir applies it to all and says so.
func faultPercentage(src model.Ref, path string, p *networking.Percent, deprecated int32) (*typev3.FractionalPercent, []model.Diagnostic) {
	switch {
	case p != nil:
		if !(p.Value >= 0 && p.Value <= 100) {
			return nil, []model.Diagnostic{model.Errorf(src, path+".percentage.value", "must be between 0 and 100 (got %g)", p.Value)}
		}
		return fractionalPercent(p.Value), nil
	case deprecated != 0:
		if deprecated < 0 || deprecated > 100 {
			return nil, []model.Diagnostic{model.Errorf(src, path+".percent", "must be between 0 and 100 (got %d)", deprecated)}
		}
		return fractionalPercent(float64(deprecated)), nil
	}
	return fractionalPercent(100), []model.Diagnostic{model.Warnf(src, path+".percentage",
		"no percentage (or percent: 0): applied to every request (Istio applies a fault without percentage to none)")}
}

// fractionalPercent expresses a percentage in millionths, as Istio does, so that
// fractions such as 0.1 % survive.
func fractionalPercent(pct float64) *typev3.FractionalPercent {
	return &typev3.FractionalPercent{
		Numerator:   uint32(math.Round(min(pct, 100) * 10000)),
		Denominator: typev3.FractionalPercent_MILLION,
	}
}

// grpcStatusCodes are the gRPC status names Istio accepts, indexed by code.
var grpcStatusCodes = []string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

func grpcStatusCode(name string) (uint32, bool) {
	i := slices.Index(grpcStatusCodes, name)
	return uint32(i), i >= 0
}
