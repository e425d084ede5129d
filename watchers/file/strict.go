package file

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// fieldProblem is one thing wrong with one field of an object.
type fieldProblem struct {
	field, msg string
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// decodeStrict decodes raw JSON into out and also reports every field out has no place
// for, the way the API server's strict field validation does: a misspelled field is an
// error, never silently dropped. Unlike encoding/json, field names are case-sensitive, as
// they are in Kubernetes.
func decodeStrict(raw []byte, out any) []fieldProblem {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // re-encoded numbers must stay exactly as written
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return []fieldProblem{{msg: err.Error()}}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		field, msg := describeJSONError(err)
		if field != "" {
			field = indexedPath(reflect.TypeOf(out), generic, strings.Split(field, "."), "")
		}
		return []fieldProblem{{field: field, msg: msg}}
	}
	var probs []fieldProblem
	unknownFields(reflect.TypeOf(out), generic, "", &probs)
	return probs
}

// unknownFields walks a decoded JSON value next to the Go type it was decoded into.
func unknownFields(t reflect.Type, v any, path string, out *[]fieldProblem) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return // decodes itself (IntOrString, Time, RawMessage): nothing to walk
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, _ := v.(map[string]any)
		fields := jsonFields(t)
		for _, k := range sortedKeys(obj) {
			ft, ok := fields[k]
			if !ok {
				*out = append(*out, fieldProblem{field: joinPath(path, k), msg: unknownFieldMessage(k, mapKeys(fields))})
				continue
			}
			unknownFields(ft, obj[k], joinPath(path, k), out)
		}
	case reflect.Slice, reflect.Array:
		list, _ := v.([]any)
		for i, el := range list {
			unknownFields(t.Elem(), el, fmt.Sprintf("%s[%d]", path, i), out)
		}
	case reflect.Map:
		obj, _ := v.(map[string]any)
		for _, k := range sortedKeys(obj) {
			unknownFields(t.Elem(), obj[k], fmt.Sprintf("%s[%s]", path, k), out)
		}
	}
}

// indexedPath adds list indices and map keys to the dotted path encoding/json reports
// ("spec.ports.port" becomes "spec.ports[1].port"): the first element that does not
// decode on its own is the one at fault.
func indexedPath(t reflect.Type, v any, parts []string, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && len(parts) > 0 && !reflect.PointerTo(t).Implements(jsonUnmarshaler):
		obj, _ := v.(map[string]any)
		ft, ok := jsonFields(t)[parts[0]]
		if !ok {
			return joinPath(path, strings.Join(parts, "."))
		}
		return indexedPath(ft, obj[parts[0]], parts[1:], joinPath(path, parts[0]))
	case t.Kind() == reflect.Slice:
		list, _ := v.([]any)
		for i, el := range list {
			if !decodes(t.Elem(), el) {
				return indexedPath(t.Elem(), el, parts, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case t.Kind() == reflect.Map:
		obj, _ := v.(map[string]any)
		for _, k := range sortedKeys(obj) {
			if !decodes(t.Elem(), obj[k]) {
				return indexedPath(t.Elem(), obj[k], parts, fmt.Sprintf("%s[%s]", path, k))
			}
		}
	}
	if len(parts) == 0 {
		return path
	}
	return joinPath(path, strings.Join(parts, "."))
}

// decodes reports whether v decodes into a value of type t.
func decodes(t reflect.Type, v any) bool {
	b, err := json.Marshal(v)
	return err == nil && json.Unmarshal(b, reflect.New(t).Interface()) == nil
}

// jsonFields maps the JSON names of a struct's fields to their types, with embedded
// (inline) structs flattened as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || (!f.IsExported() && !f.Anonymous):
			continue
		case name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct:
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		case name == "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys[V any](m map[string]V) []string {
	keys := mapKeys(m)
	slices.Sort(keys)
	return keys
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// unknownFieldMessage says a field is unknown and, when one known field is close enough
// to be the intended spelling, names it.
func unknownFieldMessage(name string, known []string) string {
	if s := closest(name, known); s != "" {
		return fmt.Sprintf("unknown field %q (did you mean %q?)", name, s)
	}
	return fmt.Sprintf("unknown field %q", name)
}

// closest returns the known name nearest to name by edit distance, if it is near enough
// to be a typo; "" otherwise.
func closest(name string, known []string) string {
	slices.Sort(known) // ties resolve the same way every time
	best, bestDist := "", len(name)/3+1
	for _, k := range known {
		d := editDistance(strings.ToLower(name), strings.ToLower(k))
		if d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b: Levenshtein
// plus swapping two neighbours, the commonest typo ("spce" for "spec").
func editDistance(a, b string) int {
	rows := [3][]int{make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)}
	for j := range rows[1] {
		rows[1][j] = j
	}
	for i := 1; i <= len(a); i++ {
		prev2, prev, cur := rows[0], rows[1], rows[2]
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		rows = [3][]int{prev, cur, prev2}
	}
	return rows[1][len(b)]
}
