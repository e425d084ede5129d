package crd

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type inner struct {
	Kind string `json:"kind,omitempty"`
}

type selfMarshaling struct{ time.Time }

type recursive struct {
	Next *recursive `json:"next,omitempty"`
}

func TestGeneratorFollowsEncodingJSON(t *testing.T) {
	type object struct {
		inner    `json:",inline"`
		Name     string            `json:"name" crd:"minLength=1"`
		Count    *int32            `json:"count"`
		Weights  []int32           `json:"weights,omitempty" crd:"maxItems=3,itemMaximum=100"`
		Labels   map[string]string `json:"labels,omitzero"`
		Skipped  string            `json:"-"`
		internal string
	}
	got, err := (&Generator{}).Schema(reflect.TypeFor[object]())
	if err != nil {
		t.Fatal(err)
	}
	want := &Schema{
		Type: "object",
		Properties: map[string]*Schema{
			"kind":    {Type: "string"},
			"name":    {Type: "string", MinLength: ptr(int64(1))},
			"count":   {Type: "integer", Format: "int32"},
			"weights": {Type: "array", MaxItems: ptr(int64(3)), Items: &Schema{Type: "integer", Format: "int32", Maximum: ptr(100.0)}},
			"labels":  {Type: "object", AdditionalProperties: &Schema{Type: "string"}},
		},
		// A pointer may be null, so it is never required; omitempty and omitzero fields
		// may be absent.
		Required: []string{"name"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema (-want +got):\n%s", diff)
	}
	_ = object{}.internal
}

func TestGeneratorRefusesWhatItCannotSay(t *testing.T) {
	type badTag struct {
		N int32 `json:"n" crd:"maximun=3"`
	}
	type listMapOfScalars struct {
		L []string `json:"l" crd:"listMapKey=name"`
	}
	for _, tc := range []struct {
		name string
		typ  reflect.Type
		want string
	}{
		{"a misspelled tag key", reflect.TypeFor[badTag](), `unknown key "maximun"`},
		{"a type with its own JSON", reflect.TypeFor[selfMarshaling](), "marshals itself"},
		{"a recursive type", reflect.TypeFor[recursive](), "recursive"},
		{"map keys of a list of scalars", reflect.TypeFor[listMapOfScalars](), "only a list of objects"},
		{"a channel", reflect.TypeFor[chan int](), "no JSON schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&Generator{}).Schema(tc.typ)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestStructuralCatchesWhatTheAPIServerRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		schema *Schema
		want   string
	}{
		{"a field without a type", &Schema{Type: "object", Properties: map[string]*Schema{"spec": {}}}, ".spec: no type"},
		{"properties and additionalProperties", &Schema{Type: "object", Properties: map[string]*Schema{"a": {Type: "string"}}, AdditionalProperties: &Schema{Type: "string"}}, "both properties"},
		{"a described metadata", &Schema{Type: "object", Properties: map[string]*Schema{"metadata": {Type: "object", Required: []string{"name"}}}}, "metadata"},
		{"an optional list-map key", &Schema{Type: "object", Properties: map[string]*Schema{"l": {
			Type: "array", ListType: "map", ListMapKeys: []string{"name"},
			Items: &Schema{Type: "object", Properties: map[string]*Schema{"name": {Type: "string"}}},
		}}}, `list-map key "name"`},
		{"a bad pattern", &Schema{Type: "object", Properties: map[string]*Schema{"s": {Type: "string", Pattern: "(("}}}, "pattern"},
		{"a rule without a message", &Schema{Type: "object", Validations: []Rule{{Rule: "true"}}}, "rule and a message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := Structural(tc.schema)
			found := false
			for _, err := range errs {
				found = found || strings.Contains(err.Error(), tc.want)
			}
			if !found {
				t.Errorf("got %v, want an error saying %q", errs, tc.want)
			}
		})
	}
}
