package scenario

import (
	"testing"

	"github.com/weir-mesh/weir/watchers/file"
)

func TestWriteLoadsCleanly(t *testing.T) {
	dir := t.TempDir()
	files, err := Write(dir, Spec{Services: 150, Subsets: 3, Endpoints: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Errorf("files = %d, want 2 (100 services each)", len(files))
	}
	snap, err := file.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Diagnostics) > 0 {
		t.Fatalf("generated mesh has diagnostics: %v", snap.Diagnostics)
	}
	if got := [4]int{len(snap.Services), len(snap.Endpoints), len(snap.VirtualServices), len(snap.DestinationRules)}; got != [4]int{150, 150 * 3 * 2, 150, 150} {
		t.Errorf("services, endpoints, VS, DR = %v, want [150 900 150 150]", got)
	}
	for _, e := range snap.Endpoints[:6] {
		if e.Labels["version"] == "" {
			t.Errorf("endpoint %s has no version label: %v", e.Address, e.Labels)
		}
	}
	if _, err := Write(dir, Spec{Services: 1}); err == nil {
		t.Error("a spec with no subsets was accepted")
	}
}
