package file

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-mesh/weir/model"
)

// step is one state of the directory, given as the files that change (content "" removes
// the file), and what the snapshot read after it must hold.
type step struct {
	files    map[string]string
	services []string // hostnames
	vsHosts  map[string]string
	errors   []where
	message  string // a substring of the first error's message
}

// runSteps reads a directory with one source after each step: the last-good rules depend
// on what the source saw before.
func runSteps(t *testing.T, steps []step) {
	t.Helper()
	dir := t.TempDir()
	src := newSource(dir)
	for i, st := range steps {
		for rel, content := range st.files {
			if content == "" {
				if err := os.Remove(filepath.Join(dir, rel)); err != nil {
					t.Fatal(err)
				}
				continue
			}
			writeTree(t, dir, map[string]string{rel: content})
		}
		snap, err := src.read()
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if diff := cmp.Diff(orEmpty(st.services), hostnames(snap)); diff != "" {
			t.Errorf("step %d: services (-want +got):\n%s", i, diff)
		}
		if diff := cmp.Diff(st.vsHosts, vsFirstHosts(snap), cmpEmptyMaps); diff != "" {
			t.Errorf("step %d: virtual services (-want +got):\n%s", i, diff)
		}
		errs := errorsOnly(snap.Diagnostics)
		if diff := cmp.Diff(orEmpty(st.errors), wheres(errs)); diff != "" {
			t.Errorf("step %d: errors (-want +got):\n%s\n%v", i, diff, errs)
		}
		if st.message != "" && (len(errs) == 0 || !strings.Contains(errs[0].Message, st.message)) {
			t.Errorf("step %d: first error does not say %q: %v", i, st.message, errs)
		}
	}
}

