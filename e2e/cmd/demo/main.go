// Command demo shows a canary rollout end to end on one machine: weir serving a copy of
// examples/canary, the two reviews backends, a real Envoy sidecar, and the seed's steps
// 100/0 → 90/10 → 50/50 → 0/100 → 100/0, each measured with real requests.
//
//	make demo        (or: go run ./e2e/cmd/demo -weir bin/weir)
//
// Every process it starts is stopped when it ends, on success, failure or Ctrl-C.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/weir-mesh/weir/e2e"
	"github.com/weir-mesh/weir/e2e/backend"
)

func main() {
	weirBin := flag.String("weir", "bin/weir", "weir binary (make build)")
	requests := flag.Int("requests", 1000, "requests measured per stage")
	flag.Parse()

	d := newDemoT()
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		d.Logf("interrupted: stopping everything")
		d.finish(130)
	}()
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatal); !ok {
				d.Logf("panic: %v", r)
			}
			d.finish(1)
		}
	}()

	abs, err := filepath.Abs(*weirBin)
	if err != nil || !fileExists(abs) {
		d.Fatalf("no weir binary at %s: run `make build` first", *weirBin)
	}
	e2e.UseWeirBinary(abs)
	run(d, *requests)
	d.finish(0)
}

func run(d *demoT, requests int) {
	root, err := e2e.RepoRoot()
	if err != nil {
		d.Fatalf("%v", err)
	}
	env := e2e.NewEnv(d)
	// The example's own endpoints: reviews v1 on 127.0.0.11:9080, v2 on 127.0.0.12:9080.
	for _, b := range []struct{ addr, version string }{{"127.0.0.11:9080", "v1"}, {"127.0.0.12:9080", "v2"}} {
		be, err := backend.Start(b.addr, b.version, "reviews-"+b.version)
		if err != nil {
			d.Fatalf("%v (is another demo or backend running?)", err)
		}
		d.Cleanup(func() { _ = be.Close() })
		d.Logf("backend %s on %s", b.version, be.Addr())
	}
	env.CopyDir(filepath.Join(root, "examples", "canary"), nil)
	env.WriteFile("virtualservice.yaml", e2e.SeedReviewsCanary)
	env.StartWeir()
	envoy := env.StartEnvoy(e2e.EnvoyOptions{})
	reviews := envoy.Traffic("reviews")

	fmt.Printf("\nweir %s (xDS %d), Envoy admin %d, sidecar listener %s, config in %s\n\n",
		env.Weir().AdminAddr, env.XDSPort, envoy.AdminPort, envoy.OutboundAddr(), env.ConfigDir)
	fmt.Printf("%-22s %-14s %-14s %s\n", "stage", "in Envoy after", "measured", "split")
	stages := []struct {
		name, patch string
		want        map[string]float64
	}{
		{"100/0 (start)", "", map[string]float64{"v1": 100}},
		{"90/10", e2e.SeedPatch90to10, map[string]float64{"v1": 90, "v2": 10}},
		{"50/50", e2e.SeedPatch50to50, map[string]float64{"v1": 50, "v2": 50}},
		{"0/100 (promoted)", e2e.SeedPatchAllV2, map[string]float64{"v2": 100}},
		{"100/0 (rolled back)", e2e.SeedPatchAllV1, map[string]float64{"v1": 100}},
	}
	for _, st := range stages {
		began := time.Now()
		if st.patch != "" {
			env.WriteFile("virtualservice.yaml", e2e.MustMergePatch(d, e2e.SeedReviewsCanary, st.patch))
		}
		wrote := time.Since(began)
		// From the file write to Envoy holding the new weights (config_dump, polled every 20 ms).
		live := wrote + envoy.WaitRouteWeights(d, "reviews", e2e.Subsets(80, "reviews.default.svc.cluster.local", st.want))
		ta := reviews.Send(requests)
		fmt.Printf("%-22s %-14v %-14s v1=%-5d v2=%-5d (v1 %.1f%%, v2 %.1f%%, failures %d)\n",
			st.name, live.Round(time.Millisecond), fmt.Sprintf("%d requests", ta.Total),
			ta.Versions["v1"], ta.Versions["v2"], ta.Share("v1"), ta.Share("v2"), ta.Failures())
	}
	fmt.Println()
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// fatal is the panic value Fatalf uses to unwind to main.
type fatal struct{}

// demoT stands in for *testing.T so the demo can use the e2e harness.
type demoT struct {
	mu       sync.Mutex
	cleanups []func()
	failed   bool
	once     sync.Once
}

var _ e2e.TB = (*demoT)(nil)

func newDemoT() *demoT { return &demoT{} }

func (d *demoT) Helper()      {}
func (d *demoT) Name() string { return "demo" }
func (d *demoT) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...)
}
func (d *demoT) Errorf(format string, args ...any) {
	d.mu.Lock()
	d.failed = true
	d.mu.Unlock()
	d.Logf("error: "+format, args...)
}
func (d *demoT) Fatalf(format string, args ...any) {
	d.Errorf(format, args...)
	panic(fatal{})
}
func (d *demoT) Failed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failed
}
func (d *demoT) Cleanup(f func()) {
	d.mu.Lock()
	d.cleanups = append(d.cleanups, f)
	d.mu.Unlock()
}
func (d *demoT) TempDir() string {
	dir, err := os.MkdirTemp("", "weir-demo-")
	if err != nil {
		d.Fatalf("%v", err)
	}
	d.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// finish runs the cleanups, newest first, and exits.
func (d *demoT) finish(code int) {
	d.once.Do(func() {
		d.mu.Lock()
		cleanups := d.cleanups
		d.cleanups = nil
		d.mu.Unlock()
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		if code == 0 && d.Failed() {
			code = 1
		}
		os.Exit(code)
	})
	select {} // another goroutine is already finishing
}
