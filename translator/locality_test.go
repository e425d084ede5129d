package translator

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	networking "istio.io/api/networking/v1"

	"github.com/weir-mesh/weir/model"
)

func loc(region, zone, subZone string) model.Locality {
	return model.Locality{Region: region, Zone: zone, SubZone: subZone}
}

func TestLocalityMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		l       model.Locality
		want    bool
	}{
		{"*", loc("", "", ""), true},
		{"*", loc("us-west", "z1", "r1"), true},
		{"us-west", loc("us-west", "z1", "r1"), true},
		{"us-west/*", loc("us-west", "z1", ""), true},
		{"us-west/z1", loc("us-west", "z1", "r9"), true},
		{"us-west/z1/*", loc("us-west", "z1", "r9"), true},
		{"us-west/z1/r1", loc("us-west", "z1", "r1"), true},
		{"us-west/z1/r1", loc("us-west", "z1", "r2"), false},
		{"us-west/z1", loc("us-west", "z2", ""), false},
		{"us-west", loc("us-east", "z1", ""), false},
		{"us-west", loc("", "", ""), false},
	} {
		if got := localityMatch(tc.l, tc.pattern); got != tc.want {
			t.Errorf("localityMatch(%+v, %q) = %v, want %v", tc.l, tc.pattern, got, tc.want)
		}
	}
}

func TestLocalityPriority(t *testing.T) {
	proxy := loc("a", "z1", "r1")
	failover := []*networking.LocalityLoadBalancerSetting_Failover{{From: "b", To: "x"}, {From: "a", To: "c"}, {From: "a", To: "d"}}
	for _, tc := range []struct {
		name     string
		ep       model.Locality
		failover []*networking.LocalityLoadBalancerSetting_Failover
		want     uint32
	}{
		{"same sub-zone", loc("a", "z1", "r1"), nil, 0},
		{"same zone", loc("a", "z1", "r2"), nil, 1},
		{"same region", loc("a", "z2", "r1"), nil, 2},
		{"other region, no failover rule", loc("b", "z1", ""), nil, 3},
		{"failover target (the first rule from the proxy's region)", loc("c", "z1", ""), failover, 3},
		{"other region than the target", loc("d", "z1", ""), failover, 4},
		{"no locality", loc("", "", ""), failover, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := localityPriority(proxy, tc.ep, tc.failover); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestLabelPriority(t *testing.T) {
	proxy := loc("a", "z1", "")
	proxyLabels := map[string]string{"tier": "gold", "net": "n1"}
	order := []string{"net", "tier", labelZone}
	for _, tc := range []struct {
		name   string
		order  []string
		labels map[string]string
		ep     model.Locality
		want   uint32
	}{
		{"all match", order, map[string]string{"tier": "gold", "net": "n1"}, loc("a", "z1", ""), 0},
		{"zone differs", order, map[string]string{"tier": "gold", "net": "n1"}, loc("a", "z2", ""), 1},
		{"tier differs: zone no longer counts", order, map[string]string{"tier": "silver", "net": "n1"}, loc("a", "z1", ""), 2},
		{"first label differs", order, map[string]string{"tier": "gold", "net": "n2"}, loc("a", "z1", ""), 3},
		{"key=value compares with the value", []string{"tier=silver"}, map[string]string{"tier": "silver"}, loc("", "", ""), 0},
		{"key=value, not matched", []string{"tier=silver"}, map[string]string{"tier": "gold"}, loc("", "", ""), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &model.Endpoint{Locality: tc.ep, Labels: tc.labels}
			if got := labelPriority(tc.order, proxy, proxyLabels, e); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestDistributeWeights(t *testing.T) {
	ep := func(l model.Locality, weight uint32) *model.Endpoint {
		return &model.Endpoint{Locality: l, Weight: weight}
	}
	rules := func(from string, to map[string]uint32) []*networking.LocalityLoadBalancerSetting_Distribute {
		return []*networking.LocalityLoadBalancerSetting_Distribute{{From: "nowhere", To: map[string]uint32{"*": 100}}, {From: from, To: to}}
	}
	z1, z2, z3, b1 := loc("a", "z1", ""), loc("a", "z2", ""), loc("a", "z3", ""), loc("b", "z1", "")
	for _, tc := range []struct {
		name  string
		rules []*networking.LocalityLoadBalancerSetting_Distribute
		eps   []*model.Endpoint
		want  map[model.Locality]uint32
	}{
		{"one locality per pattern: the weights as written",
			rules("a/z1", map[string]uint32{"a/z1": 80, "a/z2": 20}),
			[]*model.Endpoint{ep(z1, 0), ep(z2, 0), ep(z2, 0), ep(b1, 0)},
			map[model.Locality]uint32{z1: 80, z2: 20}},
		{"a pattern's weight is shared by endpoint weight",
			rules("*", map[string]uint32{"a/*": 90, "b": 10}),
			[]*model.Endpoint{ep(z1, 1), ep(z2, 2), ep(b1, 0)},
			map[model.Locality]uint32{z1: 30, z2: 60, b1: 10}},
		{"the most specific pattern wins",
			rules("*", map[string]uint32{"a/*": 50, "a/z1": 50}),
			[]*model.Endpoint{ep(z1, 0), ep(z2, 0), ep(z3, 0)},
			map[model.Locality]uint32{z1: 50, z2: 25, z3: 25}},
		{"no entry for the proxy: no locality weights",
			rules("c", map[string]uint32{"a": 100}),
			[]*model.Endpoint{ep(z1, 0)},
			nil},
		{"no endpoint where traffic goes: an empty plan",
			rules("a", map[string]uint32{"c": 100}),
			[]*model.Endpoint{ep(z1, 0)},
			map[model.Locality]uint32{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := distributeWeights(z1, tc.rules, tc.eps)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("weights (-want +got):\n%s", diff)
			}
		})
	}
}
