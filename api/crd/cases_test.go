package crd

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/weir-mesh/weir/model"
	"github.com/weir-mesh/weir/watchers/file"
)

// docs splits multi-document YAML, dropping documents that are only comments.
func docs(b []byte) [][]byte {
	var out [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(b), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(d, "")) != "" {
			out = append(out, []byte(d))
		}
	}
	return out
}

// crdErrors checks a Rollout document against the CRD's schema (not its CEL rules).
func crdErrors(t *testing.T, c *CRD, doc []byte) []string {
	t.Helper()
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("not YAML: %v\n%s", err, doc)
	}
	var v any
	if err := json.Unmarshal(j, &v); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, err := range Validate(c.Spec.Versions[0].Schema.OpenAPIV3Schema, v) {
		out = append(out, err.Error())
	}
	return out
}

// weirErrors are the errors weir reports when it reads the document, the way its
// Kubernetes source does (file.Objects: a strict, case-sensitive decode, then
// model.ValidateRollout).
func weirErrors(doc []byte) []string {
	objs := file.NewObjects()
	objs.Set("rollout", doc)
	snap := objs.Snapshot()
	var out []string
	for _, d := range snap.Diagnostics {
		if d.Severity == model.SeverityError {
			out = append(out, d.Field+": "+d.Message)
		}
	}
	if len(out) == 0 && len(snap.Rollouts) != 1 {
		out = append(out, "no rollout read, and no error")
	}
	return out
}

func mentions(errs []string, s string) bool {
	return slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, s) })
}

// TestRolloutCases runs testdata/rollouts.yaml: each case says whether the CRD and weir
// accept it, and why not. weir's own validation is the reference: the CRD may reject at
// apply time only what weir rejects (crd-only cases name the deliberate exceptions), and
// a rule-rejected case must pass the schema, so that the named CEL rule alone decides it
// when the API server runs the file.
func TestRolloutCases(t *testing.T) {
	c := rolloutCRD(t)
	messages := map[string]bool{}
	for _, rules := range Rules(c.Spec.Versions[0].Schema.OpenAPIV3Schema) {
		for _, r := range rules {
			messages[r.Message] = true
		}
	}
	b, err := os.ReadFile("testdata/rollouts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	exercised := map[string]bool{}
	for _, doc := range docs(b) {
		var meta struct {
			Metadata struct {
				Name        string
				Annotations map[string]string
			}
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		expect, because := meta.Metadata.Annotations["test.weir.dev/expect"], meta.Metadata.Annotations["test.weir.dev/because"]
		t.Run(meta.Metadata.Name, func(t *testing.T) {
			crdErrs, weirErrs := crdErrors(t, c, doc), weirErrors(doc)
			switch expect {
			case "accept":
				if len(crdErrs)+len(weirErrs) > 0 {
					t.Errorf("want accepted; schema: %q; weir: %q", crdErrs, weirErrs)
				}
			case "reject":
				if len(weirErrs) == 0 {
					t.Errorf("weir accepts it: the CRD must not reject what weir reads")
				}
				if messages[because] {
					exercised[because] = true
					if len(crdErrs) > 0 {
						t.Errorf("the schema rejects it already (%q): the rule %q would not be what decides", crdErrs, because)
					}
				} else if !mentions(crdErrs, because) {
					t.Errorf("want a schema error about %q and no CEL rule says that; schema: %q", because, crdErrs)
				}
			case "weir-only":
				if len(crdErrs) > 0 || messages[because] {
					t.Errorf("the CRD catches it (schema %q): make it a reject case", crdErrs)
				}
				if !mentions(weirErrs, because) {
					t.Errorf("want weir to say %q; it says %q", because, weirErrs)
				}
			case "crd-only":
				if len(weirErrs) > 0 {
					t.Errorf("weir rejects it too (%q): make it a reject case", weirErrs)
				}
				if !mentions(crdErrs, because) {
					t.Errorf("want a schema error about %q; schema: %q", because, crdErrs)
				}
			default:
				t.Fatalf("test.weir.dev/expect is %q; want accept, reject, weir-only or crd-only", expect)
			}
		})
	}
	for msg := range messages {
		if !exercised[msg] {
			t.Errorf("no reject case fires the CEL rule %q: add one to testdata/rollouts.yaml", msg)
		}
	}
}

// TestDurationPattern holds the schema's duration pattern to what weir reads: the pattern
// accepts exactly the unsigned strings time.ParseDuration reads (but "0"), and the
// positivity rule's test (a digit 1-9) says whether the duration is above zero.
func TestDurationPattern(t *testing.T) {
	pattern := regexp.MustCompile(DurationPattern)
	positive := regexp.MustCompile(`[1-9]`)
	for _, s := range []string{
		"1s", "30s", "1m", "1h30m", "1.5h", "500ms", "1us", "1µs", "1μs", "1ns", ".5s", "1.s", "01m", "0s",
		"0m0s", "0.0s", "2h45m30.5s", "0", "1", "60", "-1s", "+1s", "1d", "1 s", " 1s", "1S", "1h 30m",
		"", "s", ".s", "1.5.5s", "1e3s", "1m-1s", "∞s",
	} {
		d, err := time.ParseDuration(s)
		wantMatch := err == nil && s != "0" && !strings.HasPrefix(s, "-") && !strings.HasPrefix(s, "+")
		if got := pattern.MatchString(s); got != wantMatch {
			t.Errorf("%q: pattern matches %v, want %v (time.ParseDuration: %v, %v)", s, got, wantMatch, d, err)
			continue
		}
		if wantMatch && positive.MatchString(s) != (d > 0) {
			t.Errorf("%q: the positivity rule says %v, but it is %v", s, positive.MatchString(s), d)
		}
	}
}
