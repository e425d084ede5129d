package crd

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Structural reports where s breaks the rules the API server has for a CRD schema
// (apiextensions.k8s.io/v1 requires a structural schema): every node has a type unless it
// keeps unknown fields; properties and additionalProperties exclude each other; the root's
// metadata is only an object; a list-map's keys are required scalar fields of its items;
// patterns compile. CEL rules are not compiled here: the API server does that when the
// CRD is created.
func Structural(s *Schema) []error {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", orRoot(path), fmt.Sprintf(format, args...)))
	}
	if s.Type != "object" {
		fail("", "the root must be of type object")
	}
	if m := s.Properties["metadata"]; m != nil && (m.Type != "object" || len(m.Properties) > 0 || len(m.Required) > 0 || len(m.Validations) > 0) {
		fail(".metadata", "a CRD may only give metadata's type")
	}
	s.walk("", func(path string, n *Schema) {
		switch n.Type {
		case "object", "array", "string", "integer", "number", "boolean":
		case "":
			if !n.PreserveUnknownFields {
				fail(path, "no type (only a node that keeps unknown fields may go without)")
			}
		default:
			fail(path, "unknown type %q", n.Type)
		}
		if n.Properties != nil && n.AdditionalProperties != nil {
			fail(path, "both properties and additionalProperties")
		}
		if (n.Items != nil) != (n.Type == "array") {
			fail(path, "items must be given for, and only for, an array")
		}
		if n.Pattern != "" {
			if _, err := regexp.Compile(n.Pattern); err != nil {
				fail(path, "pattern: %v", err)
			}
		}
		if len(n.Enum) > 0 && n.Type != "string" {
			fail(path, "string enum on a %s", n.Type)
		}
		if n.Minimum != nil && n.Maximum != nil && *n.Minimum > *n.Maximum {
			fail(path, "minimum above maximum")
		}
		for _, r := range n.Validations {
			if strings.TrimSpace(r.Rule) == "" || r.Message == "" {
				fail(path, "a validation rule needs a rule and a message")
			}
		}
		switch n.ListType {
		case "", "atomic", "set":
		case "map":
			if n.Items == nil || n.Items.Type != "object" || len(n.ListMapKeys) == 0 {
				fail(path, "a list-map is a list of objects with keys")
				return
			}
			for _, k := range n.ListMapKeys {
				ks := n.Items.Properties[k]
				if ks == nil || !slices.Contains(n.Items.Required, k) || ks.Type == "object" || ks.Type == "array" {
					fail(path, "list-map key %q must be a required scalar field of the items", k)
				}
			}
		default:
			fail(path, "unknown list type %q", n.ListType)
		}
	})
	return errs
}

// Validate checks a value, as decoded from JSON (map[string]any, []any, string, float64,
// bool), against s, the way the API server's OpenAPI validation does, with unknown fields
// reported (kubectl apply's strict field validation). It does not evaluate CEL rules:
// Rules lists those it skipped, so a caller knows what is left unchecked.
func Validate(s *Schema, v any) []error {
	var errs []error
	validate(s, "", v, &errs)
	return errs
}

func validate(s *Schema, path string, v any, errs *[]error) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("%s: %s", orRoot(path), fmt.Sprintf(format, args...)))
	}
	if v == nil {
		// A null is dropped by the API server where the schema does not allow it.
		return
	}
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			fail("want an object, got %T", v)
			return
		}
		validateObject(s, path, m, errs)
	case "array":
		list, ok := v.([]any)
		if !ok {
			fail("want a list, got %T", v)
			return
		}
		validateArray(s, path, list, errs)
	case "string":
		str, ok := v.(string)
		if !ok {
			fail("want a string, got %T", v)
			return
		}
		n := int64(utf8.RuneCountInString(str))
		if s.MinLength != nil && n < *s.MinLength {
			fail("shorter than %d characters", *s.MinLength)
		}
		if s.MaxLength != nil && n > *s.MaxLength {
			fail("longer than %d characters", *s.MaxLength)
		}
		if s.Pattern != "" && !regexp.MustCompile(s.Pattern).MatchString(str) {
			fail("%q does not match %s", str, s.Pattern)
		}
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, str) {
			fail("%q is not one of %s", str, strings.Join(s.Enum, ", "))
		}
	case "integer", "number":
		f, ok := v.(float64)
		if !ok {
			fail("want a number, got %T", v)
			return
		}
		if s.Type == "integer" && f != math.Trunc(f) {
			fail("want an integer, got %v", f)
		}
		if s.Minimum != nil && (f < *s.Minimum || s.ExclusiveMinimum && f == *s.Minimum) {
			fail("%v is below the minimum %v", f, *s.Minimum)
		}
		if s.Maximum != nil && (f > *s.Maximum || s.ExclusiveMaximum && f == *s.Maximum) {
			fail("%v is above the maximum %v", f, *s.Maximum)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("want true or false, got %T", v)
		}
	}
}

func validateObject(s *Schema, path string, m map[string]any, errs *[]error) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("%s: %s", orRoot(path), fmt.Sprintf(format, args...)))
	}
	for _, name := range s.Required {
		if _, ok := m[name]; !ok {
			*errs = append(*errs, fmt.Errorf("%s.%s: required", path, name))
		}
	}
	n := int64(len(m))
	if s.MinProperties != nil && n < *s.MinProperties {
		fail("fewer than %d entries", *s.MinProperties)
	}
	if s.MaxProperties != nil && n > *s.MaxProperties {
		fail("more than %d entries", *s.MaxProperties)
	}
	for _, name := range sortedKeys(m) {
		switch {
		case path == "" && name == "metadata":
			// The API server validates metadata itself, whatever the schema says.
		case s.Properties[name] != nil:
			validate(s.Properties[name], path+"."+name, m[name], errs)
		case s.AdditionalProperties != nil:
			validate(s.AdditionalProperties, path+"."+name, m[name], errs)
		case s.PreserveUnknownFields, path == "" && (name == "apiVersion" || name == "kind" || name == "metadata"):
		default:
			fail("unknown field %q", name)
		}
	}
}

func validateArray(s *Schema, path string, list []any, errs *[]error) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("%s: %s", orRoot(path), fmt.Sprintf(format, args...)))
	}
	n := int64(len(list))
	if s.MinItems != nil && n < *s.MinItems {
		fail("fewer than %d items", *s.MinItems)
	}
	if s.MaxItems != nil && n > *s.MaxItems {
		fail("more than %d items", *s.MaxItems)
	}
	seen := map[string]bool{}
	for i, item := range list {
		validate(s.Items, fmt.Sprintf("%s[%d]", path, i), item, errs)
		if s.ListType != "map" {
			continue
		}
		obj, _ := item.(map[string]any)
		var key []string
		for _, k := range s.ListMapKeys {
			key = append(key, fmt.Sprint(obj[k]))
		}
		if k := strings.Join(key, "\x00"); seen[k] {
			fail("two items with %s %s", strings.Join(s.ListMapKeys, ", "), strings.Join(key, ", "))
		} else {
			seen[k] = true
		}
	}
}

// Rules lists every CEL rule in s with its path: what Validate does not check.
func Rules(s *Schema) map[string][]Rule {
	out := map[string][]Rule{}
	s.walk("", func(path string, n *Schema) {
		if len(n.Validations) > 0 {
			out[orRoot(path)] = n.Validations
		}
	})
	return out
}

func orRoot(path string) string {
	if path == "" {
		return "<root>"
	}
	return path
}
