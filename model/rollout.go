package model

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

// ValidateRollout checks one Rollout on its own. Errors mean the object must not be used.
func ValidateRollout(r *Rollout) []Diagnostic {
	v := &validator{src: r.Source}
	s := r.Spec
	if s == nil {
		v.errorf("spec", "spec is missing")
		return v.diags
	}
	if strings.TrimSpace(s.Host) == "" {
		v.errorf("spec.host", "host is required: the service whose traffic the rollout moves")
	}
	switch {
	case s.Stable == "":
		v.errorf("spec.stable", "stable is required: the DestinationRule subset traffic starts on")
	case s.Canary == "":
		v.errorf("spec.canary", "canary is required: the DestinationRule subset being rolled out")
	}
	if vs := s.VirtualService; vs != nil && vs.Name == "" {
		v.errorf("spec.virtualService.name", "name is required")
	}
	v.strategy("spec.strategy", &s.Strategy)
	v.analysis("spec.analysis", &s.Analysis, s.SkipAnalysis)
	return v.diags
}

func (v *validator) strategy(path string, st *v1alpha1.Strategy) {
	n := 0
	if st.Canary != nil {
		n++
		v.canary(path+".canary", st.Canary)
	}
	if st.BlueGreen != nil {
		n++
		if st.BlueGreen.Iterations < 1 {
			v.errorf(path+".blueGreen.iterations", "must be at least 1, not %d", st.BlueGreen.Iterations)
		}
	}
	if ab := st.ABTesting; ab != nil {
		n++
		if ab.Iterations < 1 {
			v.errorf(path+".abTesting.iterations", "must be at least 1, not %d", ab.Iterations)
		}
		if len(ab.Match) == 0 {
			v.errorf(path+".abTesting.match", "at least one match is required: it selects the requests sent to the canary")
		}
		for i, m := range ab.Match {
			v.rolloutMatch(fmt.Sprintf("%s.abTesting.match[%d]", path, i), m)
		}
	}
	if n != 1 {
		v.errorf(path, "exactly one of canary, blueGreen and abTesting is required, not %d", n)
	}
}

func (v *validator) canary(path string, c *v1alpha1.CanaryStrategy) {
	forms := 0
	if c.StepWeight != 0 || c.MaxWeight != 0 {
		forms++
		if c.StepWeight < 1 || c.StepWeight > 100 {
			v.errorf(path+".stepWeight", "must be between 1 and 100, not %d", c.StepWeight)
		}
		if c.MaxWeight != 0 && (c.MaxWeight < c.StepWeight || c.MaxWeight > 100) {
			v.errorf(path+".maxWeight", "must be between stepWeight (%d) and 100, not %d", c.StepWeight, c.MaxWeight)
		}
	}
	if len(c.StepWeights) > 0 {
		forms++
		last := int32(0)
		for i, w := range c.StepWeights {
			if w < 1 || w > 100 || w <= last {
				v.errorf(fmt.Sprintf("%s.stepWeights[%d]", path, i), "weights must rise, each between 1 and 100: %d after %d", w, last)
			}
			last = w
		}
	}
	if len(c.Steps) > 0 {
		forms++
		for i, st := range c.Steps {
			p := fmt.Sprintf("%s.steps[%d]", path, i)
			switch {
			case (st.SetWeight == nil) == (st.Pause == nil):
				v.errorf(p, "a step is either setWeight or pause")
			case st.SetWeight != nil && (*st.SetWeight < 0 || *st.SetWeight > 100):
				v.errorf(p+".setWeight", "must be between 0 and 100, not %d", *st.SetWeight)
			case st.Pause != nil && st.Pause.Duration != nil && st.Pause.Duration.Duration <= 0:
				v.errorf(p+".pause.duration", "must be positive (leave it out to pause until resumed)")
			}
		}
	}
	if forms != 1 {
		v.errorf(path, "exactly one of stepWeight (with maxWeight), stepWeights and steps is required")
	}
}

func (v *validator) rolloutMatch(path string, m v1alpha1.Match) {
	if len(m.Headers) == 0 && len(m.Cookies) == 0 {
		v.errorf(path, "a match needs headers or cookies")
	}
	for name, sm := range m.Headers {
		if !ValidHeaderName(strings.ToLower(name)) {
			v.errorf(path+".headers."+name, "%q is not a valid header name", name)
		}
		v.rolloutString(path+".headers."+name, sm)
	}
	if len(m.Cookies) > 1 {
		v.errorf(path+".cookies", "one cookie per match: conditions on several cookies cannot be written as one Cookie header match")
	}
	for name, sm := range m.Cookies {
		if name == "" || strings.ContainsAny(name, "=; \t") {
			v.errorf(path+".cookies."+name, "%q is not a valid cookie name", name)
		}
		v.rolloutString(path+".cookies."+name, sm)
	}
}

