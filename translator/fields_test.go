package translator

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	networking "istio.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/weir-mesh/weir/model"
	"github.com/weir-mesh/weir/watchers/file"
)

// The README's field table is the contract with users: every field of every Istio object
// weir reads is listed once, as supported (✔), supported with a difference from Istio (✱)
// or refused with a diagnostic (✘). These tests keep it true: a field added to the Istio
// API fails them until it is documented; a supported field must be exercised by a golden
// case; a refused field must produce a diagnostic in one.

// istioKinds are the objects the table covers, by kind.
var istioKinds = map[string]func() proto.Message{
	"VirtualService":  func() proto.Message { return &networking.VirtualService{} },
	"DestinationRule": func() proto.Message { return &networking.DestinationRule{} },
	"Gateway":         func() proto.Message { return &networking.Gateway{} },
	"ServiceEntry":    func() proto.Message { return &networking.ServiceEntry{} },
	"WorkloadEntry":   func() proto.Message { return &networking.WorkloadEntry{} },
	"Sidecar":         func() proto.Message { return &networking.Sidecar{} },
}

// fieldKey names a field the way the table does: its message type (without Istio's
// package prefix) and its JSON name, e.g. "HTTPRoute.fault".
func fieldKey(md protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor) string {
	return strings.TrimPrefix(string(md.FullName()), "istio.networking.v1alpha3.") + "." + fd.JSONName()
}

// apiFields lists every field reachable from the Istio kinds, each message type once.
func apiFields() []string {
	out, _ := apiGraph()
	return out
}

// apiGraph is apiFields plus, for each message type (by its key prefix), the fields whose
// value is of that type.
func apiGraph() ([]string, map[string][]string) {
	seen := map[protoreflect.FullName]bool{}
	parents := map[string][]string{}
	var out []string
	var visit func(md protoreflect.MessageDescriptor)
	visit = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] || md.ParentFile().Package() == "google.protobuf" {
			return
		}
		seen[md.FullName()] = true
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			out = append(out, fieldKey(md, fd))
			if fd.IsMap() {
				fd = fd.MapValue()
			}
			if fd.Kind() == protoreflect.MessageKind {
				child := strings.TrimPrefix(string(fd.Message().FullName()), "istio.networking.v1alpha3.")
				parents[child] = append(parents[child], fieldKey(md, md.Fields().Get(i)))
				visit(fd.Message())
			}
		}
	}
	for _, k := range slices.Sorted(mapsKeys(istioKinds)) {
		visit(istioKinds[k]().ProtoReflect().Descriptor())
	}
	slices.Sort(out)
	return out, parents
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

var tableRow = regexp.MustCompile("^\\| `([A-Za-z0-9_.]+)` \\| (✔|✱|✘|↑) \\|")

// readFieldTable reads the rows of the README's field table: field key -> status mark.
func readFieldTable(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := tableRow.FindStringSubmatch(sc.Text())
		if m == nil || !strings.Contains(m[1], ".") {
			continue // another table
		}
		if _, dup := rows[m[1]]; dup {
			t.Errorf("README: field %s is listed twice", m[1])
		}
		rows[m[1]] = m[2]
	}
	return rows
}

func TestFieldTableListsEveryField(t *testing.T) {
	rows := readFieldTable(t)
	api, parents := apiGraph()
	for k, mark := range rows {
		// ↑: refused with the block it sits in, so every field holding its type is refused.
		typ := k[:strings.LastIndex(k, ".")]
		if mark == "↑" && slices.ContainsFunc(parents[typ], func(p string) bool { return rows[p] != "✘" && rows[p] != "↑" }) {
			t.Errorf("README marks %s as refused with its block, but not every field of type %s is refused (%v)", k, typ, parents[typ])
		}
	}
	for _, k := range api {
		if _, ok := rows[k]; !ok {
			t.Errorf("README field table: %s is missing", k)
		}
	}
	for k := range rows {
		if !slices.Contains(api, k) {
			t.Errorf("README field table: %s is not a field of the Istio API", k)
		}
	}
}

