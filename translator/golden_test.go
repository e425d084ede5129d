package translator

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/weir-mesh/weir/model"
)

var update = flag.Bool("update", false, "rewrite the golden files of translator/testdata")

// goldenCases lists the directories of testdata holding an input.yaml.
func goldenCases(t *testing.T) []string {
	t.Helper()
	inputs, err := filepath.Glob("testdata/*/input.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden cases found: %v", err)
	}
	var dirs []string
	for _, in := range inputs {
		dirs = append(dirs, filepath.Dir(in))
	}
	return dirs
}

func translateCase(t *testing.T, dir string) (*Output, []model.Diagnostic) {
	t.Helper()
	return Translate(loadSnapshot(t, filepath.Join(dir, "input.yaml")), loadClass(t, filepath.Join(dir, "class.yaml")))
}

// TestGolden translates every testdata case and compares each resource type with its
// golden YAML; `go test ./translator -update` rewrites them. Every resource must also pass
// Envoy's own proto validation, and every cluster a route names must be in the output.
func TestGolden(t *testing.T) {
	for _, dir := range goldenCases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out, diags := translateCase(t, dir)
			assertValid(t, out)
			assertRoutedClustersExist(t, out)
			assertUniqueDomains(t, out)
			assertScopesReachDomains(t, out)
			if diags == nil {
				diags = []model.Diagnostic{}
			}
			files := map[string][]byte{
				"listeners.yaml":   renderResources(t, out.Listeners),
				"routes.yaml":      renderResources(t, out.Routes),
				"scopes.yaml":      renderResources(t, out.Scopes),
				"clusters.yaml":    renderResources(t, out.Clusters),
				"endpoints.yaml":   renderResources(t, out.Endpoints),
				"diagnostics.yaml": renderYAML(t, diags),
				"origins.yaml":     renderYAML(t, out.Origins),
			}
			if len(out.Secrets) > 0 || loadClass(t, filepath.Join(dir, "class.yaml")).Role == model.RoleGateway {
				files["secrets.yaml"] = renderResources(t, out.Secrets)
			}
			for name, got := range files {
				compareGolden(t, filepath.Join(dir, name), got)
			}
		})
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./translator -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// renderResources prints Envoy resources as YAML with Envoy's snake_case field names, the
// way Envoy's docs and config_dump show them.
func renderResources[M proto.Message](t *testing.T, msgs []M) []byte {
	t.Helper()
	list := []json.RawMessage{}
	for _, m := range msgs {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, b)
	}
	js, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(js)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

func renderYAML(t *testing.T, v any) []byte {
	t.Helper()
	y, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return y
}
