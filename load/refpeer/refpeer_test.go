package refpeer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/weir-mesh/weir/e2e/scenario"
	"github.com/weir-mesh/weir/load"
	"github.com/weir-mesh/weir/watchers/file"
)

// harness is a peer serving a small scenario directory on a loopback port.
type harness struct {
	peer *Peer
	addr string
	dir  string
	ts   *httptest.Server
}

func startPeer(t *testing.T) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{peer: New(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))), dir: t.TempDir()}
	if _, err := scenario.Write(h.dir, testMesh); err != nil {
		t.Fatal(err)
	}
	if err := h.reload(); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = lis.Addr().String()
	h.ts = httptest.NewServer(h.peer.Handler())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := h.peer.Serve(ctx, lis); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait(); h.ts.Close() })
	return h
}

// reload reads the directory again and hands it to the peer.
func (h *harness) reload() error {
	snap, err := file.Load(h.dir)
	if err != nil {
		return fmt.Errorf("load %s: %w", h.dir, err)
	}
	h.peer.Update(snap)
	return nil
}

// testMesh is the scenario these tests serve.
var testMesh = scenario.Spec{Services: 5, Subsets: 2, Endpoints: 2}

// shiftWeight moves svc-00000 from 50/50 to 80/20, which changes RDS only.
func (h *harness) shiftWeight() error {
	if err := scenario.SetWeights(h.dir, testMesh, 0, []int{80, 20}); err != nil {
		return err
	}
	return h.reload()
}

// metric scrapes /metrics and returns the value of the sample written exactly as name
// (with labels, if any), or an error if it is missing.
func (h *harness) metric(name string) (float64, error) {
	resp, err := http.Get(h.ts.URL + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// routesOf returns one node's snapshot routes as JSON.
func (h *harness) routesOf(nodeID string) (string, error) {
	snap, err := h.peer.cache.GetSnapshot(nodeID)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, r := range snap.GetResources(resourcev3.RouteType) {
		j, err := protojson.Marshal(r.(proto.Message))
		if err != nil {
			return "", err
		}
		b.Write(j)
	}
	return b.String(), nil
}

// changeCheck records what the peer did when the load run was all up and the change
// was made.
type changeCheck struct {
	err                 error
	streams, nodes      float64
	setBefore, setAfter float64
	routes              string
}

func (h *harness) change() *changeCheck {
	c := &changeCheck{}
	c.streams, c.err = h.metric("refpeer_connected_streams")
	if c.err == nil {
		c.nodes, c.err = h.metric("refpeer_connected_nodes")
	}
	if c.err == nil {
		c.setBefore, c.err = h.metric("refpeer_snapshots_set_total")
	}
	if c.err == nil {
		// Read the routes while Update still holds the cache: once every stream has
		// ACKed, load.Run ends and the nodes' snapshots are cleared.
		var routesErr error
		h.peer.updated = func() { c.routes, routesErr = h.routesOf("load-0") }
		err := h.shiftWeight()
		h.peer.updated = nil
		c.err = errors.Join(err, routesErr)
	}
	if c.err == nil {
		c.setAfter, c.err = h.metric("refpeer_snapshots_set_total")
	}
	return c
}

// changeDelay is how long after every stream is up the config changes.
const changeDelay = 100 * time.Millisecond

func TestEveryStreamGetsConfigAndTheChange(t *testing.T) {
	const streams = 20
	for _, delta := range []bool{false, true} {
		name := "sotw"
		if delta {
			name = "delta"
		}
		t.Run(name, func(t *testing.T) {
			h := startPeer(t)
			changed := make(chan *changeCheck, 1)
			cfg := load.Config{
				Target: h.addr, Streams: streams, Classes: 2, Delta: delta, Ramp: 100, StreamsPerConn: 10,
				WatchChange: true, Duration: 30 * time.Second,
				// Update is synchronous and loopback is fast: a change made inside OnAllUp
				// can be ACKed before load.Run notes the versions it waits to see change,
				// so the change is made a little after OnAllUp returns.
				OnAllUp: func() {
					go func() { time.Sleep(changeDelay); changed <- h.change() }()
				},
			}
			res, err := load.Run(context.Background(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Up != streams || res.FirstConfig.Count != streams {
				t.Fatalf("streams with full config = %d, want %d; without: %v; errors: %v", res.Up, streams, res.NotUp, res.Errors)
			}
			var c *changeCheck
			select {
			case c = <-changed:
			case <-time.After(5 * time.Second):
				t.Fatal("the change was never made")
			}
			if c.err != nil {
				t.Fatal(c.err)
			}
			if cv := res.Convergence; cv == nil || cv.Acked != streams {
				t.Fatalf("convergence = %+v, want every one of %d streams to ACK the new RDS version", cv, streams)
			}
			if c.streams != streams || c.nodes != streams {
				t.Errorf("connected streams = %v, nodes = %v; want %d each", c.streams, c.nodes, streams)
			}
			if got := c.setAfter - c.setBefore; got != streams {
				t.Errorf("snapshots set by the update = %v, want one per node: %d", got, streams)
			}
			if !strings.Contains(c.routes, `"weight":80`) || !strings.Contains(c.routes, `"weight":20`) {
				t.Errorf("load-0's routes after the change lack the 80/20 split: %s", c.routes)
			}
			for _, typ := range []string{"cds", "eds", "lds", "rds"} {
				if res.BytesByType[typ] == 0 {
					t.Errorf("no %s bytes counted", typ)
				}
				// One global version means SotW resends every type on any change; delta
				// compares resource hashes and resends only the routes.
				want := 2 * streams
				if delta && typ != "rds" {
					want = streams
				}
				n, err := h.metric(fmt.Sprintf("refpeer_responses_total{type=%q}", typ))
				if err != nil || n < float64(want) {
					t.Errorf("%s responses = %v (%v), want at least %d", typ, n, err, want)
				}
			}
			h.waitForgotten(t)
		})
	}
}

// waitForgotten waits until every stream of the finished run is forgotten and the cache
// holds no node.
func (h *harness) waitForgotten(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := h.metric("refpeer_connected_streams")
		keys := h.peer.cache.GetStatusKeys()
		_, snapErr := h.peer.cache.GetSnapshot("load-0")
		if err == nil && n == 0 && len(keys) == 0 && snapErr != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the run: connected streams = %v (%v), cache nodes = %v, load-0 snapshot error = %v; want 0, none, an error",
				n, err, keys, snapErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHealthzWaitsForFirstUpdate(t *testing.T) {
	p := New(zaptest.NewLogger(t))
	ts := httptest.NewServer(p.Handler())
	defer ts.Close()
	status := func() int {
		resp, err := http.Get(ts.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != http.StatusServiceUnavailable {
		t.Fatalf("healthz before any update = %d, want 503", got)
	}
	dir := t.TempDir()
	if _, err := scenario.Write(dir, scenario.Spec{Services: 1, Subsets: 1, Endpoints: 1}); err != nil {
		t.Fatal(err)
	}
	snap, err := file.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	p.Update(snap)
	if got := status(); got != http.StatusOK {
		t.Fatalf("healthz after an update = %d, want 200", got)
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, name := range []string{
		"refpeer_connected_streams 0", "refpeer_snapshots_set_total 0", "refpeer_updates_total 1",
		`refpeer_responses_total{type="rds"} 0`, "go_goroutines", "process_cpu_seconds_total",
	} {
		if !strings.Contains(string(b), name) {
			t.Errorf("/metrics lacks %q", name)
		}
	}
}