func (v *validator) rolloutString(path string, sm v1alpha1.StringMatch) {
	set := 0
	for _, s := range []string{sm.Exact, sm.Prefix, sm.Regex} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		v.errorf(path, "exactly one of exact, prefix and regex is required")
		return
	}
	if sm.Regex != "" {
		if _, err := regexp.Compile(sm.Regex); err != nil {
			v.errorf(path+".regex", "not a valid RE2 regular expression: %v", err)
		}
	}
}

func (v *validator) analysis(path string, a *v1alpha1.Analysis, skip bool) {
	if a.Interval.Duration <= 0 {
		v.errorf(path+".interval", "interval is required and must be positive (e.g. 1m)")
	}
	if a.Threshold < 1 {
		v.errorf(path+".threshold", "must be at least 1 (failed checks before rollback), not %d", a.Threshold)
	}
	if a.MinRequests < 0 {
		v.errorf(path+".minRequests", "must not be negative")
	}
	switch a.NoData {
	case "", v1alpha1.NoDataHold, v1alpha1.NoDataFail, v1alpha1.NoDataPass:
	default:
		v.errorf(path+".noData", "must be hold, fail or pass, not %q", a.NoData)
	}
	if len(a.Metrics) == 0 && !skip && len(a.Webhooks) == 0 {
		v.warnf(path+".metrics", "no metrics and no webhooks: every check passes")
	}
	names := map[string]bool{}
	for i, m := range a.Metrics {
		p := fmt.Sprintf("%s.metrics[%d]", path, i)
		if names[m.Name] {
			v.errorf(p+".name", "metric %q is listed twice", m.Name)
		}
		names[m.Name] = true
		v.metric(p, m)
	}
	for i, h := range a.Webhooks {
		v.webhook(fmt.Sprintf("%s.webhooks[%d]", path, i), h)
	}
}

func (v *validator) metric(path string, m v1alpha1.Metric) {
	builtin := m.Name == v1alpha1.MetricSuccessRate || m.Name == v1alpha1.MetricDuration || m.Name == v1alpha1.MetricErrorRate
	switch {
	case m.Name == "":
		v.errorf(path+".name", "name is required")
	case m.Query == "" && !builtin:
		v.errorf(path+".query", "metric %q is not built in (%s, %s, %s): it needs a PromQL query and a prometheus address",
			m.Name, v1alpha1.MetricSuccessRate, v1alpha1.MetricDuration, v1alpha1.MetricErrorRate)
	case m.Query != "" && (m.Prometheus == nil || m.Prometheus.Address == ""):
		v.errorf(path+".prometheus.address", "a query needs the address of the Prometheus that runs it")
	}
	r := m.ThresholdRange
	switch {
	case r.Min == nil && r.Max == nil:
		v.errorf(path+".thresholdRange", "min, max or both are required")
	case r.Min != nil && r.Max != nil && *r.Min > *r.Max:
		v.errorf(path+".thresholdRange", "min (%g) is above max (%g)", *r.Min, *r.Max)
	}
	if m.Interval != nil && m.Interval.Duration <= 0 {
		v.errorf(path+".interval", "must be positive")
	}
	if p := m.Percentile; p != nil && (*p <= 0 || *p >= 100) {
		v.errorf(path+".percentile", "must be between 0 and 100 (exclusive), not %g", *p)
	}
}

var webhookTypes = []v1alpha1.WebhookType{
	v1alpha1.HookConfirmRollout, v1alpha1.HookPreRollout, v1alpha1.HookRollout, v1alpha1.HookConfirmTrafficIncrease,
	v1alpha1.HookConfirmPromotion, v1alpha1.HookPostRollout, v1alpha1.HookRollback, v1alpha1.HookEvent,
}

func (v *validator) webhook(path string, h v1alpha1.Webhook) {
	if h.Name == "" {
		v.errorf(path+".name", "name is required")
	}
	known := false
	for _, t := range webhookTypes {
		known = known || h.Type == t
	}
	if !known {
		v.errorf(path+".type", "unknown webhook type %q", h.Type)
	}
	if !strings.HasPrefix(h.URL, "http://") && !strings.HasPrefix(h.URL, "https://") {
		v.errorf(path+".url", "must be an http:// or https:// URL, not %q", h.URL)
	}
	if h.Timeout != nil && h.Timeout.Duration <= 0 {
		v.errorf(path+".timeout", "must be positive")
	}
}
