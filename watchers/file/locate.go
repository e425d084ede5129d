package file

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
)

// decodeProto parses a spec into m the way Istio does (protojson, unknown fields refused).
// protojson's own error names neither the path nor a likely fix, so on failure the value
// is taken apart field by field to find the one at fault.
func decodeProto(raw []byte, m proto.Message, path string) *fieldProblem {
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil // no spec: the object's validation says what is missing
	}
	err := protojson.UnmarshalOptions{DiscardUnknown: false}.Unmarshal(raw, m)
	if err == nil {
		return nil
	}
	if fixed, ok := withGoDurations(raw, m.ProtoReflect().Descriptor()); ok {
		proto.Reset(m)
		if err = (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(fixed, m); err == nil {
			return nil
		}
		raw = fixed
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // re-encoded numbers must stay exactly as written
	var obj map[string]any
	if dec.Decode(&obj) != nil || obj == nil {
		return &fieldProblem{field: path, msg: "must be a mapping"}
	}
	if field, msg := locateProto(m.ProtoReflect().Descriptor(), obj, path); field != "" {
		return &fieldProblem{field: field, msg: msg}
	}
	return &fieldProblem{field: path, msg: cleanProtoError(err)}
}

// locateProto returns the deepest field of obj that protojson refuses on its own.
func locateProto(md protoreflect.MessageDescriptor, obj map[string]any, path string) (string, string) {
	for _, k := range sortedKeys(obj) {
		p := joinPath(path, k)
		fd := protoField(md, k)
		if fd == nil {
			return p, unknownFieldMessage(k, jsonNames(md))
		}
		err := tryProto(md, k, obj[k])
		if err == nil {
			continue
		}
		if field, msg := locateValue(md, fd, k, obj[k], p); field != "" {
			return field, msg
		}
		return p, leafMessage(fd, obj[k], err)
	}
	return "", ""
}

// locateValue looks inside one refused field: the list element, map entry or nested
// message at fault.
func locateValue(parent protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor, key string, v any, path string) (string, string) {
	switch {
	case fd.IsList():
		list, _ := v.([]any)
		for i, el := range list {
			p := fmt.Sprintf("%s[%d]", path, i)
			if err := tryProto(parent, key, []any{el}); err != nil {
				if field, msg := locateMessage(fd, el, p); field != "" {
					return field, msg
				}
				return p, leafMessage(fd, el, err)
			}
		}
	case fd.IsMap():
		obj, _ := v.(map[string]any)
		for _, k := range sortedKeys(obj) {
			p := fmt.Sprintf("%s[%s]", path, k)
			if err := tryProto(parent, key, map[string]any{k: obj[k]}); err != nil {
				if field, msg := locateMessage(fd.MapValue(), obj[k], p); field != "" {
					return field, msg
				}
				return p, leafMessage(fd.MapValue(), obj[k], err)
			}
		}
	default:
		return locateMessage(fd, v, path)
	}
	return "", ""
}

// locateMessage descends into a message-typed value. Well-known types (Duration, Struct,
// wrappers) have their own JSON forms and are leaves here.
func locateMessage(fd protoreflect.FieldDescriptor, v any, path string) (string, string) {
	if fd.Kind() != protoreflect.MessageKind || strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf.") {
		return "", ""
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return "", ""
	}
	return locateProto(fd.Message(), obj, path)
}

// tryProto parses a message holding only the one field key = v.
func tryProto(md protoreflect.MessageDescriptor, key string, v any) error {
	b, err := json.Marshal(map[string]any{key: v})
	if err != nil {
		return err
	}
	return protojson.Unmarshal(b, newMessage(md))
}

func newMessage(md protoreflect.MessageDescriptor) proto.Message {
	if mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName()); err == nil {
		return mt.New().Interface()
	}
	return dynamicpb.NewMessage(md)
}

// protoField finds a field by either of the names protojson accepts.
func protoField(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
	if fd := md.Fields().ByJSONName(name); fd != nil {
		return fd
	}
	return md.Fields().ByName(protoreflect.Name(name))
}

func jsonNames(md protoreflect.MessageDescriptor) []string {
	fields := md.Fields()
	out := make([]string, 0, fields.Len())
	for i := range fields.Len() {
		out = append(out, fields.Get(i).JSONName())
	}
	return out
}

// leafMessage says what a refused value should have been, in the words of someone
// writing YAML rather than protojson's.
func leafMessage(fd protoreflect.FieldDescriptor, v any, err error) string {
	got, _ := json.Marshal(v)
	switch {
	case fd.Kind() == protoreflect.EnumKind:
		values := fd.Enum().Values()
		names := make([]string, 0, values.Len())
		for i := range values.Len() {
			names = append(names, string(values.Get(i).Name()))
		}
		return fmt.Sprintf("must be one of %s, not %s", strings.Join(names, ", "), got)
	case fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() == "google.protobuf.Duration":
		return fmt.Sprintf("must be a duration such as \"5s\", \"250ms\" or \"1m\", not %s", got)
	}
	if m := scalarError.FindStringSubmatch(cleanProtoError(err)); m != nil {
		msg := fmt.Sprintf("must be %s, not %s", jsonTypeName(m[1]), got)
		if _, isBool := v.(bool); isBool && m[1] == "string" {
			msg += " (YAML reads unquoted yes, no, on, off, y and n as true or false: quote the value)"
		}
		return msg
	}
	return cleanProtoError(err)
}

// scalarError matches protojson's complaint about a scalar of the wrong type.
var scalarError = regexp.MustCompile(`^invalid value for (\w+) field`)

// protojson prefixes its errors with "proto:" (followed by a space that is sometimes a
// non-breaking one, on purpose) and a position in the JSON weir built, which means
// nothing to the person who wrote the YAML.
var protoErrorPrefix = regexp.MustCompile(`^proto:[\s\x{a0}]*(syntax error[\s\x{a0}]*)?(\(line \d+:\d+\):[\s\x{a0}]*)?`)

func cleanProtoError(err error) string {
	return protoErrorPrefix.ReplaceAllString(err.Error(), "")
}
