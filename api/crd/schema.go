// Package crd builds the CustomResourceDefinitions weir installs: the Rollout's, with an
// OpenAPI v3 schema generated from the Go types in api/v1alpha1, and Istio's networking
// kinds for clusters without Istio.
package crd

// Schema is the part of apiextensions.k8s.io/v1 JSONSchemaProps that weir's CRDs use,
// with the same JSON names, so that a CRD written from it is read by the API server as
// written (and a CRD file decoded into it strictly fails on a field this type lacks).
type Schema struct {
	Description string `json:"description,omitempty"`
	Type        string `json:"type,omitempty"`
	Format      string `json:"format,omitempty"`
	// Enum holds string values only: every enum of weir's API is a string.
	Enum []string `json:"enum,omitempty"`

	Minimum          *float64 `json:"minimum,omitempty"`
	ExclusiveMinimum bool     `json:"exclusiveMinimum,omitempty"`
	Maximum          *float64 `json:"maximum,omitempty"`
	ExclusiveMaximum bool     `json:"exclusiveMaximum,omitempty"`
	MinLength        *int64   `json:"minLength,omitempty"`
	MaxLength        *int64   `json:"maxLength,omitempty"`
	Pattern          string   `json:"pattern,omitempty"`
	MinItems         *int64   `json:"minItems,omitempty"`
	MaxItems         *int64   `json:"maxItems,omitempty"`
	MinProperties    *int64   `json:"minProperties,omitempty"`
	MaxProperties    *int64   `json:"maxProperties,omitempty"`

	Required             []string           `json:"required,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	AdditionalProperties *Schema            `json:"additionalProperties,omitempty"`

	PreserveUnknownFields bool     `json:"x-kubernetes-preserve-unknown-fields,omitempty"`
	ListType              string   `json:"x-kubernetes-list-type,omitempty"`
	ListMapKeys           []string `json:"x-kubernetes-list-map-keys,omitempty"`
	// Validations are CEL rules the API server evaluates on create and update.
	Validations []Rule `json:"x-kubernetes-validations,omitempty"`
}

// Rule is one x-kubernetes-validations entry: a CEL expression over self that must be
// true, and the message the API server returns when it is not.
type Rule struct {
	Rule    string `json:"rule"`
	Message string `json:"message,omitempty"`
}

func ptr[T any](v T) *T { return &v }

// walk calls f on s and every schema below it, with its path (".spec.strategy",
// ".spec.analysis.metrics[]", ".spec.strategy.abTesting.match[].headers{}").
func (s *Schema) walk(path string, f func(path string, s *Schema)) {
	if s == nil {
		return
	}
	f(path, s)
	for _, name := range sortedKeys(s.Properties) {
		s.Properties[name].walk(path+"."+name, f)
	}
	s.Items.walk(path+"[]", f)
	s.AdditionalProperties.walk(path+"{}", f)
}
