package rollout

import (
	"fmt"
	"strings"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

// judge gives a check's verdict, and why: any failed metric or rollout webhook fails it;
// otherwise a metric without enough data holds it (with noData: hold).
func judge(a v1alpha1.Analysis, c Check) (Verdict, string) {
	var failed, held []string
	for _, h := range c.Failed {
		failed = append(failed, "webhook "+h+" did not answer 2xx")
	}
	for i := range c.Metrics {
		m := &c.Metrics[i]
		v, why := JudgeMetric(a, *m)
		m.Verdict = v
		switch v {
		case Fail:
			failed = append(failed, why)
		case Hold:
			held = append(held, why)
		}
	}
	switch {
	case len(failed) > 0:
		return Fail, strings.Join(failed, "; ")
	case len(held) > 0:
		return Hold, strings.Join(held, "; ")
	}
	return Pass, ""
}

// JudgeMetric gives one metric's verdict.
func JudgeMetric(a v1alpha1.Analysis, m MetricCheck) (Verdict, string) {
	if m.Error != "" {
		return Fail, fmt.Sprintf("%s: %s", m.Name, m.Error)
	}
	minReq := float64(a.MinRequests)
	if minReq == 0 {
		minReq = 1
	}
	if m.NoData || (m.Requests >= 0 && m.Requests < minReq) {
		why := fmt.Sprintf("%s: no data", m.Name)
		if m.Requests >= 0 {
			why = fmt.Sprintf("%s: %.0f requests to the canary in the interval, fewer than minRequests %.0f", m.Name, m.Requests, minReq)
		}
		switch a.NoData {
		case v1alpha1.NoDataFail:
			return Fail, why
		case v1alpha1.NoDataPass:
			return Pass, ""
		}
		return Hold, why
	}
	if m.Min != nil && m.Value < *m.Min {
		return Fail, fmt.Sprintf("%s %.4g is below %g", m.Name, m.Value, *m.Min)
	}
	if m.Max != nil && m.Value > *m.Max {
		return Fail, fmt.Sprintf("%s %.4g is above %g", m.Name, m.Value, *m.Max)
	}
	return Pass, ""
}
