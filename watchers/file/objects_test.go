package file

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-mesh/weir/model"
)

// Objects applies the file source's rules to objects that come one at a time: a rejected
// update keeps the last good version, a deletion removes the object, and diagnostics name
// the object without a file.
func TestObjectsKeepLastGoodVersions(t *testing.T) {
	vs := func(weight string) []byte {
		return []byte(`{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
  "metadata": {"name": "reviews", "namespace": "default"},
  "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}, "weight": ` + weight + `}]}]}}`)
	}
	objs := NewObjects()
	objs.Set("Service/default/reviews", []byte(serviceYAML("reviews", "default")))
	objs.Set("VirtualService/default/reviews", vs("100"))
	snap := objs.Snapshot()
	if len(snap.Services) != 1 || len(snap.VirtualServices) != 1 || len(snap.Diagnostics) != 0 {
		t.Fatalf("first snapshot: %d services, %d virtual services, diagnostics %v", len(snap.Services), len(snap.VirtualServices), snap.Diagnostics)
	}

	objs.Set("VirtualService/default/reviews", vs("-5"))
	snap = objs.Snapshot()
	if len(snap.VirtualServices) != 1 || snap.VirtualServices[0].Spec.Http[0].Route[0].Weight != 100 {
		t.Fatalf("a rejected update must keep the last good version: %v", snap.VirtualServices)
	}
	want := []where{{model.SeverityError, "VirtualService default/reviews", "spec.http[0].route[0].weight"}}
	if diff := cmp.Diff(want, wheres(snap.Diagnostics)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	if !strings.Contains(snap.Diagnostics[0].Message, "keeping the last good version") {
		t.Errorf("message %q does not say the last good version is kept", snap.Diagnostics[0].Message)
	}

	objs.Delete("VirtualService/default/reviews")
	if snap = objs.Snapshot(); len(snap.VirtualServices) != 0 || len(snap.Services) != 1 {
		t.Errorf("after the delete: %d virtual services, %d services; want 0 and 1", len(snap.VirtualServices), len(snap.Services))
	}
}
