package crd

import (
	"bytes"
	"fmt"
	"sort"

	"sigs.k8s.io/yaml"
)

// CRD is an apiextensions.k8s.io/v1 CustomResourceDefinition, as far as weir's CRDs use
// it, with the same JSON names.
type CRD struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`
}

// Metadata is the CRD's object metadata.
type Metadata struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Spec is a CustomResourceDefinitionSpec.
type Spec struct {
	Group    string    `json:"group"`
	Names    Names     `json:"names"`
	Scope    string    `json:"scope"`
	Versions []Version `json:"versions"`
}

// Names are a CustomResourceDefinitionNames.
type Names struct {
	Kind       string   `json:"kind"`
	ListKind   string   `json:"listKind,omitempty"`
	Plural     string   `json:"plural"`
	Singular   string   `json:"singular,omitempty"`
	ShortNames []string `json:"shortNames,omitempty"`
	Categories []string `json:"categories,omitempty"`
}

// Version is a CustomResourceDefinitionVersion.
type Version struct {
	Name                     string          `json:"name"`
	Served                   bool            `json:"served"`
	Storage                  bool            `json:"storage"`
	Schema                   VersionSchema   `json:"schema"`
	Subresources             *Subresources   `json:"subresources,omitempty"`
	AdditionalPrinterColumns []PrinterColumn `json:"additionalPrinterColumns,omitempty"`
}

// VersionSchema is a CustomResourceValidation.
type VersionSchema struct {
	OpenAPIV3Schema *Schema `json:"openAPIV3Schema"`
}

// Subresources turns on /status (an empty object in JSON, as the API expects).
type Subresources struct {
	Status *struct{} `json:"status,omitempty"`
}

// StatusSubresource is the subresources of a kind whose status is written apart from its
// spec (by the controller, through /status; a user's kubectl apply cannot change it).
func StatusSubresource() *Subresources { return &Subresources{Status: &struct{}{}} }

// PrinterColumn is a CustomResourceColumnDefinition: a column of `kubectl get`.
type PrinterColumn struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	JSONPath    string `json:"jsonPath"`
	Description string `json:"description,omitempty"`
	Priority    int32  `json:"priority,omitempty"`
}

// Marshal writes CRDs as one multi-document YAML file after a header comment.
func Marshal(header string, crds ...*CRD) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(header)
	for i, c := range crds {
		b, err := yaml.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("marshal crd %s: %w", c.Metadata.Name, err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
