package translator

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	networking "istio.io/api/networking/v1"
)

func TestHeaderOperations(t *testing.T) {
	in := &networking.Headers{}
	parseSpec(t, `
request:
  set: {x-b: "2", x-a: "1", Host: example.internal}
  add: {x-a: "3", ":path": /x}
  remove: [x-gone, x-gone, host]
response:
  set: {"x bad": "1", x-ok: "v\nw"}
  remove: [server]`, in)
	got, ds := headerOperations(testSource, "spec.http[0].headers", in)
	set, add := 2, 0 // corev3 OVERWRITE_IF_EXISTS_OR_ADD, APPEND_IF_EXISTS_OR_ADD
	var req []string
	for _, o := range got.requestAdd {
		req = append(req, fmt.Sprintf("%s=%s/%d", o.Header.Key, o.Header.Value, o.AppendAction))
	}
	// Sorted names, set before add; host is no header to add but the new authority.
	if diff := cmp.Diff([]string{fmt.Sprintf("x-a=1/%d", set), fmt.Sprintf("x-b=2/%d", set), fmt.Sprintf("x-a=3/%d", add)}, req); diff != "" {
		t.Errorf("request headers to add (-want +got):\n%s", diff)
	}
	if got.authority != "example.internal" {
		t.Errorf("authority = %q, want example.internal", got.authority)
	}
	if diff := cmp.Diff([]string{"x-gone"}, got.requestRemove); diff != "" {
		t.Errorf("request headers to remove (-want +got):\n%s", diff)
	}
	if len(got.responseAdd) != 0 || len(got.responseRemove) != 1 {
		t.Errorf("response changes: add %v, remove %v; want none added (both refused), server removed", got.responseAdd, got.responseRemove)
	}
	want := []string{
		"warning spec.http[0].headers.request.add[:path]",
		"warning spec.http[0].headers.request.remove[2]",
		"error spec.http[0].headers.response.set[x bad]",
		"error spec.http[0].headers.response.set[x-ok]",
	}
	if diff := cmp.Diff(want, problems(ds)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}
