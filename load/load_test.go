package load

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/weir-mesh/weir/e2e/scenario"
	"github.com/weir-mesh/weir/pipeline"
	"github.com/weir-mesh/weir/watchers/file"
	"github.com/weir-mesh/weir/xds"
)

// mesh is a running weir (server + pipeline) serving a small scenario directory.
type mesh struct {
	addr string
	dir  string
	pipe *pipeline.Pipeline
}

func startMesh(t *testing.T) *mesh {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	srv := xds.New(ctx, log, nil, xds.Options{StageTimeout: 2 * time.Second})
	pipe := pipeline.New(log, srv, nil)
	srv.OnClass(pipe.AddClass)
	m := &mesh{dir: t.TempDir(), pipe: pipe}
	if _, err := scenario.Write(m.dir, testMesh); err != nil {
		t.Fatal(err)
	}
	if err := m.reload(); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = lis.Addr().String()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pipe.Run(ctx) }()
	go func() { defer wg.Done(); _ = srv.Serve(lis) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return m
}

func (m *mesh) reload() error {
	snap, err := file.Load(m.dir)
	if err != nil {
		return err
	}
	m.pipe.Update(snap)
	return nil
}

// testMesh is the scenario these tests serve.
var testMesh = scenario.Spec{Services: 5, Subsets: 2, Endpoints: 2}

// shiftWeight moves svc-00000 from 50/50 to 80/20, which changes RDS only.
func (m *mesh) shiftWeight() error {
	if err := scenario.SetWeights(m.dir, testMesh, 0, []int{80, 20}); err != nil {
		return err
	}
	return m.reload()
}

func TestSotwAndDeltaStreamsGetConfigAndConverge(t *testing.T) {
	m := startMesh(t)
	runs := []Config{
		{Streams: 50, IDPrefix: "sotw-"},
		{Streams: 20, IDPrefix: "delta-", Delta: true},
	}
	var up sync.WaitGroup
	up.Add(len(runs))
	results := make([]*Result, len(runs))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, cfg := range runs {
		cfg.Target, cfg.Classes, cfg.Ramp, cfg.StreamsPerConn = m.addr, 2, 100, 10
		cfg.Duration, cfg.WatchChange = 60*time.Second, true
		var once sync.Once
		cfg.OnAllUp = func() { once.Do(up.Done) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer once.Do(up.Done) // a run that never gets up must not block the change
			results[i], errs[i] = Run(context.Background(), zaptest.NewLogger(t), cfg)
		}()
	}
	up.Wait()
	if err := m.shiftWeight(); err != nil {
		t.Error(err) // the runs still end at their duration
	}
	wg.Wait()

	for i, res := range results {
		cfg := runs[i]
		t.Run(cfg.IDPrefix, func(t *testing.T) {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if res.Up != cfg.Streams || res.FirstConfig.Count != cfg.Streams {
				t.Fatalf("streams with full config = %d, want %d; without: %v; errors: %v", res.Up, cfg.Streams, res.NotUp, res.Errors)
			}
			c := res.Convergence
			if c == nil || c.Acked != cfg.Streams {
				t.Fatalf("convergence = %+v, want every one of %d streams to ACK the new RDS version", c, cfg.Streams)
			}
			if c.Latency.Max < c.Latency.P50 || c.Latency.Max > 60 {
				t.Errorf("convergence latency %+v is not plausible", c.Latency)
			}
			for _, typ := range []string{"cds", "eds", "lds", "rds"} {
				if res.BytesByType[typ] == 0 {
					t.Errorf("no %s bytes counted", typ)
				}
			}
			// Both classes share route content, so one version before the change and one after.
			if rds := countVersions(res, "rds"); rds < 2 {
				t.Errorf("distinct rds versions = %d, want at least 2", rds)
			}
			var sb strings.Builder
			res.WriteSummary(&sb)
			t.Log(sb.String())
		})
	}
}

func countVersions(res *Result, typ string) int {
	n := 0
	for _, v := range res.Versions {
		if v.Type == typ {
			n++
		}
	}
	return n
}

// Guards that a silent stream is reported, not averaged away: stream 3 never ACKs RDS
// in one case, and stops ACKing RDS once everyone is up in the other.
func TestStreamThatDoesNotAckIsReported(t *testing.T) {
	for _, tc := range []struct {
		name        string
		silentFirst bool
	}{
		{name: "never acks rds", silentFirst: true},
		{name: "stops acking rds after first config", silentFirst: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits out its duration
			m := startMesh(t)
			shifted := make(chan error, 1)
			var silent atomic.Bool
			silent.Store(tc.silentFirst)
			cfg := Config{Target: m.addr, Streams: 6, Classes: 2, Duration: 8 * time.Second, WatchChange: true,
				ackFilter: func(i int, typeURL string) bool { return !(i == 3 && typeURL == resourcev3.RouteType && silent.Load()) },
				OnAllUp:   func() { silent.Store(true); shifted <- m.shiftWeight() },
			}
			res, err := Run(context.Background(), zaptest.NewLogger(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.silentFirst {
				if len(shifted) > 0 {
					t.Fatal("OnAllUp ran although stream 3 never had its full config")
				}
				if res.Up != 5 || !slices.Equal(res.NotUp, []string{"load-3"}) {
					t.Fatalf("up = %d, not up = %v; want 5 and [load-3]", res.Up, res.NotUp)
				}
				return
			}
			if err := <-shifted; err != nil {
				t.Fatal(err)
			}
			c := res.Convergence
			if c == nil || c.Acked != 5 || !slices.Equal(c.Missing, []string{"load-3"}) {
				t.Fatalf("convergence = %+v; want 5 acked and load-3 missing", c)
			}
		})
	}
}

func TestRefusesNonLoopbackTargets(t *testing.T) {
	for _, tc := range []struct {
		target string
		ok     bool
	}{
		{"127.0.0.1:18000", true},
		{"127.1.2.3:18000", true},
		{"[::1]:18000", true},
		{"10.0.0.1:18000", false},
		{"example.com:18000", false},
		{"[2001:db8::1]:18000", false},
	} {
		t.Run(tc.target, func(t *testing.T) {
			_, err := Config{Target: tc.target, Streams: 1}.withDefaults()
			if got := !errors.Is(err, ErrNotLoopback); got != tc.ok {
				t.Errorf("withDefaults(%s) error = %v, want ok=%v", tc.target, err, tc.ok)
			}
		})
	}
}
