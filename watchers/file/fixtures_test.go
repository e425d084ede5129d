package file

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/weir-mesh/weir/model"
)

// writeTree writes files (slash-separated path relative to dir → content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// loadTree loads a fresh directory holding files.
func loadTree(t *testing.T, files map[string]string) *model.Snapshot {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, files)
	snap, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return snap
}

// where is what a diagnostic points at, without its wording.
type where struct {
	Severity model.Severity
	Ref      string // model.Ref.String(): kind, namespace/name, (file)
	Field    string
}

func wheres(ds []model.Diagnostic) []where {
	out := []where{}
	for _, d := range ds {
		out = append(out, where{Severity: d.Severity, Ref: d.Source.String(), Field: d.Field})
	}
	return out
}

func errorsOnly(ds []model.Diagnostic) []model.Diagnostic {
	var out []model.Diagnostic
	for _, d := range ds {
		if d.Severity == model.SeverityError {
			out = append(out, d)
		}
	}
	return out
}

// hostnames, refs and epLines project a snapshot onto what a test compares.
func hostnames(s *model.Snapshot) []string {
	out := []string{}
	for _, svc := range s.Services {
		out = append(out, svc.Hostname)
	}
	return out
}

func vsRefs(s *model.Snapshot) []string {
	out := []string{}
	for _, vs := range s.VirtualServices {
		out = append(out, vs.Source.String())
	}
	return out
}

func drRefs(s *model.Snapshot) []string {
	out := []string{}
	for _, dr := range s.DestinationRules {
		out = append(out, dr.Source.String())
	}
	return out
}

// epLine renders an endpoint on one line, so that a table of them reads like a listing.
func epLine(e *model.Endpoint) string {
	keys := make([]string, 0, len(e.Labels))
	for k, v := range e.Labels {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	s := fmt.Sprintf("%s:%d -> %s:%d", e.Hostname, e.ServicePort, e.Address, e.Port)
	if !e.Ready {
		s += " not-ready"
	}
	if e.Weight != 0 {
		s += fmt.Sprintf(" weight=%d", e.Weight)
	}
	if e.Locality != (model.Locality{}) {
		s += fmt.Sprintf(" at=%s/%s/%s", e.Locality.Region, e.Locality.Zone, e.Locality.SubZone)
	}
	if len(keys) > 0 {
		s += " {" + strings.Join(keys, ",") + "}"
	}
	return s + " from " + e.Source.Kind + " " + e.Source.Name
}

func epLines(s *model.Snapshot) []string {
	out := []string{}
	for _, e := range s.Endpoints {
		out = append(out, epLine(e))
	}
	return out
}

// Small objects that tests combine.
func serviceYAML(name, ns string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: %s
spec:
  selector:
    app: %s
  ports:
  - name: http
    port: 80
`, name, ns, name)
}

func vsYAML(name, host, weight string) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: %s
spec:
  hosts: [%s]
  http:
  - route:
    - destination: {host: %s, subset: v1}
      weight: %s
`, name, host, host, weight)
}
