package scenario

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weir-mesh/weir/model"
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

func loadClean(t *testing.T, dir string) *model.Snapshot {
	t.Helper()
	snap, err := file.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Diagnostics) > 0 {
		t.Fatalf("mesh has diagnostics: %v", snap.Diagnostics)
	}
	return snap
}

// weightsOf returns the weights of the weighted route of service i's VirtualService.
func weightsOf(t *testing.T, snap *model.Snapshot, i int) []int {
	t.Helper()
	for _, vs := range snap.VirtualServices {
		if vs.Source.Name != Name(i) {
			continue
		}
		var ws []int
		for _, d := range vs.Spec.GetHttp()[1].GetRoute() {
			ws = append(ws, int(d.GetWeight()))
		}
		return ws
	}
	t.Fatalf("no VirtualService %s", Name(i))
	return nil
}

// sameExceptEndpoints fails unless services, VirtualServices and DestinationRules of a
// and b are equal.
func sameExceptEndpoints(t *testing.T, a, b *model.Snapshot) {
	t.Helper()
	if !reflect.DeepEqual(a.Services, b.Services) {
		t.Error("services changed")
	}
	if len(a.VirtualServices) != len(b.VirtualServices) || len(a.DestinationRules) != len(b.DestinationRules) {
		t.Fatal("traffic objects added or removed")
	}
	for i := range a.VirtualServices {
		if a.VirtualServices[i].Source != b.VirtualServices[i].Source || !proto.Equal(a.VirtualServices[i].Spec, b.VirtualServices[i].Spec) {
			t.Errorf("VirtualService %s changed", a.VirtualServices[i].Source)
		}
	}
	for i := range a.DestinationRules {
		if a.DestinationRules[i].Source != b.DestinationRules[i].Source || !proto.Equal(a.DestinationRules[i].Spec, b.DestinationRules[i].Spec) {
			t.Errorf("DestinationRule %s changed", a.DestinationRules[i].Source)
		}
	}
}

// endpointsWithoutAddress renders each endpoint with its address blanked, sorted: equal
// lists mean only addresses differ.
func endpointsWithoutAddress(snap *model.Snapshot) []string {
	var out []string
	for _, e := range snap.Endpoints {
		c := *e
		c.Address = ""
		out = append(out, fmt.Sprintf("%+v", c))
	}
	sort.Strings(out)
	return out
}

func addresses(snap *model.Snapshot) map[string]bool {
	out := map[string]bool{}
	for _, e := range snap.Endpoints {
		out[e.Address] = true
	}
	return out
}

func TestSetWeightsChangesOnlyThatService(t *testing.T) {
	dir := t.TempDir()
	s := Spec{Services: 150, Subsets: 3, Endpoints: 2}
	if _, err := Write(dir, s); err != nil {
		t.Fatal(err)
	}
	before := loadClean(t, dir)
	first, err := os.ReadFile(File(dir, s, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := SetWeights(dir, s, 120, []int{50, 30, 20}); err != nil {
		t.Fatal(err)
	}
	if err := SetWeights(dir, s, 121, []int{0, 0, 100}); err != nil {
		t.Fatal(err)
	}
	after := loadClean(t, dir)
	if got := weightsOf(t, after, 120); !slices.Equal(got, []int{50, 30, 20}) {
		t.Errorf("weights of service 120 = %v, want [50 30 20]", got)
	}
	if got := weightsOf(t, after, 121); !slices.Equal(got, []int{0, 0, 100}) {
		t.Errorf("weights of service 121 = %v, want [0 0 100]", got)
	}
	if got := weightsOf(t, after, 122); !slices.Equal(got, []int{34, 33, 33}) {
		t.Errorf("weights of service 122 = %v, want the initial [34 33 33]", got)
	}
	if !reflect.DeepEqual(before.Services, after.Services) || !reflect.DeepEqual(before.Endpoints, after.Endpoints) {
		t.Error("services or endpoints changed")
	}
	if now, _ := os.ReadFile(File(dir, s, 0)); string(now) != string(first) {
		t.Error("the file of services 0-99 changed")
	}
	// Only the six weight lines differ from what Write gives.
	fresh := t.TempDir()
	if _, err := Write(fresh, s); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(File(fresh, s, 120))
	b, _ := os.ReadFile(File(dir, s, 120))
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	if len(al) != len(bl) {
		t.Fatalf("lines = %d, want %d", len(bl), len(al))
	}
	diff := 0
	for i := range al {
		if al[i] != bl[i] {
			diff++
		}
	}
	if diff != 6 {
		t.Errorf("%d lines differ from Write's, want 6", diff)
	}
	assertNoTempFiles(t, dir)

	for _, bad := range [][]int{{50, 50}, {50, 30, 30}, {-10, 60, 50}} {
		if err := SetWeights(dir, s, 1, bad); err == nil {
			t.Errorf("weights %v were accepted", bad)
		}
	}
	if err := SetWeights(dir, s, 150, []int{50, 30, 20}); err == nil {
		t.Error("service 150 of 150 was accepted")
	}
}

func TestShiftEndpointChangesOnlyEndpointAddresses(t *testing.T) {
	dir := t.TempDir()
	s := Spec{Services: 150, Subsets: 2, Endpoints: 3}
	if _, err := Write(dir, s); err != nil {
		t.Fatal(err)
	}
	prev := loadClean(t, dir)
	for seq, svc := range []int{120, 120, 7, 120, 149} {
		if err := ShiftEndpoint(dir, s, svc, seq); err != nil {
			t.Fatal(err)
		}
		next := loadClean(t, dir)
		sameExceptEndpoints(t, prev, next)
		if !slices.Equal(endpointsWithoutAddress(prev), endpointsWithoutAddress(next)) {
			t.Fatalf("shift %d of service %d changed endpoints beyond an address", seq, svc)
		}
		pa, na := addresses(prev), addresses(next)
		var gone, added []string
		for a := range pa {
			if !na[a] {
				gone = append(gone, a)
			}
		}
		for a := range na {
			if !pa[a] {
				added = append(added, a)
			}
		}
		if len(gone) != 1 || len(added) != 1 || !strings.HasPrefix(added[0], "11.") {
			t.Fatalf("shift %d of service %d: addresses gone %v, added %v; want one each, the new in 11/8", seq, svc, gone, added)
		}
		for _, e := range next.Endpoints {
			if e.Address == added[0] && e.Hostname != Name(svc)+".default.svc.cluster.local" {
				t.Errorf("the new address belongs to %s, not service %d", e.Hostname, svc)
			}
		}
		prev = next
	}
	assertNoTempFiles(t, dir)
	if err := ShiftEndpoint(dir, s, -1, 0); err == nil {
		t.Error("service -1 was accepted")
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "mesh-") || !strings.HasSuffix(e.Name(), ".yaml") {
			t.Errorf("stray file %s", e.Name())
		}
	}
}
