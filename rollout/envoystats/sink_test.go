package envoystats

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	promclient "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/weir-mesh/weir/api/v1alpha1"
	"github.com/weir-mesh/weir/rollout"
)

const (
	canary = "outbound|8080|canary|reviews.default.svc.cluster.local"
	stable = "outbound|8080|stable|reviews.default.svc.cluster.local"
)

// envoyBounds are Envoy's default histogram buckets, in ms for upstream_rq_time.
var envoyBounds = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
	30000, 60000, 300000, 600000, 1.8e6, 3.6e6}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a Sink served over loopback gRPC, a fake clock and a client.
type harness struct {
	t      *testing.T
	sink   *Sink
	clock  *fakeClock
	client metricsv3.MetricsServiceClient
	sent   int // messages sent by all proxies, to wait for
}

func newHarness(t *testing.T, opts ...Option) *harness {
	t.Helper()
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	sink := NewSink(zaptest.NewLogger(t), prometheus.NewRegistry(), append([]Option{WithClock(clock.Now)}, opts...)...)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.WaitForHandlers(true)) // no logging after the test
	sink.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &harness{t: t, sink: sink, clock: clock, client: metricsv3.NewMetricsServiceClient(conn)}
}

// proxy is one Envoy's metrics stream.
type proxy struct {
	h      *harness
	node   string
	stream grpc.ClientStreamingClient[metricsv3.StreamMetricsMessage, metricsv3.StreamMetricsResponse]
	sent   int
}

