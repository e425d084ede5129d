package file

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// protoDuration is the only duration form protojson reads: seconds, with a fraction.
var protoDuration = regexp.MustCompile(`^-?[0-9]+(\.[0-9]{1,9})?s$`)

// withGoDurations rewrites the durations of a spec written as Go durations ("200ms",
// "1m", "1h30m"), which Istio reads and Istio's own docs use, into the seconds form
// protojson reads. It reports whether anything changed; other values are left for
// protojson to judge.
func withGoDurations(raw []byte, md protoreflect.MessageDescriptor) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // re-encoded numbers must stay exactly as written
	var v any
	if dec.Decode(&v) != nil {
		return raw, false
	}
	if !rewriteDurations(md, v) {
		return raw, false
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw, false
	}
	return out, true
}

func rewriteDurations(md protoreflect.MessageDescriptor, v any) bool {
	obj, ok := v.(map[string]any)
	if !ok {
		return false
	}
	changed := false
	for k, val := range obj {
		fd := protoField(md, k)
		if fd == nil {
			continue
		}
		if fd.IsMap() {
			fd = fd.MapValue()
			if m, ok := val.(map[string]any); ok && fd.Kind() == protoreflect.MessageKind {
				for mk, mv := range m {
					if d, ok := goDuration(fd, mv); ok {
						m[mk], changed = d, true
					} else if rewriteDurations(fd.Message(), mv) {
						changed = true
					}
				}
			}
			continue
		}
		if fd.Kind() != protoreflect.MessageKind {
			continue
		}
		if list, ok := val.([]any); ok && fd.IsList() {
			for i, el := range list {
				if d, ok := goDuration(fd, el); ok {
					list[i], changed = d, true
				} else if rewriteDurations(fd.Message(), el) {
					changed = true
				}
			}
			continue
		}
		if d, ok := goDuration(fd, val); ok {
			obj[k], changed = d, true
		} else if rewriteDurations(fd.Message(), val) {
			changed = true
		}
	}
	return changed
}

// goDuration converts a Go duration string held by a Duration field.
func goDuration(fd protoreflect.FieldDescriptor, v any) (string, bool) {
	s, ok := v.(string)
	if !ok || fd.Message().FullName() != "google.protobuf.Duration" || protoDuration.MatchString(s) {
		return "", false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return "", false
	}
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	frac := strings.TrimRight(fmt.Sprintf("%09d", d%time.Second), "0")
	if frac != "" {
		frac = "." + frac
	}
	return fmt.Sprintf("%s%d%ss", sign, d/time.Second, frac), true
}
