package file

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/model"
)

// defaultNamespace is where objects without metadata.namespace live, as with kubectl.
const defaultNamespace = "default"

// header is the part of every object that says what it is.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

// parseFile reads one file's bytes into objects. It never fails as a whole: every problem
// becomes a diagnostic attached to the document or object it is about.
func parseFile(rel string, data []byte) *fileResult {
	res := &fileResult{}
	for _, doc := range splitDocuments(data) {
		parseDocument(res, rel, doc)
	}
	return res
}

func parseDocument(res *fileResult, rel string, doc document) {
	docRef := model.Ref{Kind: "Document", Name: "#" + strconv.Itoa(doc.index), File: rel}
	raw, err := yaml.YAMLToJSONStrict(doc.data)
	if err != nil {
		res.unreadable = append(res.unreadable, model.Errorf(docRef, "", "%s", yamlError(err, doc.line)))
		return
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return // a document of comments only
	}
	h, d := readHeader(docRef, raw)
	if d != nil {
		res.unreadable = append(res.unreadable, *d)
		return
	}
	if isList(h) {
		parseList(res, docRef, h)
		return
	}
	parseObject(res, docRef, h, raw)
}

// isList matches what `kubectl get -o yaml` prints for several objects: a v1 List, or a
// typed list such as ServiceList.
func isList(h header) bool {
	return h.Kind == "List" || (strings.HasSuffix(h.Kind, "List") && h.Items != nil)
}

func parseList(res *fileResult, docRef model.Ref, list header) {
	for i, item := range list.Items {
		ref := docRef
		ref.Name = fmt.Sprintf("%s items[%d]", docRef.Name, i)
		h, d := readHeader(ref, item)
		switch {
		case d != nil:
			res.unreadable = append(res.unreadable, *d)
		case isList(h):
			res.unreadable = append(res.unreadable, model.Errorf(ref, "kind", "a List inside a List is not supported"))
		default:
			parseObject(res, ref, h, item)
		}
	}
}

// readHeader reads what an object is. A document whose kind (or, for a kind weir reads,
// name) cannot be read cannot be matched with an earlier version of itself, so it makes
// the whole file unreadable and the file keeps its last good objects.
func readHeader(ref model.Ref, raw []byte) (header, *model.Diagnostic) {
	var h header
	if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || trimmed[0] != '{' {
		d := model.Errorf(ref, "", "is not an object (a mapping with apiVersion, kind and metadata)")
		return h, &d
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		field, msg := describeJSONError(err)
		d := model.Errorf(ref, field, "%s", msg)
		return h, &d
	}
	if h.Kind != "" {
		ref.Kind = h.Kind
	}
	var d model.Diagnostic
	switch {
	case h.APIVersion == "":
		d = model.Errorf(ref, "apiVersion", "apiVersion is missing")
	case h.Kind == "":
		d = model.Errorf(ref, "kind", "kind is missing")
	default:
		return h, nil
	}
	return h, &d
}

// parseObject decodes one object of a known identity. Decoding problems reject the object
// alone; the rest of the file is unaffected.
func parseObject(res *fileResult, docRef model.Ref, h header, raw []byte) {
	ns := h.Metadata.Namespace
	if ns == "" {
		ns = defaultNamespace
	}
	o := &object{ref: model.Ref{Kind: h.Kind, Namespace: ns, Name: h.Metadata.Name, File: docRef.File}}
	if o.ref.Name == "" {
		o.ref.Namespace, o.ref.Name = "", docRef.Name
	}
	decode, ok := decoderFor(h.APIVersion, h.Kind)
	switch {
	case !ok:
		// Checked before the name: a file of another tool (a Kustomization has no name)
		// is ignored, not broken.
		res.diags = append(res.diags, model.Warnf(o.ref, "",
			"kind %s (%s) is not supported yet; ignored", h.Kind, h.APIVersion))
		return
	case h.Metadata.Name == "":
		res.unreadable = append(res.unreadable, model.Errorf(o.ref, "metadata.name", "metadata.name is missing"))
		return
	}
	decode(o, raw)
	res.objects = append(res.objects, o)
}

