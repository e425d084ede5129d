package rollout

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

func TestFileStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	f := FileStore{Path: filepath.Join(dir, "state.json")}
	got, err := f.Load()
	if err != nil || len(got) != 0 {
		t.Fatalf("missing file: %v, %v; want empty and no error", got, err)
	}
	want := map[string]State{"default/reviews": {Phase: v1alpha1.PhaseProgressing, Stable: "v1", Canary: "v2", Step: 2,
		CanaryWeight: 30, Applied: true, StepStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if err := f.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err = f.Load()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestFileStoreRefusesACorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (FileStore{Path: path}).Load(); err == nil {
		t.Error("a corrupt state file loaded without error: weir would reset weights proxies are serving")
	}
}
