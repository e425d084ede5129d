package crd

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestRepositoryRolloutsFitTheSchema checks every Rollout the repository writes — the
// example, the README's, and the templates of the e2e tests — against the CRD's schema
// (and weir's own reading),
// so that what the docs show and the tests run would also pass `kubectl apply`. (The CEL
// rules are left to the API server; testdata/rollouts.yaml covers them case by case.)
func TestRepositoryRolloutsFitTheSchema(t *testing.T) {
	c := rolloutCRD(t)
	found := map[string][]byte{}
	b, err := os.ReadFile("../../examples/rollout/rollout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	found["examples/rollout/rollout.yaml"] = b
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(readme, -1) {
		if strings.Contains(string(block[1]), "kind: Rollout") {
			found[fmt.Sprintf("README.md yaml block %d", i)] = block[1]
		}
	}
	for name, doc := range e2eRollouts(t) {
		found[name] = doc
	}
	if len(found) < 5 {
		t.Fatalf("found only %d rollouts to check: has the README or e2e moved?", len(found))
	}
	for name, doc := range found {
		t.Run(name, func(t *testing.T) {
			if errs := crdErrors(t, c, doc); len(errs) > 0 {
				t.Errorf("the CRD's schema rejects it: %q\n%s", errs, doc)
			}
			// weir reads it too, so a template filled wrongly does not pass unnoticed.
			if errs := weirErrors(doc); len(errs) > 0 {
				t.Errorf("weir rejects it: %q\n%s", errs, doc)
			}
		})
	}
}

// e2eFills stand in for the format verbs of the e2e tests' Rollout templates, by the
// YAML key the verb is the value of. A verb after a key not listed fails the test: add
// a realistic value here.
var e2eFills = map[string]string{
	"canary":      "v2",
	"interval":    "3s",
	"threshold":   "2",
	"minRequests": "20",
	"name":        "canary-5xx",
	"address":     `"http://127.0.0.1:9090"`,
	"url":         `"http://127.0.0.1:8089/"`,
	"stepWeights": "[20, 50]",
}

var (
	verbAfterKey = regexp.MustCompile(`([A-Za-z]+): (\[?)%(\[\d+\])?[sdq](\]?)`)
	verbOnItsOwn = regexp.MustCompile(`(?m)^%(\[\d+\])?s$`)
	verbAnywhere = regexp.MustCompile(`%(\[\d+\])?[sdqv]`)
)

// e2eRollouts renders the Rollout templates written in e2e/*_test.go: each string
// literal holding "kind: Rollout", its verbs filled from e2eFills. A template whose
// strategy is a verb is rendered once per strategy literal the e2e tests pass
// ("{blueGreen: {...}}"), so the strategies they run are checked too.
func e2eRollouts(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("../../e2e/*_test.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no e2e tests found: %v", err)
	}
	var templates []string
	var strategies []string
	fset := token.NewFileSet()
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if strings.Contains(s, "kind: Rollout") {
				templates = append(templates, fset.Position(lit.Pos()).String()+"\x00"+s)
			}
			var m map[string]any
			if strings.HasPrefix(s, "{") && yaml.Unmarshal([]byte(s), &m) == nil && len(m) == 1 &&
				(m["canary"] != nil || m["blueGreen"] != nil || m["abTesting"] != nil) {
				strategies = append(strategies, s)
			}
			return true
		})
	}
	out := map[string][]byte{}
	for _, tmpl := range templates {
		pos, src, _ := strings.Cut(tmpl, "\x00")
		name := "e2e " + filepath.Base(pos)
		variants := []string{src}
		if strings.Contains(src, "strategy: %") {
			variants = nil
			for _, s := range strategies {
				variants = append(variants, regexp.MustCompile(`strategy: %(\[\d+\])?s`).ReplaceAllLiteralString(src, "strategy: "+s))
			}
		}
		for i, v := range variants {
			doc := fill(t, name, v)
			out[fmt.Sprintf("%s #%d", name, i)] = []byte(doc)
		}
	}
	return out
}

func fill(t *testing.T, name, src string) string {
	src = verbAfterKey.ReplaceAllStringFunc(src, func(m string) string {
		sub := verbAfterKey.FindStringSubmatch(m)
		value, ok := e2eFills[sub[1]]
		if !ok {
			t.Errorf("%s: no fill for the verb after %q: add one to e2eFills", name, sub[1])
		}
		if sub[2] == "[" && sub[4] == "]" {
			value = strings.TrimSuffix(strings.TrimPrefix(value, "["), "]")
		}
		return sub[1] + ": " + sub[2] + value + sub[4]
	})
	src = verbOnItsOwn.ReplaceAllString(src, "") // an optional tail of fields
	// What is left sits inside a value (a port in a PromQL query): any number will do.
	src = verbAnywhere.ReplaceAllString(src, "9080")
	if slices.Contains([]string{"", "\n"}, strings.TrimSpace(src)) {
		t.Errorf("%s: empty after filling", name)
	}
	return src
}