// TestFieldTableIsBackedByGoldenCases checks each row against translator/testdata: a
// supported field is set in some case's input; a refused one is named by a diagnostic of
// some case (the translator's, or the file source's for what it reads itself).
func TestFieldTableIsBackedByGoldenCases(t *testing.T) {
	rows := readFieldTable(t)
	// covered: set somewhere in a case's input with no diagnostic at that place or under
	// it (so it was used, not merely reported); diagnosed: named by a diagnostic.
	covered, diagnosed, set := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, dir := range goldenCases(t) {
		in := filepath.Join(dir, "input.yaml")
		_, diags := translateCase(t, dir)
		for _, d := range fileSourceDiagnostics(t, in) {
			// What the file source reads itself; its checks of TLS files would only say
			// that the golden cases' example paths do not exist here.
			if d.Source.Kind == "ServiceEntry" || d.Source.Kind == "WorkloadEntry" {
				diags = append(diags, d)
			}
		}
		for _, d := range diags {
			if d.Field != "" {
				diagnosed[lastField(d.Field)] = true
			}
		}
		for _, obj := range istioObjects(t, in) {
			var at []string // diagnostic fields about this object
			for _, d := range diags {
				if d.Source.Kind == obj.kind && d.Source.Namespace == obj.namespace && d.Source.Name == obj.name {
					at = append(at, d.Field)
				}
			}
			collectSet(obj.spec.ProtoReflect(), "spec", func(key, path string) {
				set[key] = true
				if !slices.ContainsFunc(at, func(f string) bool { return within(f, path) }) {
					covered[key] = true
				}
			})
		}
	}
	for _, k := range slices.Sorted(mapsKeys(rows)) {
		field := k[strings.LastIndex(k, ".")+1:]
		switch rows[k] {
		case "✔":
			if !covered[k] {
				t.Errorf("README marks %s supported, but no golden case uses it without a diagnostic about it", k)
			}
		case "✱": // a difference from Istio is often announced by a warning
			if !covered[k] && !set[k] {
				t.Errorf("README marks %s supported, but no golden case uses it", k)
			}
		case "✘":
			if !diagnosed[field] {
				t.Errorf("README marks %s refused, but no golden case shows a diagnostic naming it", k)
			}
		}
	}
}

// within reports whether field path f is path p or a place under it.
func within(f, p string) bool {
	return f == p || strings.HasPrefix(f, p+".") || strings.HasPrefix(f, p+"[")
}

// lastField is the last name of a diagnostic's field path, without indexes:
// "spec.http[0].fault.abort" -> "abort".
func lastField(path string) string {
	path = path[strings.LastIndex(path, ".")+1:]
	if i := strings.IndexByte(path, '['); i >= 0 {
		path = path[:i]
	}
	return path
}

// istioObject is one Istio object of a golden input.
type istioObject struct {
	kind, namespace, name string
	spec                  proto.Message
}

// istioObjects parses the Istio objects of a golden input.
func istioObjects(t *testing.T, path string) []istioObject {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []istioObject
	for _, doc := range docSeparator.Split(string(data), -1) {
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var o struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Spec json.RawMessage `json:"spec"`
		}
		if err := json.Unmarshal(js, &o); err != nil || istioKinds[o.Kind] == nil || len(o.Spec) == 0 {
			continue
		}
		m := istioKinds[o.Kind]()
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(o.Spec, m); err != nil {
			continue // a case about bad input; what parses of it is covered elsewhere
		}
		ns := o.Metadata.Namespace
		if ns == "" {
			ns = "default"
		}
		out = append(out, istioObject{kind: o.Kind, namespace: ns, name: o.Metadata.Name, spec: m})
	}
	return out
}

// collectSet calls found with the key and the path of every field set in m and in the
// messages under it.
func collectSet(m protoreflect.Message, path string, found func(key, path string)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + "." + fd.JSONName()
		found(fieldKey(m.Descriptor(), fd), p)
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			for i := range v.List().Len() {
				collectSet(v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", p, i), found)
			}
		case fd.IsMap() && fd.MapValue().Kind() == protoreflect.MessageKind:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				collectSet(mv.Message(), fmt.Sprintf("%s[%s]", p, k.String()), found)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Kind() == protoreflect.MessageKind:
			collectSet(v.Message(), p, found)
		}
		return true
	})
}

// fileSourceDiagnostics loads a golden input with the file source, which reports the
// fields of ServiceEntries and WorkloadEntries that it reads itself.
func fileSourceDiagnostics(t *testing.T, input string) []model.Diagnostic {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(input)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "input.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := file.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return snap.Diagnostics
}
