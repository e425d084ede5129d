package file

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSplitDocuments(t *testing.T) {
	type doc struct {
		Index, Line int
		Data        string
	}
	tests := []struct {
		name string
		in   string
		want []doc
	}{
		{"one", "a: 1\n", []doc{{1, 1, "a: 1\n"}}},
		{"leading separator", "---\na: 1\n", []doc{{2, 2, "a: 1\n"}}},
		{"several", "a: 1\n---\nb: 2\n--- # next\nc: 3", []doc{{1, 1, "a: 1\n"}, {2, 3, "b: 2\n"}, {3, 5, "c: 3"}}},
		{"comment-only documents dropped", "# x\n---\n\n---\na: 1\n...\n", []doc{{3, 5, "a: 1\n...\n"}}},
		{"CRLF and BOM", "\xef\xbb\xbfa: 1\r\n---\r\nb: 2\r\n", []doc{{1, 1, "a: 1\r\n"}, {2, 3, "b: 2\r\n"}}},
		{"separator-like content is kept", "a: |\n  ---x\n----\n", []doc{{1, 1, "a: |\n  ---x\n----\n"}}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []doc
			for _, d := range splitDocuments([]byte(tt.in)) {
				got = append(got, doc{d.index, d.line, string(d.data)})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("documents (-want +got):\n%s", diff)
			}
		})
	}
}

// A YAML error names the line of the file the editor shows, whichever part of the YAML
// parser found it.
func TestYAMLErrorLines(t *testing.T) {
	lead := "# a file\n\n---\n" // the broken document starts at line 4
	tests := []struct {
		name, doc, want string
	}{
		{"scanner error", "x: 1\ny: z: 1\n", "does not parse as YAML: line 5: mapping values are not allowed in this context"},
		{"parser error", "x: 1\ny: {name: [}\n", "does not parse as YAML: line 5: did not find expected node content"},
		{"bad indentation", "x:\n  y: 1\n   z: 2\n", "does not parse as YAML: line 6: mapping values are not allowed in this context"},
		{"duplicate key", "x: 1\nx: 2\n", "does not parse as YAML: unmarshal errors: line 5: key \"x\" already set in map"},
		{"first line", "x: y: 1\n", "does not parse as YAML (document starting at line 4): mapping values are not allowed in this context"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := parseFile("x.yaml", []byte(lead+tt.doc))
			if len(res.unreadable) != 1 {
				t.Fatalf("got %d unreadable documents, want 1", len(res.unreadable))
			}
			if got := res.unreadable[0].Message; got != tt.want {
				t.Errorf("message\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	known := []string{"spec", "metadata", "weight", "selector", "status"}
	tests := map[string]string{"spce": "spec", "wieght": "weight", "selctor": "selector", "Spec": "spec", "banana": "", "x": ""}
	for in, want := range tests {
		if got := closest(in, known); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParse feeds arbitrary bytes through everything a file's content goes through:
// parsing, assembling and building a snapshot. It must never panic.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/seeds", "testdata/seed-fragments"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	for _, s := range []string{
		reviewsService + "---\n" + reviewsSlice + "---\n" + reviewsPod,
		"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: a}, spec: {ports: [{port: 80, targetPort: x}]}}\n",
		"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a}\nspec: {hosts: [a], ports: [{number: 1}], workloadSelector: {labels: {a: b}}}\n---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w}\nspec: {address: x, labels: {a: b}}\n",
		"a: &a [*a, *a]\n", "- - - -\n", "{", "--- !!binary\n", strings.Repeat("[", 1000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res := parseFile("fuzz.yaml", data)
		var mem memory
		objs, _ := mem.assemble([]readFile{{rel: "fuzz.yaml", res: res}, {rel: "fuzz2.yaml", res: res}})
		_ = build(objs)
	})
}

// Istio reads durations written the Go way ("200ms", "1m"), as its own docs write them;
// they reach the spec as the same durations.
func TestGoDurationsInIstioObjects(t *testing.T) {
	snap := loadTree(t, map[string]string{"x.yaml": `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: reviews
  trafficPolicy:
    outlierDetection: {interval: 1m, baseEjectionTime: 1h2m3.5s}
    connectionPool: {tcp: {connectTimeout: 250ms}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v}
spec:
  hosts: [reviews]
  http:
  - timeout: 1.5s
    retries: {attempts: 2, perTryTimeout: 200ms}
    route: [{destination: {host: reviews}}]
`})
	if len(snap.DestinationRules) != 1 || len(snap.VirtualServices) != 1 {
		t.Fatalf("objects not loaded: %v", snap.Diagnostics)
	}
	tp := snap.DestinationRules[0].Spec.TrafficPolicy
	hr := snap.VirtualServices[0].Spec.Http[0]
	got := []time.Duration{tp.OutlierDetection.Interval.AsDuration(), tp.OutlierDetection.BaseEjectionTime.AsDuration(),
		tp.ConnectionPool.Tcp.ConnectTimeout.AsDuration(), hr.Timeout.AsDuration(), hr.Retries.PerTryTimeout.AsDuration()}
	want := []time.Duration{time.Minute, time.Hour + 2*time.Minute + 3500*time.Millisecond, 250 * time.Millisecond,
		1500 * time.Millisecond, 200 * time.Millisecond}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("durations (-want +got):\n%s", diff)
	}
}
