package envoystats

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseStatName(t *testing.T) {
	type parsed struct {
		Cluster string
		Kind    statKind
		OK      bool
	}
	for _, tt := range []struct {
		name string
		want parsed
	}{
		{"cluster.outbound|8080|canary|reviews.default.svc.cluster.local.upstream_rq_completed",
			parsed{"outbound|8080|canary|reviews.default.svc.cluster.local", statCompleted, true}},
		{"cluster.outbound|8080|canary|reviews.default.svc.cluster.local.upstream_rq_5xx",
			parsed{"outbound|8080|canary|reviews.default.svc.cluster.local", stat5xx, true}},
		{"cluster.outbound|8080|canary|reviews.default.svc.cluster.local.upstream_rq_time",
			parsed{"outbound|8080|canary|reviews.default.svc.cluster.local", statTime, true}},
		{"cluster.outbound|8080||reviews.default.svc.cluster.local.external.upstream_rq_5xx",
			parsed{"outbound|8080||reviews.default.svc.cluster.local.external", stat5xx, true}}, // dropSubScopes' job
		{"cluster.outbound|8080|canary|reviews.default.svc.cluster.local.upstream_rq_2xx", parsed{}},
		{"cluster.outbound|8080|canary|reviews.default.svc.cluster.local.upstream_rq_503", parsed{}},
		{"cluster.outbound|8080|canary|reviews.default.svc.cluster.local.upstream_rq_timeout", parsed{}},
		{"cluster.inbound|8080||.upstream_rq_5xx", parsed{}},
		{"cluster.weir-xds.upstream_rq_completed", parsed{}},
		{"http.outbound.downstream_rq_5xx", parsed{}},
		{"cluster.outbound|.upstream_rq_5xx", parsed{}},
		{"cluster.outbound|upstream_rq_5xx", parsed{}},
		{"", parsed{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, k, ok := parseStatName([]byte(tt.name))
			if diff := cmp.Diff(tt.want, parsed{string(c), k, ok}); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestIsSubScope(t *testing.T) {
	const c = "outbound|8080||reviews.default.svc.cluster.local"
	clusters := map[string]bool{c: true, "outbound|80||api.internal": true}
	for _, tt := range []struct {
		cluster string
		want    bool
	}{
		{c, false},
		{c + ".external", true},
		{c + ".internal", true},
		{c + ".canary", true},
		{c + ".retry", true},
		{c + ".zone.local-a.local-b", true},
		{"outbound|80||api.internal", false},         // its base "outbound|80||api" is no cluster
		{"outbound|80||api.internal.external", true}, // a sub-scope of a cluster ending in .internal
		{"outbound|9090||other.svc.external", false}, // no such base
		{"outbound|9090||other.zone.a.b", false},     // no such base
		{c + ".zone", false},
	} {
		t.Run(tt.cluster, func(t *testing.T) {
			if got := isSubScope(tt.cluster, clusters); got != tt.want {
				t.Errorf("isSubScope = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSparseBuckets(t *testing.T) {
	bounds := []float64{1, 5, 10, 25}
	for _, tt := range []struct {
		name string
		cum  []uint64
		cnt  uint64
		want buckets
	}{
		{"empty", []uint64{0, 0, 0, 0}, 0, buckets{}},
		{"one bucket", []uint64{0, 0, 3, 3}, 3, buckets{first: 2, counts: []uint32{3}}},
		{"a run", []uint64{0, 2, 2, 7}, 7, buckets{first: 1, counts: []uint32{2, 0, 5}}},
		{"overflow", []uint64{1, 1, 1, 1}, 4, buckets{first: 0, counts: []uint32{1, 0, 0, 0, 3}}},
		{"counts going down are not negative", []uint64{3, 2, 2, 2}, 2, buckets{first: 0, counts: []uint32{3}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := sparse(&histogram{bounds: bounds, cum: tt.cum, count: tt.cnt})
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(buckets{})); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestAddBuckets(t *testing.T) {
	for _, tt := range []struct {
		name string
		a, b buckets
		want buckets
	}{
		{"empty", buckets{}, buckets{}, buckets{}},
		{"into empty", buckets{}, buckets{first: 2, counts: []uint32{1}}, buckets{first: 2, counts: []uint32{1}}},
		{"overlapping", buckets{first: 1, counts: []uint32{1, 2}}, buckets{first: 2, counts: []uint32{3, 4}},
			buckets{first: 1, counts: []uint32{1, 5, 4}}},
		{"apart", buckets{first: 4, counts: []uint32{1}}, buckets{first: 1, counts: []uint32{2}},
			buckets{first: 1, counts: []uint32{2, 0, 0, 1}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.a.add(tt.b), cmp.AllowUnexported(buckets{})); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestFirstFlush(t *testing.T) {
	type msg struct {
		ms       int64
		families int
	}
	for _, tt := range []struct {
		name string
		msgs []msg
		want []bool
	}{
		{"one message a flush", []msg{{1000, 5}, {2000, 5}, {3000, 5}}, []bool{true, false, false}},
		{"batches of the first flush", []msg{{1000, 5}, {1000, 5}, {2000, 5}, {1000, 5}}, []bool{true, true, false, false}},
		{"no timestamps", []msg{{0, 5}, {0, 5}}, []bool{true, false}},
		{"an empty message first", []msg{{0, 0}, {1000, 5}, {2000, 5}}, []bool{false, true, false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var f flushes
			var got []bool
			for _, m := range tt.msgs {
				got = append(got, f.first(m.ms, m.families))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}
