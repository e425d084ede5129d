package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/weir-mesh/weir/api/crd"
	"github.com/weir-mesh/weir/model"
	"github.com/weir-mesh/weir/watchers/file"
)

// manifest is one document of a file under deploy/, decoded.
type manifest struct {
	file string // relative to deploy/
	raw  []byte // the document as JSON
	kind string // apiVersion/kind
	obj  any    // a typed object: k8s.io/api types, *crd.CRD, or nil for kinds weir reads
}

func (m manifest) String() string { return fmt.Sprintf("%s: %s", m.file, m.kind) }

// k8sTypes are the kinds whose Go types k8s.io/api has; they are decoded as the API
// server decodes them with strict field validation: an unknown, misspelled (in any
// case) or duplicated field is an error.
var k8sTypes = func() *json.Serializer {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, rbacv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, s, s, json.SerializerOptions{Strict: true})
}()

// weirKinds are read by weir itself: such a document must come through weir's own
// reading (strict decode and validation) without an error.
var weirKinds = map[string]bool{
	"weir.dev/v1alpha1/Rollout":                   true,
	"networking.istio.io/v1beta1/VirtualService":  true,
	"networking.istio.io/v1beta1/DestinationRule": true,
}

func loadManifests(t *testing.T) []manifest {
	t.Helper()
	var out []manifest
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			j, err := yaml.YAMLToJSON(doc)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if string(j) == "null" {
				continue // only comments
			}
			m, err := decode(path, j)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no manifests found")
	}
	return out
}

func decode(path string, j []byte) (manifest, error) {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(j, &tm); err != nil {
		return manifest{}, fmt.Errorf("%s: %w", path, err)
	}
	m := manifest{file: path, raw: j, kind: tm.APIVersion + "/" + tm.Kind}
	switch {
	case tm.APIVersion == "apiextensions.k8s.io/v1" && tm.Kind == "CustomResourceDefinition":
		var c crd.CRD
		strict, err := kjson.UnmarshalStrict(j, &c)
		if err = errors.Join(append(strict, err)...); err != nil {
			return m, fmt.Errorf("%s: %w", m, err)
		}
		m.obj = &c
	case weirKinds[m.kind]:
		objs := file.NewObjects()
		objs.Set(path, j)
		for _, d := range objs.Snapshot().Diagnostics {
			if d.Severity == model.SeverityError {
				return m, fmt.Errorf("%s: weir rejects it: %s", m, d)
			}
		}
	default:
		obj, _, err := k8sTypes.Decode(j, nil, nil)
		if runtime.IsNotRegisteredError(err) {
			return m, fmt.Errorf("%s: a kind this test does not know: decode it strictly here", m)
		}
		if err != nil {
			return m, fmt.Errorf("%s: %w", m, err)
		}
		m.obj = obj
	}
	return m, nil
}

// TestManifestsDecodeStrictly is what every other test here stands on: each document of
// each YAML file under deploy/ decodes into its type with no unknown field.
func TestManifestsDecodeStrictly(t *testing.T) {
	ms := loadManifests(t)
	count := map[string]int{}
	for _, m := range ms {
		count[strings.SplitN(m.file, string(filepath.Separator), 2)[0]]++
	}
	for _, dir := range []string{"crds", "weir", "demo"} {
		if count[dir] == 0 {
			t.Errorf("no manifests under deploy/%s", dir)
		}
	}
}

// TestStrictDecodingCatchesTypos guards the guard: the decoding above must refuse what
// kubectl apply would refuse or silently drop.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	for name, doc := range map[string]string{
		"a misspelled field":        `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"prots":[]}}`,
		"a field in the wrong case": `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"Ports":[]}}`,
		"a field twice":             `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"type":"ClusterIP","type":"NodePort"}}`,
		"a CRD with a typo":         `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"a"},"spec":{"group":"g","scpoe":"Namespaced"}}`,
		"a kind nobody checks":      `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"a"}}`,
		"a bad Rollout":             `{"apiVersion":"weir.dev/v1alpha1","kind":"Rollout","metadata":{"name":"a"},"spec":{"host":"reviews"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decode("test.yaml", []byte(doc)); err == nil {
				t.Errorf("decoded without an error: %s", doc)
			}
		})
	}
}

// objects returns the decoded objects of type T, by file.
func objects[T any](ms []manifest, dir string) []T {
	var out []T
	for _, m := range ms {
		if o, ok := m.obj.(T); ok && strings.HasPrefix(m.file, dir) {
			out = append(out, o)
		}
	}
	return out
}
