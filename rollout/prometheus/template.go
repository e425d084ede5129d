package prometheus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/weir-mesh/weir/rollout"
)

// Render expands the query template of q.Metric with q's values. The values are
// functions, not fields, so that a query reads `{{ namespace }}` as in Flagger.
func Render(q rollout.Query) (string, error) {
	expr, err := render(q)
	if err != nil {
		return "", fmt.Errorf("metric %s: %w", q.Metric.Name, err)
	}
	return expr, nil
}

func render(q rollout.Query) (string, error) {
	t, err := template.New(q.Metric.Name).Funcs(templateFuncs(q)).Option("missingkey=error").Parse(q.Metric.Query)
	if err != nil {
		return "", fmt.Errorf("query template: %w", err)
	}
	var b strings.Builder
	// An empty map rather than nil: `{{ .namespace }}` then fails instead of printing
	// "<no value>" into the query.
	if err := t.Execute(&b, map[string]any{}); err != nil {
		return "", fmt.Errorf("query template: %w", err)
	}
	return b.String(), nil
}

func templateFuncs(q rollout.Query) template.FuncMap {
	value := func(s string) func() string { return func() string { return s } }
	return template.FuncMap{
		"name":      value(q.Name),
		"namespace": value(q.Namespace),
		"host":      value(q.Host),
		"service":   value(q.Service),
		"canary":    value(q.Canary),
		"stable":    value(q.Stable),
		"interval":  func() (string, error) { return promDuration(q.Window) },
	}
}

// promDuration writes d in Prometheus' duration syntax: 1m, 30s, 1h30m, 1s500ms. Go's
// own form (1m30s is fine, but 1.5s is not) would not always parse.
func promDuration(d time.Duration) (string, error) {
	d = d.Truncate(time.Millisecond)
	if d <= 0 {
		return "", errors.New("interval: the window must be at least 1ms")
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if n := d / u.unit; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.name)
			d -= n * u.unit
		}
	}
	return b.String(), nil
}
