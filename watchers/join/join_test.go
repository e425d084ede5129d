package join

import (
	"reflect"
	"testing"

	"github.com/weir-mesh/weir/model"
)

// Nothing is published until every source has published; then each publish of any
// source publishes both sources' latest, merged.
func TestSourcesWaitForEveryFirstSnapshot(t *testing.T) {
	var got []*model.Snapshot
	pub := Sources(2, func(s *model.Snapshot) { got = append(got, s) })
	files := &model.Snapshot{Services: []*model.Service{{Hostname: "a"}}}
	cluster := &model.Snapshot{Services: []*model.Service{{Hostname: "b"}}, VirtualServices: []*model.VirtualService{{}}}
	pub[0](files)
	if len(got) != 0 {
		t.Fatalf("published before the cluster's first snapshot: %v", got)
	}
	pub[1](cluster)
	pub[0](&model.Snapshot{})
	if len(got) != 2 {
		t.Fatalf("got %d snapshots, want 2", len(got))
	}
	if s := got[0]; len(s.Services) != 2 || s.Services[0].Hostname != "a" || s.Services[1].Hostname != "b" || len(s.VirtualServices) != 1 {
		t.Errorf("first merged snapshot: %+v", s)
	}
	if s := got[1]; len(s.Services) != 1 || s.Services[0].Hostname != "b" {
		t.Errorf("after the file source emptied: %+v", s)
	}
}

// Merge keeps every list of a snapshot: a list added to model.Snapshot later fails this
// until Merge carries it.
func TestMergeKeepsEveryList(t *testing.T) {
	one := &model.Snapshot{}
	v := reflect.ValueOf(one).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.Slice {
			continue
		}
		f.Set(reflect.MakeSlice(f.Type(), 1, 1))
	}
	merged := reflect.ValueOf(Merge(one, one)).Elem()
	for i := range merged.NumField() {
		if f := merged.Field(i); f.Kind() == reflect.Slice && f.Len() != 2 {
			t.Errorf("Merge dropped Snapshot.%s: %d entries, want 2", merged.Type().Field(i).Name, f.Len())
		}
	}
}