// decoderFor returns the decoder of a supported apiVersion and kind.
func decoderFor(apiVersion, kind string) (func(*object, []byte), bool) {
	group, version, found := strings.Cut(apiVersion, "/")
	if !found {
		group, version = "", apiVersion
	}
	switch {
	case group == "" && version == "v1" && kind == kindService:
		return decodeService, true
	case group == "" && version == "v1" && kind == kindPod:
		return decodePod, true
	case group == "" && version == "v1" && kind == kindSecret:
		return decodeSecret, true
	case group == "discovery.k8s.io" && version == "v1" && kind == kindEndpointSlice:
		return decodeEndpointSlice, true
	case group == "networking.istio.io" && (version == "v1" || version == "v1beta1" || version == "v1alpha3"):
		return istioDecoder(kind)
	case group == v1alpha1.Group && version == v1alpha1.Version && kind == kindRollout:
		return decodeRollout, true
	}
	return nil, false
}

func istioDecoder(kind string) (func(*object, []byte), bool) {
	switch kind {
	case kindVirtualService:
		return decodeVirtualService, true
	case kindDestinationRule:
		return decodeDestinationRule, true
	case kindServiceEntry:
		return decodeServiceEntry, true
	case kindWorkloadEntry:
		return decodeWorkloadEntry, true
	case kindGateway:
		return decodeGateway, true
	case kindSidecar:
		return decodeSidecar, true
	}
	return nil, false
}

// yamlError says where a document fails to parse, as a line of the file (what an editor
// shows). The parser counts lines from the document's start, leaves the line out for the
// document's first line, and (a known quirk of yaml.v2) counts from 0 for parser errors
// but from 1 for scanner errors.
func yamlError(err error, docStart int) string {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.Join(strings.Fields(msg), " ")
	if !yamlLine.MatchString(msg) {
		return fmt.Sprintf("does not parse as YAML (document starting at line %d): %s", docStart, msg)
	}
	offset := docStart - 1
	if isParserError(msg) {
		offset++
	}
	return "does not parse as YAML: " + yamlLine.ReplaceAllStringFunc(msg, func(s string) string {
		n, err := strconv.Atoi(strings.TrimPrefix(s, "line "))
		if err != nil {
			return s
		}
		return "line " + strconv.Itoa(n+offset)
	})
}

var yamlLine = regexp.MustCompile(`\bline (\d+)`)

// parserErrors are the problems yaml.v2's parser (not its scanner) reports.
var parserErrors = []string{
	"did not find expected ',' or", "did not find expected '-' indicator", "did not find expected <",
	"did not find expected key", "did not find expected node content", "found duplicate %",
	"found incompatible YAML document", "found undefined tag handle",
}

func isParserError(msg string) bool {
	_, rest, _ := strings.Cut(msg, ": ")
	for _, p := range parserErrors {
		if strings.HasPrefix(rest, p) {
			return true
		}
	}
	return false
}

// describeJSONError turns an encoding/json error into a field path and a readable message.
func describeJSONError(err error) (field, msg string) {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Type != nil && typeErr.Type.Name() == "Duration" {
			return typeErr.Field, fmt.Sprintf("must be a duration such as 30s, 1m or 1h30m, not %s", typeErr.Value)
		}
		msg := fmt.Sprintf("must be %s, not %s", jsonTypeName(typeErr.Type.Kind().String()), typeErr.Value)
		if typeErr.Value == "bool" && typeErr.Type.Kind().String() == "string" {
			msg += " (YAML reads unquoted yes, no, on, off, y and n as true or false: quote the value)"
		}
		return typeErr.Field, msg
	}
	return "", strings.TrimPrefix(err.Error(), "json: ")
}

// jsonTypeName names a Go kind the way a YAML author thinks of it.
func jsonTypeName(kind string) string {
	switch {
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "slice", kind == "array":
		return "a list"
	case kind == "map", kind == "struct", kind == "ptr":
		return "a mapping"
	}
	return "a " + kind
}
