package crd

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Generator turns Go types into structural schemas by reflection, following
// encoding/json's rules (json tag names, omitempty, embedded structs inlined). A field
// without omitempty or omitzero, and not a pointer, is required: Go always writes it.
//
// Constraints come from a `crd` struct tag, a comma-separated list of key=value:
// minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers); minLength, maxLength
// (strings); minItems, maxItems, itemMinimum, itemMaximum, listMapKey (lists);
// minProperties, maxProperties (objects and maps). An unknown key is an error, so a typo
// never silently drops a constraint.
type Generator struct {
	// Known are the schemas of types that marshal themselves (a Duration as "30s").
	// Any other type with its own MarshalJSON is an error: its JSON shape is not its
	// Go shape.
	Known map[reflect.Type]Schema
	// Rules are CEL rules added to a type's schema wherever the type appears.
	Rules map[reflect.Type][]Rule
	// Source gives descriptions and enum values for the types of one package.
	Source *Source
}

// Schema returns the schema of t.
func (g *Generator) Schema(t reflect.Type) (*Schema, error) {
	return g.schema(t, map[reflect.Type]bool{})
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

func (g *Generator) schema(t reflect.Type, open map[reflect.Type]bool) (*Schema, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if k, ok := g.Known[t]; ok {
		s := k
		s.Validations = append(append([]Rule(nil), k.Validations...), g.Rules[t]...)
		if s.Description == "" {
			s.Description = g.Source.typeDoc(t)
		}
		return &s, nil
	}
	if t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) ||
		t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		return nil, fmt.Errorf("%s marshals itself: give its schema in Generator.Known", t)
	}
	if open[t] {
		return nil, fmt.Errorf("%s is recursive: a structural schema cannot express it", t)
	}
	open[t] = true
	defer delete(open, t)

	s := &Schema{Description: g.Source.typeDoc(t), Validations: g.Rules[t]}
	switch t.Kind() {
	case reflect.String:
		s.Type = "string"
		s.Enum = g.Source.enum(t)
	case reflect.Bool:
		s.Type = "boolean"
	case reflect.Int32:
		s.Type, s.Format = "integer", "int32"
	case reflect.Int, reflect.Int64:
		s.Type, s.Format = "integer", "int64"
	case reflect.Float32, reflect.Float64:
		s.Type, s.Format = "number", "double"
	case reflect.Slice:
		s.Type = "array"
		items, err := g.schema(t.Elem(), open)
		if err != nil {
			return nil, err
		}
		s.Items = items
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%s: map keys must be strings in JSON", t)
		}
		s.Type = "object"
		values, err := g.schema(t.Elem(), open)
		if err != nil {
			return nil, err
		}
		s.AdditionalProperties = values
	case reflect.Struct:
		s.Type = "object"
		if err := g.fields(t, s, open); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s: no JSON schema for kind %s", t, t.Kind())
	}
	return s, nil
}

// fields adds the properties of struct t to s; embedded structs without a json name
// are inlined, as encoding/json does.
func (g *Generator) fields(t reflect.Type, s *Schema, open map[reflect.Type]bool) error {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			if err := g.fields(f.Type, s, open); err != nil {
				return err
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs, err := g.schema(f.Type, open)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", t.Name(), f.Name, err)
		}
		if doc := g.Source.fieldDoc(t, f.Name); doc != "" {
			fs.Description = doc
		}
		if err := applyTag(fs, f.Tag.Get("crd")); err != nil {
			return fmt.Errorf("%s.%s: %w", t.Name(), f.Name, err)
		}
		if s.Properties == nil {
			s.Properties = map[string]*Schema{}
		}
		s.Properties[name] = fs
		optional := strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
		if !optional && f.Type.Kind() != reflect.Pointer {
			s.Required = append(s.Required, name)
		}
	}
	return nil
}

// applyTag sets the constraints of a `crd` struct tag on s.
func applyTag(s *Schema, tag string) error {
	if tag == "" {
		return nil
	}
	for kv := range strings.SplitSeq(tag, ",") {
		key, value, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("crd tag %q: want key=value", kv)
		}
		if key == "listMapKey" {
			if s.Type != "array" || s.Items == nil || s.Items.Type != "object" {
				return fmt.Errorf("crd tag %s: only a list of objects has map keys", kv)
			}
			s.ListType, s.ListMapKeys = "map", []string{value}
			continue
		}
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return fmt.Errorf("crd tag %s: %w", kv, err)
		}
		i := ptr(int64(n))
		switch key {
		case "minimum":
			s.Minimum = &n
		case "maximum":
			s.Maximum = &n
		case "exclusiveMinimum":
			s.Minimum, s.ExclusiveMinimum = &n, true
		case "exclusiveMaximum":
			s.Maximum, s.ExclusiveMaximum = &n, true
		case "minLength":
			s.MinLength = i
		case "maxLength":
			s.MaxLength = i
		case "minItems":
			s.MinItems = i
		case "maxItems":
			s.MaxItems = i
		case "itemMinimum", "itemMaximum":
			if s.Items == nil {
				return fmt.Errorf("crd tag %s: not a list", kv)
			}
			if key == "itemMinimum" {
				s.Items.Minimum = &n
			} else {
				s.Items.Maximum = &n
			}
		case "minProperties":
			s.MinProperties = i
		case "maxProperties":
			s.MaxProperties = i
		default:
			return fmt.Errorf("crd tag: unknown key %q", key)
		}
	}
	return nil
}