func (h *harness) connect(node string) *proxy {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	st, err := h.client.StreamMetrics(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return &proxy{h: h, node: node, stream: st}
}

// flush sends one message, the node on the first as Envoy does, stamped with the fake
// clock's time, and waits until the sink has recorded it.
func (p *proxy) flush(fams ...*promclient.MetricFamily) {
	p.flushAt(p.h.clock.Now().UnixMilli(), fams...)
}

func (p *proxy) flushAt(ms int64, fams ...*promclient.MetricFamily) {
	p.h.t.Helper()
	msg := &metricsv3.StreamMetricsMessage{}
	if p.sent == 0 {
		msg.Identifier = &metricsv3.StreamMetricsMessage_Identifier{Node: &corev3.Node{Id: p.node}}
	}
	for _, f := range fams {
		f = proto.Clone(f).(*promclient.MetricFamily)
		f.Metric[0].TimestampMs = proto.Int64(ms)
		msg.EnvoyMetrics = append(msg.EnvoyMetrics, f)
	}
	if err := p.stream.Send(msg); err != nil {
		p.h.t.Fatalf("send: %v", err)
	}
	p.sent++
	p.h.sent++
	p.h.waitMessages(p.h.sent)
}

func (h *harness) waitMessages(n int) {
	h.t.Helper()
	for range 500 {
		if int(value(h.sink.m.messages)) >= n {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	h.t.Fatalf("the sink did not record message %d within a second", n)
}

// hangUp ends the stream the way Envoy does not (it just goes away), but this way the
// test knows the sink has seen the end.
func (p *proxy) hangUp() {
	p.h.t.Helper()
	if _, err := p.stream.CloseAndRecv(); err != nil {
		p.h.t.Fatalf("close: %v", err)
	}
}

func counterFam(name string, v float64) *promclient.MetricFamily {
	return &promclient.MetricFamily{
		Name: proto.String(name), Type: promclient.MetricType_COUNTER.Enum(),
		Metric: []*promclient.Metric{{Counter: &promclient.Counter{Value: proto.Float64(v)}}},
	}
}

func completed(cluster string, v float64) *promclient.MetricFamily {
	return counterFam("cluster."+cluster+".upstream_rq_completed", v)
}

func fivexx(cluster string, v float64) *promclient.MetricFamily {
	return counterFam("cluster."+cluster+".upstream_rq_5xx", v)
}

// rqTime is an interval histogram over envoyBounds; perBucket[i] samples fell in bucket
// i (i == len(envoyBounds): above the last bound).
func rqTime(cluster string, perBucket map[int]uint64) *promclient.MetricFamily {
	h := &promclient.Histogram{}
	var cum uint64
	for i, b := range envoyBounds {
		cum += perBucket[i]
		h.Bucket = append(h.Bucket, &promclient.Bucket{UpperBound: proto.Float64(b), CumulativeCount: proto.Uint64(cum)})
	}
	h.SampleCount = proto.Uint64(cum + perBucket[len(envoyBounds)])
	return &promclient.MetricFamily{
		Name: proto.String("cluster." + cluster + ".upstream_rq_time"), Type: promclient.MetricType_HISTOGRAM.Enum(),
		Metric: []*promclient.Metric{{Histogram: h}},
	}
}

// traffic is the stats of one cluster after some requests: completed and 5xx counters.
func traffic(cluster string, done, errs float64) []*promclient.MetricFamily {
	return []*promclient.MetricFamily{completed(cluster, done), fivexx(cluster, errs)}
}

func (h *harness) measure(name string, window time.Duration, clusters ...string) rollout.Result {
	h.t.Helper()
	r, err := h.sink.Measure(context.Background(), query(name, window, clusters...))
	if err != nil {
		h.t.Fatalf("measure %s: %v", name, err)
	}
	return r
}

func query(name string, window time.Duration, clusters ...string) rollout.Query {
	if len(clusters) == 0 {
		clusters = []string{canary}
	}
	return rollout.Query{Clusters: clusters, Metric: v1alpha1.Metric{Name: name}, Window: window}
}

var approx = cmpopts.EquateApprox(0, 1e-9)

func TestWindowDelta(t *testing.T) {
	h := newHarness(t)
	p := h.connect("sidecar-1")
	p.flush(traffic(canary, 1000, 100)...) // t=0: history from before weir listened
	h.clock.Advance(5 * time.Second)
	p.flush(traffic(canary, 1050, 105)...) // t=5: +50, 5 errors
	h.clock.Advance(5 * time.Second)
	p.flush(traffic(canary, 1150, 135)...) // t=10: +100, 30 errors
	h.clock.Advance(time.Second)           // now t=11

	tests := []struct {
		name   string
		metric string
		window time.Duration
		want   rollout.Result
	}{
		{"last flush only", v1alpha1.MetricErrorRate, 3 * time.Second, rollout.Result{Value: 30, Requests: 100}},
		{"two flushes", v1alpha1.MetricErrorRate, 8 * time.Second, rollout.Result{Value: 100 * 35.0 / 150, Requests: 150}},
		{"success rate", v1alpha1.MetricSuccessRate, 8 * time.Second, rollout.Result{Value: 100 * 115.0 / 150, Requests: 150}},
		{"the first flush is a baseline, not traffic", v1alpha1.MetricSuccessRate, time.Minute, rollout.Result{Value: 100 * 115.0 / 150, Requests: 150}},
		{"a window after the last flush", v1alpha1.MetricSuccessRate, 500 * time.Millisecond, rollout.Result{NoData: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.measure(tt.metric, tt.window)
			if diff := cmp.Diff(tt.want, got, approx); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestSeriesStartingInsideTheWindow(t *testing.T) {
	h := newHarness(t)
	p := h.connect("sidecar-1")
	p.flush(traffic(stable, 500, 0)...) // the canary has had no request yet
	h.clock.Advance(5 * time.Second)
	// Envoy sends a counter from its first increment on: the canary's counters were
	// zero at the last flush, and its 5xx counter is still unused.
	p.flush(append(traffic(stable, 600, 0), completed(canary, 40))...)
	h.clock.Advance(5 * time.Second)
	p.flush(append(traffic(stable, 700, 0), traffic(canary, 80, 4)...)...)

	// A proxy that connects with traffic already counted brings only a baseline.
	late := h.connect("sidecar-2")
	late.flush(traffic(canary, 1000, 500)...)

	got := h.measure(v1alpha1.MetricErrorRate, time.Minute)
	if diff := cmp.Diff(rollout.Result{Value: 5, Requests: 80}, got, approx); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestCounterReset(t *testing.T) {
	h := newHarness(t)
	p := h.connect("sidecar-1")
	for _, v := range []float64{100, 150, 20, 50} { // +50, reset (new baseline 20), +30
		p.flush(completed(canary, v))
		h.clock.Advance(5 * time.Second)
	}
	got := h.measure(v1alpha1.MetricSuccessRate, time.Minute)
	if diff := cmp.Diff(rollout.Result{Value: 100, Requests: 80}, got, approx); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestProxiesAreSummed(t *testing.T) {
	h := newHarness(t)
	a, b := h.connect("sidecar-a"), h.connect("sidecar-b")
	a.flush(traffic(canary, 10, 0)...)
	b.flush(traffic(canary, 10, 0)...)
	h.clock.Advance(5 * time.Second)
	a.flush(traffic(canary, 110, 10)...)
	b.flush(traffic(canary, 310, 30)...)
	// A proxy that hung up still counts for what it reported before.
	b.hangUp()
	h.clock.Advance(5 * time.Second)

	for _, tt := range []struct {
		name     string
		clusters []string
		want     rollout.Result
	}{
		{"both proxies", []string{canary}, rollout.Result{Value: 10, Requests: 400}},
		{"no such cluster", []string{"outbound|9090|canary|reviews.default.svc.cluster.local"}, rollout.Result{NoData: true}},
		{"the canary's two ports", []string{canary, "outbound|9090|canary|reviews.default.svc.cluster.local"}, rollout.Result{Value: 10, Requests: 400}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := h.measure(v1alpha1.MetricErrorRate, time.Minute, tt.clusters...)
			if diff := cmp.Diff(tt.want, got, approx); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestDurationPercentiles(t *testing.T) {
	h := newHarness(t)
	a, b := h.connect("sidecar-a"), h.connect("sidecar-b")
	a.flush(rqTime(canary, map[int]uint64{2: 1000})) // the first interval counts...
	b.flush(completed(stable, 1))
	h.clock.Advance(time.Minute) // ...but falls out of the windows below
	// Envoy sends histograms per flush interval: these are the window's samples.
	a.flush(append(traffic(canary, 90, 0), rqTime(canary, map[int]uint64{3: 90}))...) // (5, 10]
	b.flush(append(traffic(canary, 10, 0), rqTime(canary, map[int]uint64{5: 10}))...) // (25, 50]
	h.clock.Advance(5 * time.Second)
	a.flush(traffic(canary, 90, 0)...) // an idle interval: no histogram

	for _, tt := range []struct {
		pct  *float64
		want float64
	}{
		{nil, 47.5}, // p99: rank 99, the 9th of 10 in (25, 50]
		{proto.Float64(50), 5 + 5*50.0/90},
		{proto.Float64(90), 10},
		{proto.Float64(100), 50},
	} {
		name := "default"
		if tt.pct != nil {
			name = fmt.Sprintf("p%g", *tt.pct)
		}
		t.Run(name, func(t *testing.T) {
			q := query(v1alpha1.MetricDuration, 30*time.Second)
			q.Metric.Percentile = tt.pct
			got, err := h.sink.Measure(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(rollout.Result{Value: tt.want, Requests: 100}, got, approx); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestQueryErrors(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		name string
		q    rollout.Query
		want error
	}{
		{"unknown metric", query("request-rate", time.Minute), ErrUnknownMetric},
		{"prometheus metric", query("", time.Minute), ErrUnknownMetric},
		{"zero window", query(v1alpha1.MetricSuccessRate, 0), ErrBadQuery},
		{"percentile 0", rollout.Query{Metric: v1alpha1.Metric{Name: v1alpha1.MetricDuration, Percentile: proto.Float64(0)}, Window: time.Minute}, ErrBadQuery},
		{"percentile 101", rollout.Query{Metric: v1alpha1.Metric{Name: v1alpha1.MetricDuration, Percentile: proto.Float64(101)}, Window: time.Minute}, ErrBadQuery},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.sink.Measure(context.Background(), tt.q)
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNoData(t *testing.T) {
	h := newHarness(t)
	for _, name := range []string{v1alpha1.MetricSuccessRate, v1alpha1.MetricErrorRate, v1alpha1.MetricDuration} {
		t.Run("no proxy/"+name, func(t *testing.T) {
			if diff := cmp.Diff(rollout.Result{NoData: true}, h.measure(name, time.Minute)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
	p := h.connect("sidecar-1")
	p.flush(traffic(canary, 10, 0)...)
	h.clock.Advance(5 * time.Second)
	p.flush(traffic(canary, 20, 10)...) // timeouts: answered, but no duration recorded
	h.clock.Advance(5 * time.Second)
	p.flush(traffic(canary, 20, 10)...) // idle

	for _, tt := range []struct {
		name   string
		metric string
		window time.Duration
		want   rollout.Result
	}{
		{"no request in the window", v1alpha1.MetricSuccessRate, 3 * time.Second, rollout.Result{NoData: true}},
		{"requests without durations", v1alpha1.MetricDuration, time.Minute, rollout.Result{NoData: true, Requests: 10}},
		{"requests", v1alpha1.MetricSuccessRate, time.Minute, rollout.Result{Value: 0, Requests: 10}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, h.measure(tt.metric, tt.window)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// TestMemoryIsBounded guards the retention: samples past the longest window asked go,
// a series keeps at most maxSamples, and a stream that ended goes once its samples have.
func TestMemoryIsBounded(t *testing.T) {
	h := newHarness(t, WithMaxSamples(10), WithMaxRetention(time.Minute))
	p := h.connect("sidecar-1")
	for i := range 300 { // five minutes of a flush a second
		p.flush(traffic(canary, float64(10*i), float64(i))...)
		h.clock.Advance(time.Second)
	}
	got := h.samples(canary)
	if len(got) > 10 {
		t.Errorf("%d samples kept, want at most maxSamples 10", len(got))
	}
	if age := time.Duration(h.sink.now() - got[0]); age > time.Minute+time.Second {
		t.Errorf("oldest sample is %v old, past the 1m retention and the 1s since the last flush", age)
	}
	// The merged samples still add up to what happened: 59 flushes of 10 requests in the
	// last minute, plus at most a step (15 s) of them at the window's start.
	if r := h.measure(v1alpha1.MetricSuccessRate, time.Minute); r.Requests < 590 || r.Requests > 740 {
		t.Errorf("requests in the last minute = %v, want 590 to 740", r.Requests)
	}

	p.hangUp()
	h.waitStreams(0)
	if n := value(h.sink.m.series); n != 1 {
		t.Errorf("series = %v right after the stream ended, want 1 (kept for the retention)", n)
	}
	h.clock.Advance(61 * time.Second)
	h.measure(v1alpha1.MetricSuccessRate, time.Minute) // sweeps
	if n, s := value(h.sink.m.series), len(h.sink.list()); n != 0 || s != 0 {
		t.Errorf("after the retention: %v series, %d streams held; want none", n, s)
	}
}

// samples returns the times of the samples held for cluster, oldest first.
func (h *harness) samples(cluster string) []instant {
	var out []instant
	for _, st := range h.sink.list() {
		st.mu.Lock()
		if se := st.series[cluster]; se != nil {
			for _, s := range se.samples {
				out = append(out, s.at)
			}
		}
		st.mu.Unlock()
	}
	slices.Sort(out)
	return out
}

func (h *harness) waitStreams(n int) {
	h.t.Helper()
	for range 500 {
		if int(value(h.sink.m.streams)) == n {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	h.t.Fatalf("streams did not reach %d", n)
}

// TestOnlyOutboundRequestStatsAreKept guards the filter: other stats, and Envoy's
// external/internal/retry splits of the kept ones, hold no memory.
func TestOnlyOutboundRequestStatsAreKept(t *testing.T) {
	h := newHarness(t)
	p := h.connect("sidecar-1")
	p.flush(
		completed(canary, 1),
		completed(canary+".external", 1),
		fivexx(canary+".retry", 1),
		rqTime(canary+".zone.local-a.local-b", map[int]uint64{1: 1}),
		completed("outbound|80||api.internal", 1), // a cluster that ends like a sub-scope
		completed("inbound|8080||", 1),
		counterFam("cluster."+canary+".upstream_rq_2xx", 1),
		counterFam("http.outbound_0.0.0.0_8080.downstream_rq_5xx", 1),
		counterFam("cluster.outbound|.upstream_rq_completed", 1),
		&promclient.MetricFamily{ // the right name, the wrong type
			Name: proto.String("cluster." + stable + ".upstream_rq_5xx"), Type: promclient.MetricType_GAUGE.Enum(),
			Metric: []*promclient.Metric{{Gauge: &promclient.Gauge{Value: proto.Float64(1)}}},
		},
	)
	var got []string
	for _, st := range h.sink.list() {
		st.mu.Lock()
		got = slices.AppendSeq(got, maps.Keys(st.series))
		st.mu.Unlock()
	}
	slices.Sort(got)
	want := []string{canary, "outbound|80||api.internal"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("clusters kept (-want +got)\n%s", diff)
	}
}

// TestBatchedFirstFlush guards the baseline when Envoy splits a flush over messages
// (batch_size): every message of the first flush is history.
func TestBatchedFirstFlush(t *testing.T) {
	h := newHarness(t)
	p := h.connect("sidecar-1")
	p.flushAt(1000, completed(stable, 500))
	p.flushAt(1000, traffic(canary, 900, 90)...) // same flush, second batch
	h.clock.Advance(5 * time.Second)
	p.flushAt(6000, completed(stable, 600))
	p.flushAt(6000, traffic(canary, 1000, 100)...)

	got := h.measure(v1alpha1.MetricErrorRate, time.Minute)
	if diff := cmp.Diff(rollout.Result{Value: 10, Requests: 100}, got, approx); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestRetentionFollowsTheLongestWindow(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		ask, want time.Duration
	}{
		{0, initialRetention},
		{time.Minute, initialRetention},
		{10 * time.Minute, 10 * time.Minute},
		{time.Hour, DefaultMaxRetention},
		{2 * time.Minute, DefaultMaxRetention},
	} {
		t.Run(tt.ask.String(), func(t *testing.T) {
			if tt.ask > 0 {
				h.measure(v1alpha1.MetricErrorRate, tt.ask)
			}
			if got := h.sink.limits().retention; got != tt.want {
				t.Errorf("retention %v, want %v", got, tt.want)
			}
		})
	}
}

// value reads a counter or gauge of the sink.
func value(m prometheus.Metric) float64 {
	var d promclient.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	return d.GetCounter().GetValue() + d.GetGauge().GetValue()
}

// TestMergingReachesBackAStepAtMost guards the merge rule: a flush after an idle spell
// starts a new sample instead of moving an old one into a window it was not in.
func TestMergingReachesBackAStepAtMost(t *testing.T) {
	h := newHarness(t, WithMaxRetention(time.Minute), WithMaxSamples(10)) // step 15 s
	p := h.connect("sidecar-1")
	for i := range 6 { // a baseline, then five flushes of 10 requests, merged
		p.flush(completed(canary, float64(10*i)))
		h.clock.Advance(time.Second)
	}
	h.clock.Advance(25 * time.Second) // idle
	p.flush(completed(canary, 51))
	h.clock.Advance(time.Second)

	got := h.measure(v1alpha1.MetricSuccessRate, 5*time.Second)
	if diff := cmp.Diff(rollout.Result{Value: 100, Requests: 1}, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if n := len(h.samples(canary)); n != 3 {
		t.Errorf("%d samples, want 3: the first increase, the four after it merged, the last", n)
	}
}

// TestSampleCapHoldsWhenRetentionGrows guards maxSamples where the step alone does not:
// samples stored under a shorter retention sit closer together than the new step.
func TestSampleCapHoldsWhenRetentionGrows(t *testing.T) {
	h := newHarness(t, WithMaxSamples(10), WithMaxRetention(20*time.Minute))
	p := h.connect("sidecar-1")
	p.flush(completed(canary, 0))
	// Pairs of flushes a second apart, a step apart: every flush makes a sample, the
	// most the merge rule allows.
	pairs := func(n int, step time.Duration) {
		for range n {
			for range 2 {
				h.clock.Advance(time.Second)
				p.flush(completed(canary, float64(h.sent)))
			}
			h.clock.Advance(step)
		}
	}
	pairs(3, 75*time.Second)                              // retention 5 m, step 75 s
	h.measure(v1alpha1.MetricSuccessRate, 20*time.Minute) // retention 20 m, step 300 s
	pairs(4, 300*time.Second)
	if n := len(h.samples(canary)); n > 10 {
		t.Errorf("%d samples kept, want at most maxSamples 10", n)
	}
}
