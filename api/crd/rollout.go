package crd

import (
	"fmt"
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

// DurationPattern is what time.ParseDuration reads without a sign: one or more of a
// decimal number and a unit ("30s", "1m", "1h30m", "1.5h", "500ms").
const DurationPattern = `^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`

// builtinMetrics are the metric names weir measures itself.
var builtinMetrics = []string{v1alpha1.MetricSuccessRate, v1alpha1.MetricDuration, v1alpha1.MetricErrorRate}

// rolloutRules are the checks a schema's types and bounds cannot say, as CEL rules on the
// type they belong to. They mirror model.ValidateRollout; the maxItems and maxProperties
// bounds on the lists and maps around them keep each rule's estimated cost within what
// the API server accepts.
var rolloutRules = map[reflect.Type][]Rule{
	reflect.TypeFor[v1alpha1.Strategy](): {{
		Rule:    `(has(self.canary) ? 1 : 0) + (has(self.blueGreen) ? 1 : 0) + (has(self.abTesting) ? 1 : 0) == 1`,
		Message: "exactly one of canary, blueGreen and abTesting is required",
	}},
	reflect.TypeFor[v1alpha1.CanaryStrategy](): {{
		Rule:    `((has(self.stepWeight) || has(self.maxWeight)) ? 1 : 0) + (has(self.stepWeights) ? 1 : 0) + (has(self.steps) ? 1 : 0) == 1`,
		Message: "exactly one of stepWeight (with maxWeight), stepWeights and steps is required",
	}, {
		Rule:    `!has(self.maxWeight) || (has(self.stepWeight) && self.maxWeight >= self.stepWeight)`,
		Message: "maxWeight needs stepWeight, and must be at least stepWeight",
	}, {
		Rule:    `!has(self.stepWeights) || (self.stepWeights.isSorted() && self.stepWeights.all(w, self.stepWeights.exists_one(v, v == w)))`,
		Message: "stepWeights must rise: each weight above the one before",
	}},
	reflect.TypeFor[v1alpha1.Step](): {{
		Rule:    `has(self.setWeight) != has(self.pause)`,
		Message: "a step is either setWeight or pause",
	}},
	reflect.TypeFor[v1alpha1.Match](): {{
		Rule:    `has(self.headers) || has(self.cookies)`,
		Message: "a match needs headers or cookies",
	}, {
		Rule:    `!has(self.cookies) || size(self.cookies) == 1`,
		Message: "one cookie per match: conditions on several cookies cannot be written as one Cookie header match",
	}},
	reflect.TypeFor[v1alpha1.StringMatch](): {{
		Rule:    `(has(self.exact) ? 1 : 0) + (has(self.prefix) ? 1 : 0) + (has(self.regex) ? 1 : 0) == 1`,
		Message: "exactly one of exact, prefix and regex is required",
	}},
	reflect.TypeFor[v1alpha1.Metric](): {{
		Rule: fmt.Sprintf(`self.name in [%q, %q, %q] || has(self.query)`, builtinMetrics[0], builtinMetrics[1], builtinMetrics[2]),
		Message: fmt.Sprintf("a metric that is not built in (%s, %s, %s) needs a query and a prometheus address",
			builtinMetrics[0], builtinMetrics[1], builtinMetrics[2]),
	}, {
		Rule:    `!has(self.query) || has(self.prometheus)`,
		Message: "a query needs the address of the Prometheus that runs it (prometheus.address)",
	}},
	reflect.TypeFor[v1alpha1.ThresholdRange](): {{
		Rule:    `has(self.min) || has(self.max)`,
		Message: "min, max or both are required",
	}, {
		Rule:    `!has(self.min) || !has(self.max) || self.min <= self.max`,
		Message: "min is above max",
	}},
	reflect.TypeFor[v1alpha1.Webhook](): {{
		Rule:    `self.url.startsWith('http://') || self.url.startsWith('https://')`,
		Message: "url must be an http:// or https:// URL",
	}},
}

// rolloutKnown are the types whose JSON is not their Go shape.
var rolloutKnown = map[reflect.Type]Schema{
	reflect.TypeFor[v1alpha1.Duration](): {
		Type: "string", Pattern: DurationPattern, MaxLength: ptr(int64(32)),
		// The pattern allows "0s"; every duration of a Rollout must be positive.
		Validations: []Rule{{Rule: `self.matches('[1-9]')`, Message: "must be a positive duration such as 30s, 1m or 1h30m"}},
	},
	// The API server owns metadata: a CRD may not describe it beyond its type.
	reflect.TypeFor[metav1.ObjectMeta](): {Type: "object"},
	reflect.TypeFor[metav1.Time]():       {Type: "string", Format: "date-time"},
	reflect.TypeFor[metav1.ConditionStatus](): {Type: "string", Enum: []string{
		string(metav1.ConditionTrue), string(metav1.ConditionFalse), string(metav1.ConditionUnknown)}},
}

// rolloutColumns are what `kubectl get rollouts` prints.
var rolloutColumns = []PrinterColumn{
	{Name: "Host", Type: "string", JSONPath: ".spec.host", Description: "the service whose traffic moves"},
	{Name: "Phase", Type: "string", JSONPath: ".status.phase"},
	{Name: "Stable", Type: "string", JSONPath: ".status.stable", Description: "the subset that serves when no rollout runs"},
	{Name: "Canary", Type: "string", JSONPath: ".spec.canary", Description: "the subset being rolled out"},
	{Name: "Weight", Type: "integer", JSONPath: ".status.canaryWeight", Description: "percent of traffic on the canary"},
	{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
	{Name: "Message", Type: "string", JSONPath: ".status.message", Priority: 1},
}

// Rollout is the CRD of weir.dev/v1alpha1 Rollout, its schema generated from the Go
// types; src (the package's source) gives descriptions and enums, and may be nil.
func Rollout(src *Source) (*CRD, error) {
	g := &Generator{Known: rolloutKnown, Rules: rolloutRules, Source: src}
	schema, err := g.Schema(reflect.TypeFor[v1alpha1.Rollout]())
	if err != nil {
		return nil, fmt.Errorf("rollout schema: %w", err)
	}
	// metadata is always there (the API server sets it); listing it as required is noise.
	schema.Required = without(schema.Required, "metadata")
	return &CRD{
		APIVersion: "apiextensions.k8s.io/v1",
		Kind:       "CustomResourceDefinition",
		Metadata:   Metadata{Name: "rollouts." + v1alpha1.Group, Labels: map[string]string{"app.kubernetes.io/part-of": "weir"}},
		Spec: Spec{
			Group: v1alpha1.Group,
			Names: Names{
				Kind: v1alpha1.Kind, ListKind: v1alpha1.Kind + "List",
				Plural: "rollouts", Singular: "rollout", Categories: []string{"weir"},
			},
			Scope: "Namespaced",
			Versions: []Version{{
				Name: v1alpha1.Version, Served: true, Storage: true,
				Schema:                   VersionSchema{OpenAPIV3Schema: schema},
				Subresources:             StatusSubresource(),
				AdditionalPrinterColumns: rolloutColumns,
			}},
		},
	}, nil
}

func without(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}
