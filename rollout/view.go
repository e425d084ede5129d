package rollout

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Render writes a rollout the way `weir rollout get` shows it: where it is, the split,
// each metric against its range, and how long until the next check.
func Render(w io.Writer, s Status, now time.Time) {
	st := s.State
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "rollout\t%s/%s (%s of %s)\n", s.Namespace, s.Name, s.Strategy, s.Host)
	fmt.Fprintf(tw, "phase\t%s\n", st.Phase)
	if st.Message != "" {
		fmt.Fprintf(tw, "\t%s\n", st.Message)
	}
	if s.Steps > 0 && st.Canary != "" {
		step := min(st.Step+1, s.Steps)
		label := fmt.Sprintf("%d/%d", step, s.Steps)
		if st.Step >= s.Steps {
			label = "promotion"
		}
		fmt.Fprintf(tw, "step\t%s  %s\n", label, stepList(s.Weights, st.Step))
	}
	stable, canary := st.Weights()
	fmt.Fprintf(tw, "weights\t%s %d%%  %s  %s %d%%\n", st.Stable, stable, bar(canary, 20), orDash(st.Canary), canary)
	if !st.Applied && st.Canary != "" {
		fmt.Fprintf(tw, "\tnot yet in effect everywhere")
		if len(s.Pending) > 0 {
			fmt.Fprintf(tw, " (waiting for %s)", strings.Join(s.Pending, ", "))
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "checks\t%d failed of %d allowed, %d run\n", st.FailedChecks, s.Threshold, st.Iterations)
	if st.active() && st.Applied && !st.StepStart.IsZero() {
		line := fmt.Sprintf("%s in this step, checked every %s", now.Sub(st.StepStart).Round(time.Second), s.Interval)
		fmt.Fprintf(tw, "time\t%s\n", line)
	}
	for i, m := range st.Metrics {
		label := ""
		if i == 0 {
			label = "metrics"
		}
		value := fmt.Sprintf("%.4g", m.Value)
		switch {
		case m.Error != "":
			value = "error: " + m.Error
		case m.NoData:
			value = "no data"
		}
		reqs := ""
		if m.Requests >= 0 {
			reqs = fmt.Sprintf("%.0f requests", m.Requests)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", label, m.Name, value, rangeOf(m), m.Verdict, reqs)
	}
	_ = tw.Flush()
}

// RenderList writes one line per rollout.
func RenderList(w io.Writer, list []Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tSTRATEGY\tPHASE\tSTEP\tSTABLE\tCANARY\tWEIGHT\tFAILED")
	for _, s := range list {
		st := s.State
		step := "-"
		if st.Canary != "" && s.Steps > 0 {
			step = fmt.Sprintf("%d/%d", min(st.Step+1, s.Steps), s.Steps)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d%%\t%d/%d\n", s.Namespace, s.Name, s.Strategy, st.Phase, step,
			st.Stable, orDash(st.Canary), st.CanaryWeight, st.FailedChecks, s.Threshold)
	}
	_ = tw.Flush()
}

func stepList(weights []int32, current int) string {
	parts := make([]string, 0, len(weights)+1)
	for i, w := range weights {
		p := fmt.Sprintf("%d", w)
		if i == current {
			p = "[" + p + "]"
		}
		parts = append(parts, p)
	}
	last := "100"
	if current >= len(weights) {
		last = "[100]"
	}
	return strings.Join(append(parts, last), " → ")
}

func bar(pct int32, width int) string {
	n := int(pct) * width / 100
	return strings.Repeat("░", width-n) + strings.Repeat("█", n)
}

func rangeOf(m MetricCheck) string {
	switch {
	case m.Min != nil && m.Max != nil:
		return fmt.Sprintf("%g..%g", *m.Min, *m.Max)
	case m.Min != nil:
		return fmt.Sprintf("≥ %g", *m.Min)
	case m.Max != nil:
		return fmt.Sprintf("≤ %g", *m.Max)
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
