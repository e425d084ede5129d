package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/weir-mesh/weir/pipeline"
	"github.com/weir-mesh/weir/watchers/file"
	"github.com/weir-mesh/weir/xds"
)

// helperEnv makes the test binary a small xDS server instead of running tests: the
// end-to-end test uses it as the server under benchmark.
const helperEnv = "WEIR_BENCH_TEST_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		if err := helperServer(os.Args[1:]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperServer is weir serve reduced to what the driver relies on: the same flags, ADS
// from a watched directory, /healthz, and an orderly exit on SIGTERM. It has no /readyz.
func helperServer(args []string) error {
	fs := flag.NewFlagSet("helper", flag.ContinueOnError)
	dir := fs.String("config-dir", "", "")
	xdsAddr := fs.String("xds-address", "", "")
	adminAddr := fs.String("admin-address", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := zap.NewNop()
	srv := xds.New(ctx, log, nil, xds.Options{StageTimeout: 2 * time.Second})
	pipe := pipeline.New(log, srv, nil)
	srv.OnClass(pipe.AddClass)
	srv.OnClassGone(pipe.RemoveClass)
	xl, err := net.Listen("tcp", *xdsAddr)
	if err != nil {
		return err
	}
	al, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	go func() { _ = http.Serve(al, mux) }()
	go pipe.Run(ctx)
	go func() { _ = file.NewWatcher(*dir, log).Run(ctx, pipe.Update) }()
	go func() { _ = srv.Serve(xl) }()
	<-ctx.Done()
	return nil
}

func TestBenchRunsEveryPhaseAndWritesResults(t *testing.T) {
	t.Setenv(helperEnv, "1")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "r.json")
	var stdout, stderr strings.Builder
	code := run([]string{"-servers", "weir,reference", "-weir", self, "-weir-args", "", "-refpeer", "/nonexistent/weir-refpeer",
		"-n", "10,20", "-services", "3", "-classes", "2", "-ramp", "0", "-settle", "100ms", "-steady", "600ms",
		"-changes", "2", "-change-pause", "100ms", "-churn", "1s", "-churn-rate", "4", "-churn-drain", "500ms",
		"-timeout", "60s", "-out", out}, &stdout, &stderr)
	t.Log(stderr.String())
	t.Log(stdout.String())
	if code != 1 {
		t.Errorf("exit code = %d, want 1: the reference binary does not exist", code)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var o Output
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	if o.Schema != schema || o.Machine.Cores < 1 || o.Machine.GoVersion == "" || len(o.Runs) != 4 {
		t.Fatalf("output: schema %q, machine %+v, %d runs", o.Schema, o.Machine, len(o.Runs))
	}
	for _, r := range o.Runs[:2] {
		if r.Error != "" {
			t.Fatalf("%s N=%d: %s", r.Server, r.N, r.Error)
		}
		if r.Up != r.N || r.FirstConfig.Count != r.N || r.AllUp <= 0 {
			t.Errorf("N=%d: up %d, first config %+v, all up %v", r.N, r.Up, r.FirstConfig, r.AllUp)
		}
		if r.Steady == nil || r.Steady.RSSMaxBytes == 0 || r.Steady.Samples < 2 || r.PeakRSSBytes < r.Steady.RSSMaxBytes || r.CPUSeconds <= 0 {
			t.Errorf("N=%d: steady %+v, peak RSS %d, CPU %v", r.N, r.Steady, r.PeakRSSBytes, r.CPUSeconds)
		}
		if len(r.Changes) != 2 || r.Change == nil || r.Change.Complete != 2 || r.Change.FromChange.Count != 2*r.N {
			t.Errorf("N=%d: changes %+v, summary %+v", r.N, r.Changes, r.Change)
		}
		for _, c := range r.Changes {
			if c.Responses["rds"].Responses < int64(r.N) || c.Responses["cds"].Responses != 0 {
				t.Errorf("N=%d: change of %d caused %+v", r.N, c.Service, c.Responses)
			}
		}
		if ch := r.Churn; ch == nil || ch.Writes != 4 || ch.Responses["eds"].Responses == 0 || ch.Responses["rds"].Responses != 0 {
			t.Errorf("N=%d: churn %+v", r.N, ch)
		}
		if r.Dir != "" {
			t.Errorf("the temp dir of a good run was kept: %s", r.Dir)
		}
	}
	for _, r := range o.Runs[2:] {
		if r.Server != "reference" || !strings.Contains(r.Error, "no such file") || r.Dir == "" {
			t.Errorf("run of a missing binary: server %s, error %q, dir %q", r.Server, r.Error, r.Dir)
		}
		_ = os.RemoveAll(r.Dir)
	}
	if !strings.Contains(stdout.String(), "FAILED reference N=10") {
		t.Error("the summary does not show the failed run")
	}
}

// With -churn 0 and -changes 0, as a mesh check may run, those phases are skipped.
func TestZeroSkipsPhases(t *testing.T) {
	t.Setenv(helperEnv, "1")
	self, _ := os.Executable()
	out := filepath.Join(t.TempDir(), "r.json")
	code := run([]string{"-servers", "weir", "-weir", self, "-weir-args", "", "-n", "5", "-services", "2",
		"-settle", "0", "-steady", "0", "-changes", "0", "-churn", "0", "-out", out}, io.Discard, io.Discard)
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	b, _ := os.ReadFile(out)
	var o Output
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	if r := o.Runs[0]; r.Up != 5 || r.Steady != nil || r.Changes != nil || r.Change != nil || r.Churn != nil {
		t.Errorf("run = %+v; want only first config", r)
	}
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and a parenthesis must not shift the fields.
	stat := "1234 (weir (x) y) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 0 0\n"
	got, err := parseStatTicks([]byte(stat))
	if err != nil || got != 325 {
		t.Errorf("ticks = %d, %v; want 325", got, err)
	}
	if _, err := parseStatTicks([]byte("1234 (weir) S 1")); err == nil {
		t.Error("a short stat was accepted")
	}
	status := "Name:\tweir\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n"
	if rss, err := parseStatusField([]byte(status), "VmRSS"); err != nil || rss != 100<<20 {
		t.Errorf("VmRSS = %d, %v", rss, err)
	}
	if _, err := parseStatusField([]byte(status), "VmSwap"); err == nil {
		t.Error("a missing field was found")
	}
	// This process, for real.
	if ticks, err := cpuTicks(os.Getpid()); err != nil || ticks < 0 {
		t.Errorf("own ticks = %d, %v", ticks, err)
	}
	if rss, err := statusBytes(os.Getpid(), "VmRSS"); err != nil || rss <= 0 {
		t.Errorf("own RSS = %d, %v", rss, err)
	}
}

func TestNextWeightsAlwaysChange(t *testing.T) {
	for _, subsets := range []int{2, 3, 7} {
		cur := initialWeights(subsets)
		for c := range 200 {
			w := nextWeights(c, subsets, cur)
			sum := 0
			for _, x := range w {
				sum += x
				if x < 0 {
					t.Fatalf("negative weight %v", w)
				}
			}
			if sum != 100 || len(w) != subsets || slices.Equal(w, cur) {
				t.Fatalf("subsets %d change %d: %v after %v", subsets, c, w, cur)
			}
			cur = w
		}
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"-servers", "weir, refpeer", "-n", "1000,2000", "-weir", "/x/weir", "-refpeer-args", "-log-level warn"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.servers) != 2 || o.servers[1].name != "reference" || !slices.Equal(o.ns, []int{1000, 2000}) {
		t.Errorf("servers %+v, n %v", o.servers, o.ns)
	}
	if got := o.servers[0].command("D", "X", "A"); !slices.Equal(got, []string{"/x/weir", "serve", "--config-dir", "D", "--xds-address", "X", "--admin-address", "A"}) {
		t.Errorf("weir command = %q", got)
	}
	if got := o.servers[1].command("D", "X", "A"); !slices.Equal(got[:3], []string{"bin/weir-refpeer", "-log-level", "warn"}) {
		t.Errorf("reference command = %q", got)
	}
	for _, bad := range [][]string{
		{"-servers", "envoy"}, {"-n", "0"}, {"-n", "x"}, {"-subsets", "1"}, {"-churn-rate", "0"}, {"extra"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
	if _, err := parseFlags([]string{"-subsets", "1", "-changes", "0"}, io.Discard); err != nil {
		t.Errorf("one subset without weight changes: %v", err)
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}