var cmpEmptyMaps = cmp.FilterValues(func(a, b map[string]string) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

// vsFirstHosts maps each VirtualService name to its first host: which version serves.
func vsFirstHosts(s *model.Snapshot) map[string]string {
	out := map[string]string{}
	for _, vs := range s.VirtualServices {
		out[vs.Source.Name] = vs.Spec.GetHosts()[0]
	}
	return out
}

func TestLastGood(t *testing.T) {
	good := vsYAML("a", "a-v1", "100") + "---\n" + serviceYAML("s", "default")
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "a file that stops parsing keeps its last good objects",
			steps: []step{
				{files: map[string]string{"x.yaml": good, "y.yaml": serviceYAML("why", "default")},
					services: []string{"s.default.svc.cluster.local", "why.default.svc.cluster.local"}, vsHosts: map[string]string{"a": "a-v1"}},
				{files: map[string]string{"x.yaml": vsYAML("a", "a-v2", "100") + "---\nkind: [\n", "y.yaml": serviceYAML("why2", "default")},
					services: []string{"s.default.svc.cluster.local", "why2.default.svc.cluster.local"}, vsHosts: map[string]string{"a": "a-v1"},
					errors:  []where{{model.SeverityError, "Document #2 (x.yaml)", ""}},
					message: "the file keeps its last good objects until this is fixed"},
				{files: map[string]string{"x.yaml": vsYAML("a", "a-v3", "100")},
					services: []string{"why2.default.svc.cluster.local"}, vsHosts: map[string]string{"a": "a-v3"}},
			},
		},
		{
			name: "an object whose identity cannot be read counts as a broken file",
			steps: []step{
				{files: map[string]string{"x.yaml": good},
					services: []string{"s.default.svc.cluster.local"}, vsHosts: map[string]string{"a": "a-v1"}},
				{files: map[string]string{"x.yaml": strings.Replace(good, "name: s\n", "", 1)},
					services: []string{"s.default.svc.cluster.local"}, vsHosts: map[string]string{"a": "a-v1"},
					errors:  []where{{model.SeverityError, "Service #2 (x.yaml)", "metadata.name"}},
					message: "keeps its last good objects"},
			},
		},
		{
			name: "an invalid object keeps its last good version; its neighbours update",
			steps: []step{
				{files: map[string]string{"x.yaml": good + "---\n" + vsYAML("b", "b-v1", "100")},
					services: []string{"s.default.svc.cluster.local"}, vsHosts: map[string]string{"a": "a-v1", "b": "b-v1"}},
				{files: map[string]string{"x.yaml": vsYAML("a", "a-v2", `"x"`) + "---\n" + vsYAML("b", "b-v2", "100")},
					vsHosts: map[string]string{"a": "a-v1", "b": "b-v2"},
					errors:  []where{{model.SeverityError, "VirtualService default/a (x.yaml)", "spec.http[0].route[0].weight"}},
					message: "; keeping the last good version"},
				{files: map[string]string{"x.yaml": vsYAML("a", "a-v3", "100")},
					vsHosts: map[string]string{"a": "a-v3"}},
			},
		},
		{
			name: "an object that was never good is not used",
			steps: []step{
				{files: map[string]string{"x.yaml": vsYAML("a", "a-v1", "100") + "  bogus: 1\n"},
					errors:  []where{{model.SeverityError, "VirtualService default/a (x.yaml)", "spec.bogus"}},
					message: "the object is not used"},
			},
		},
		{
			name: "a deleted object does not come back as its last good version",
			steps: []step{
				{files: map[string]string{"x.yaml": good}, services: []string{"s.default.svc.cluster.local"}, vsHosts: map[string]string{"a": "a-v1"}},
				{files: map[string]string{"x.yaml": serviceYAML("s", "default")}, services: []string{"s.default.svc.cluster.local"}},
				{files: map[string]string{"x.yaml": serviceYAML("s", "default") + "---\n" + vsYAML("a", "a-v2", `"x"`)},
					services: []string{"s.default.svc.cluster.local"},
					errors:   []where{{model.SeverityError, "VirtualService default/a (x.yaml)", "spec.http[0].route[0].weight"}},
					message:  "the object is not used"},
			},
		},
		{
			name: "a deleted file takes its objects with it",
			steps: []step{
				{files: map[string]string{"x.yaml": good, "sub/y.yaml": serviceYAML("why", "default")},
					services: []string{"s.default.svc.cluster.local", "why.default.svc.cluster.local"}, vsHosts: map[string]string{"a": "a-v1"}},
				{files: map[string]string{"x.yaml": ""}, services: []string{"why.default.svc.cluster.local"}},
			},
		},
		{
			name: "an object moved to another file while broken keeps its last good version",
			steps: []step{
				{files: map[string]string{"x.yaml": good}, services: []string{"s.default.svc.cluster.local"}, vsHosts: map[string]string{"a": "a-v1"}},
				{files: map[string]string{"x.yaml": serviceYAML("s", "default"), "z.yaml": vsYAML("a", "a-v2", `"x"`)},
					services: []string{"s.default.svc.cluster.local"}, vsHosts: map[string]string{"a": "a-v1"},
					errors:  []where{{model.SeverityError, "VirtualService default/a (z.yaml)", "spec.http[0].route[0].weight"}},
					message: "keeping the last good version (from x.yaml)"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, tt.steps) })
	}
}

// Unchanged bytes are not parsed again.
func TestSourceReusesParses(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"x.yaml": good1, "y.yaml": serviceYAML("why", "default")})
	src := newSource(dir)
	if _, err := src.read(); err != nil {
		t.Fatal(err)
	}
	before := src.cache["x.yaml"].res
	writeTree(t, dir, map[string]string{"y.yaml": serviceYAML("why2", "default")})
	if _, err := src.read(); err != nil {
		t.Fatal(err)
	}
	if src.cache["x.yaml"].res != before {
		t.Error("x.yaml was parsed again although its bytes did not change")
	}
}

var good1 = serviceYAML("x", "default")
