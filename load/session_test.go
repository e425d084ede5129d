package load

import (
	"context"
	"fmt"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weir-mesh/weir/e2e/scenario"
)

// The phases a benchmark driver runs on one set of streams: all up, a route change, an
// endpoint change, then enough endpoint changes to overflow what a stream remembers.
func TestSessionRunsPhasesOnLiveStreams(t *testing.T) {
	m := startMesh(t)
	spec := testMesh // what startMesh writes
	const n = 20
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Start(ctx, zaptest.NewLogger(t), Config{Target: m.addr, Streams: n, Classes: 2, Ramp: 200, StreamsPerConn: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.WaitUp(ctx) {
		t.Fatalf("not all up: %+v", s.Result())
	}
	res := s.Result()
	if res.Up != n || res.AllUp <= 0 || res.AllUp < res.FirstConfig.Max || res.Ramp < 0.09 || res.Ramp > res.AllUp {
		t.Fatalf("up = %d, ramp %vs, all up after %vs, first config %+v", res.Up, res.Ramp, res.AllUp, res.FirstConfig)
	}
	if len(s.conns) != n {
		t.Errorf("connections = %d, want one per stream", len(s.conns))
	}

	// change applies one input change and waits for typeURL to converge, returning the
	// responses per type it caused.
	change := func(typeURL string, apply func() error) (*Convergence, map[string]Counters) {
		t.Helper()
		before := s.Counts()
		since := time.Now()
		if err := apply(); err != nil {
			t.Fatal(err)
		}
		if err := m.reload(); err != nil {
			t.Fatal(err)
		}
		c := s.WaitChange(ctx, typeURL, since)
		if !c.Complete() || c.Received != n {
			t.Fatalf("%s change: %+v", shortType(typeURL), c)
		}
		if c.FromChange.Count != n || c.FromChange.P50 <= 0 || c.FromChange.Max < c.FromFirstReceipt.Max ||
			c.FirstReceipt < 0 || c.Latency != c.FromFirstReceipt {
			t.Errorf("%s change latencies are not plausible: %+v", shortType(typeURL), c)
		}
		time.Sleep(200 * time.Millisecond) // let stragglers of other types arrive
		after := s.Counts()
		diff := map[string]Counters{}
		for k, v := range after {
			diff[k] = v.Sub(before[k])
		}
		return c, diff
	}

	rds, got := change(resourcev3.RouteType, func() error { return scenario.SetWeights(m.dir, spec, 1, []int{70, 30}) })
	if got["rds"].Responses < n || got["rds"].Bytes == 0 || got["cds"].Responses != 0 || got["lds"].Responses != 0 || got["srds"].Responses != 0 {
		t.Errorf("a weight change caused %+v; want an rds response per stream and no cds, lds or srds", got)
	}
	// Routes are split by service: the stream is sent the changed service's route
	// configuration only, not the other services'.
	if got["rds"].Resources != int64(got["rds"].Responses) {
		t.Errorf("a weight change to one of %d services sent %d route configurations in %d responses; want one per response",
			spec.Services, got["rds"].Resources, got["rds"].Responses)
	}
	var eds []*Convergence
	for seq := range 2 * keptVersions {
		c, got := change(resourcev3.EndpointType, func() error { return scenario.ShiftEndpoint(m.dir, spec, seq%spec.Services, seq) })
		if got["eds"].Responses < n || got["rds"].Responses != 0 || got["cds"].Responses != 0 || got["lds"].Responses != 0 {
			t.Errorf("endpoint shift %d caused %+v; want eds responses only", seq, got)
		}
		eds = append(eds, c)
	}
	for _, v := range s.views() {
		if k := len(v.events[typeIndex(resourcev3.EndpointType)]); k > keptVersions {
			t.Fatalf("%s remembers %d eds versions, want at most %d", v.nodeID, k, keptVersions)
		}
	}
	pooled, _ := Pool(append(eds, rds)...)
	if pooled.Count != n*(len(eds)+1) {
		t.Errorf("pooled samples = %d, want %d", pooled.Count, n*(len(eds)+1))
	}
	s.Close()
	s.Close()
}

// A wait that sees no change says so, and lists every stream as missing.
func TestWaitChangeNoticesNothingChanged(t *testing.T) {
	m := startMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Start(ctx, zaptest.NewLogger(t), Config{Target: m.addr, Streams: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.WaitUp(ctx) {
		t.Fatal("not all up")
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	c := s.WaitChange(short, resourcev3.RouteType, time.Now())
	if c.Complete() || c.Received != 0 || c.Error == "" || len(c.Missing) != 3 {
		t.Errorf("convergence of no change = %+v", c)
	}
}

func TestStreamRemembersRecentVersionsOnly(t *testing.T) {
	st := newStreamStats("x")
	t0 := time.Now()
	for i := range 10 {
		at := t0.Add(time.Duration(i) * time.Second)
		st.received(resourcev3.EndpointType, fmt.Sprint(i), at)
		st.acked(resourcev3.EndpointType, fmt.Sprint(i), at.Add(time.Millisecond))
	}
	ti := typeIndex(resourcev3.EndpointType)
	v := st.snapshot()
	if len(v.events[ti]) != keptVersions || v.events[ti][keptVersions-1].version != "9" {
		t.Fatalf("events = %+v, want the last %d", v.events[ti], keptVersions)
	}
	if got := st.lastAcked(ti, t0.Add(8*time.Second+time.Second/2)); got != "8" {
		t.Errorf("last acked = %q, want 8", got)
	}
	e, ok, _ := st.firstNewSince(ti, "7", t0.Add(7*time.Second))
	if !ok || e.version != "8" {
		t.Errorf("first new since 7 = %+v, %v; want 8", e, ok)
	}
}

// edsNamesByUnmarshal is the obvious implementation that edsNames must agree with.
func edsNamesByUnmarshal(res *anypb.Any) ([]string, error) {
	var c clusterv3.Cluster
	if err := res.UnmarshalTo(&c); err != nil {
		return nil, err
	}
	if c.GetType() != clusterv3.Cluster_EDS {
		return nil, nil
	}
	if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
		return []string{n}, nil
	}
	return []string{c.GetName()}, nil
}

func TestEDSNamesReadsTheWireLikeUnmarshal(t *testing.T) {
	ads := &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
	clusters := []*clusterv3.Cluster{
		{Name: "static"},
		{Name: "eds-named", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
			EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads, ServiceName: "outbound|80|v1|svc"},
			ConnectTimeout:   durationpb.New(time.Second),
			OutlierDetection: &clusterv3.OutlierDetection{Consecutive_5Xx: wrapperspb.UInt32(5)}},
		{Name: "eds-unnamed", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
			EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads}},
		{Name: "dns", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}},
		{Name: "custom", ClusterDiscoveryType: &clusterv3.Cluster_ClusterType{ClusterType: &clusterv3.Cluster_CustomClusterType{Name: "x"}},
			EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{ServiceName: "ignored"}},
	}
	for _, c := range clusters {
		a, err := anypb.New(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := edsNames(a)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := edsNamesByUnmarshal(a)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: edsNames = %v, want %v", c.GetName(), got, want)
		}
	}
	a, _ := anypb.New(clusters[1])
	a.Value = a.Value[:len(a.Value)-3]
	if _, err := edsNames(a); err == nil {
		t.Error("a truncated cluster was accepted")
	}
	a.TypeUrl = resourcev3.ListenerType
	if _, err := edsNames(a); err == nil {
		t.Error("a listener was read as a cluster")
	}
}
