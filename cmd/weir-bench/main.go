// Command weir-bench benchmarks xDS servers with the load package: for each server and
// each stream count it writes a fresh synthetic mesh, starts the server on loopback,
// opens N Envoy-like ADS streams, and measures time to first config, resources at
// steady state, RDS convergence of weight changes, and what endpoint churn sends. It
// writes every figure as JSON and prints a summary table.
//
//	weir-bench -servers weir,reference -n 1000,2000,5000,10000 -out results.json
//	weir-bench -label mesh-check -services 1000 -n 2000 -changes 1 -churn 0 -out mesh.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/weir-mesh/weir/e2e/scenario"
	"github.com/weir-mesh/weir/load"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the parsed flags.
type options struct {
	label          string
	servers        []serverCmd
	ns             []int
	spec           scenario.Spec
	classes        int
	streamsPerConn int
	delta          bool
	ramp           float64
	settle         time.Duration
	steady         time.Duration
	changes        int
	changePause    time.Duration
	changeTimeout  time.Duration
	churn          time.Duration
	churnRate      float64
	churnDrain     time.Duration
	timeout        time.Duration
	startTimeout   time.Duration
	out            string
	keep           bool
	verbose        bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("weir-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	servers := fs.String("servers", "weir,reference", "servers to benchmark, in order: weir and/or reference")
	weirBin := fs.String("weir", "bin/weir", "weir binary")
	weirArgs := fs.String("weir-args", "serve", "arguments given to the weir binary before --config-dir, --xds-address, --admin-address (space-separated)")
	refBin := fs.String("refpeer", "bin/weir-refpeer", "reference server binary")
	refArgs := fs.String("refpeer-args", "", "arguments given to the reference binary before --config-dir, --xds-address, --admin-address (space-separated)")
	ns := fs.String("n", "1000,2000,5000,10000", "stream counts, comma-separated; one run per server and count")
	fs.StringVar(&o.label, "label", "", "label stored with every run (e.g. n-sweep, mesh-check)")
	fs.IntVar(&o.spec.Services, "services", 100, "services in the generated mesh")
	fs.IntVar(&o.spec.Subsets, "subsets", 2, "subsets per service (at least 2 for weight changes)")
	fs.IntVar(&o.spec.Endpoints, "endpoints", 3, "endpoints per subset")
	fs.IntVar(&o.spec.PerFile, "per-file", 1, "services per YAML file (an edit rewrites one file; weir re-parses only changed files)")
	fs.IntVar(&o.classes, "classes", 4, "proxy classes: stream i gets outbound_port 20000+i%classes")
	fs.IntVar(&o.streamsPerConn, "streams-per-conn", 1, "ADS streams per gRPC connection (1: one connection per stream, like real Envoys)")
	fs.BoolVar(&o.delta, "delta", false, "incremental xDS instead of state of the world")
	fs.Float64Var(&o.ramp, "ramp", 500, "streams opened per second (0: no limit)")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "wait after all streams are up, before sampling")
	fs.DurationVar(&o.steady, "steady", 10*time.Second, "steady-state window: server RSS sampled every 500 ms and CPU (0: skip)")
	fs.IntVar(&o.changes, "changes", 3, "weight changes measured one after another (0: skip)")
	fs.DurationVar(&o.changePause, "change-pause", time.Second, "pause between weight changes")
	fs.DurationVar(&o.changeTimeout, "change-timeout", 2*time.Minute, "longest wait for one change to converge")
	fs.DurationVar(&o.churn, "churn", 10*time.Second, "endpoint churn phase length (0: skip)")
	fs.Float64Var(&o.churnRate, "churn-rate", 5, "endpoint changes per second during churn")
	fs.DurationVar(&o.churnDrain, "churn-drain", 2*time.Second, "wait after the last churn write before counting")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on one run (server start to stop)")
	fs.DurationVar(&o.startTimeout, "start-timeout", time.Minute, "longest wait for a server's /healthz")
	fs.StringVar(&o.out, "out", "results.json", "JSON results file (rewritten after every run)")
	fs.BoolVar(&o.keep, "keep", false, "keep every run's temp dir (config and server log); failed runs' are always kept")
	fs.BoolVar(&o.verbose, "v", false, "log the load client's progress and stream errors")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.ns, err = parseInts(*ns); err != nil {
		return nil, fmt.Errorf("-n: %w", err)
	}
	for _, name := range splitList(*servers) {
		switch name {
		case "weir":
			o.servers = append(o.servers, serverCmd{name: "weir", argv: append([]string{*weirBin}, strings.Fields(*weirArgs)...)})
		case "reference", "refpeer":
			o.servers = append(o.servers, serverCmd{name: "reference", argv: append([]string{*refBin}, strings.Fields(*refArgs)...)})
		default:
			return nil, fmt.Errorf("-servers: unknown server %q (want weir or reference)", name)
		}
	}
	switch {
	case len(o.servers) == 0:
		return nil, errors.New("-servers: none given")
	case o.spec.Services < 1 || o.spec.Subsets < 1 || o.spec.Endpoints < 1:
		return nil, errors.New("-services, -subsets and -endpoints must be at least 1")
	case o.changes > 0 && o.spec.Subsets < 2:
		return nil, errors.New("weight changes need -subsets of at least 2")
	case o.churn > 0 && o.churnRate <= 0:
		return nil, errors.New("-churn needs a positive -churn-rate")
	case o.classes < 1 || o.streamsPerConn < 1:
		return nil, errors.New("-classes and -streams-per-conn must be at least 1")
	case o.changes < 0 || o.steady < 0 || o.churn < 0:
		return nil, errors.New("-changes, -steady and -churn must not be negative")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no counts")
	}
	return out, nil
}

func (o *options) settings() Settings {
	s := Settings{Label: o.label, Streams: o.ns, Services: o.spec.Services, Subsets: o.spec.Subsets, Endpoints: o.spec.Endpoints,
		PerFile: o.spec.PerFile, Classes: o.classes, StreamsPerConn: o.streamsPerConn, Ramp: o.ramp, Settle: o.settle.Seconds(), Steady: o.steady.Seconds(),
		Changes: o.changes, ChangePause: o.changePause.Seconds(), ChangeTimeout: o.changeTimeout.Seconds(),
		Churn: o.churn.Seconds(), ChurnRate: o.churnRate, ChurnDrain: o.churnDrain.Seconds(), Timeout: o.timeout.Seconds()}
	for _, c := range o.servers {
		s.Servers = append(s.Servers, c.name)
	}
	return s
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "weir-bench:", err)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := newLogger(o.verbose, stderr)
	defer func() { _ = log.Sync() }()

	out := &Output{Schema: schema, Started: time.Now().UTC(), Machine: machineInfo(), Settings: o.settings()}
	if need := uint64(max(slices.Max(o.ns), 0)) + 256; out.Machine.NoFileLimit < need {
		fmt.Fprintf(stderr, "weir-bench: warning: open-file limit %d is below the %d the largest run needs\n", out.Machine.NoFileLimit, need)
	}
	failed := false
	for _, srv := range o.servers {
		for _, n := range o.ns {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(stderr, "== %s, N=%d, %d services\n", srv.name, n, o.spec.Services)
			r := runOne(ctx, log, o, srv, n, stderr)
			out.Runs = append(out.Runs, r)
			if r.Error != "" {
				failed = true
				fmt.Fprintf(stderr, "   FAILED: %s\n", r.Error)
			}
			if err := out.write(o.out); err != nil {
				fmt.Fprintln(stderr, "weir-bench:", err)
				failed = true
			}
			debug.FreeOSMemory() // so the next run's client peak RSS is its own
		}
	}
	writeSummary(stdout, out)
	fmt.Fprintf(stdout, "results: %s\n", o.out)
	if failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

func newLogger(verbose bool, w io.Writer) *zap.Logger {
	level := zapcore.WarnLevel
	if verbose {
		level = zapcore.DebugLevel
	}
	enc := zap.NewDevelopmentEncoderConfig()
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), level))
}

// runOne runs every phase for one server and stream count. It never returns nil: a
// failure is the record's Error.
func runOne(ctx context.Context, log *zap.Logger, o *options, srv serverCmd, n int, progress io.Writer) *Run {
	r := &Run{Label: o.label, Server: srv.name, N: n, Services: o.spec.Services, Subsets: o.spec.Subsets, Endpoints: o.spec.Endpoints,
		PerFile: o.spec.PerFile, Classes: o.classes, StreamsPerConn: o.streamsPerConn, Started: time.Now().UTC()}
	start := time.Now()
	defer func() { r.Seconds = time.Since(start).Seconds() }()
	fail := func(err error) *Run {
		if r.Error == "" && err != nil {
			r.Error = err.Error()
		}
		return r
	}

	dir, err := os.MkdirTemp("", fmt.Sprintf("weir-bench-%s-%d-", srv.name, n))
	if err != nil {
		return fail(err)
	}
	defer func() {
		if r.Error != "" || o.keep {
			r.Dir = dir
		} else {
			_ = os.RemoveAll(dir)
		}
	}()
	configDir := filepath.Join(dir, "config")
	if err := os.Mkdir(configDir, 0o755); err != nil {
		return fail(err)
	}
	if _, err := scenario.Write(configDir, o.spec); err != nil {
		return fail(err)
	}

	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	// The record names the generated directory, not where this machine put it.
	r.Command = srv.command("CONFIG_DIR", "ADDR", "ADDR")
	s, err := startServer(ctx, srv, configDir, filepath.Join(dir, "server.log"), o.startTimeout)
	if err != nil {
		return fail(err)
	}
	r.Command = slices.Clone(s.argv)
	for i, a := range r.Command {
		if a == configDir {
			r.Command[i] = "CONFIG_DIR"
		}
	}
	r.ServerStartSeconds = time.Since(start).Seconds()
	fmt.Fprintf(progress, "   server up in %s (pid %d, xds %s)\n", sec(r.ServerStartSeconds), s.pid(), s.xds)

	resetPeakRSS()
	client0, _ := cpuTicks(os.Getpid())
	sess, err := load.Start(ctx, log, load.Config{Target: s.xds, Streams: n, Classes: o.classes, Delta: o.delta,
		Ramp: o.ramp, StreamsPerConn: o.streamsPerConn, IDPrefix: "bench-"})
	if err != nil {
		_ = s.stop()
		return fail(err)
	}
	phaseErr := phases(ctx, o, r, sess, s, configDir, progress)

	// The whole run, as the server saw it, before the load goes away.
	res := sess.Result()
	r.FailedStreams, r.Received = res.Failed, sess.Counts()
	if len(res.Errors) > 5 {
		res.Errors = res.Errors[:5]
	}
	r.StreamErrors = res.Errors
	sess.Close()
	client1, _ := cpuTicks(os.Getpid())
	r.ClientCPUSeconds = float64(client1-client0) / clockTicks
	r.ClientPeakRSS, _ = statusBytes(os.Getpid(), "VmHWM")
	r.PeakRSSBytes, _ = statusBytes(s.pid(), "VmHWM")
	if t, err := cpuTicks(s.pid()); err == nil {
		r.CPUSeconds = float64(t) / clockTicks
	}
	select {
	case <-s.exited:
		phaseErr = errors.Join(phaseErr, fmt.Errorf("server exited during the run: %v", s.waitErr))
	default:
	}
	if err := s.stop(); err != nil {
		r.ServerExit = err.Error()
	}
	if phaseErr == nil && res.Failed > 0 {
		phaseErr = fmt.Errorf("%d streams failed, e.g. %s", res.Failed, res.Errors[0])
	}
	return fail(phaseErr)
}

// phases runs, on the live streams, first config, steady state, weight changes and
// churn, filling r; it returns the first failure.
func phases(ctx context.Context, o *options, r *Run, sess *load.Session, s *server, configDir string, progress io.Writer) error {
	up := sess.WaitUp(ctx)
	res := sess.Result()
	r.Up, r.Ramp, r.AllUp, r.FirstConfig = res.Up, res.Ramp, res.AllUp, res.FirstConfig
	if !up {
		msg := fmt.Sprintf("%d of %d streams got their first config", res.Up, res.Streams)
		if res.Failed > 0 {
			msg += fmt.Sprintf("; %d failed, e.g. %s", res.Failed, res.Errors[0])
		}
		return errors.New(msg)
	}
	fmt.Fprintf(progress, "   %d streams opened in %s, all up in %s; first config p50 %s p99 %s max %s\n",
		res.Up, sec(res.Ramp), sec(res.AllUp), sec(res.FirstConfig.P50), sec(res.FirstConfig.P99), sec(res.FirstConfig.Max))
	if err := sleep(ctx, o.settle); err != nil {
		return err
	}

	if o.steady > 0 {
		before := sess.Counts()
		w := sample(s.pid(), o.steady, s.exited)
		r.Steady, r.SteadyResponses = &w, diffCounts(sess.Counts(), before)
		fmt.Fprintf(progress, "   steady: RSS %s max, %s at the end, CPU %.1f%% (client %.1f%%)\n", mibs(w.RSSMaxBytes), mibs(w.RSSEndBytes), 100*w.CPUCores, 100*w.ClientCPUCores)
		if w.ServerExited {
			return errors.New("server exited during the steady window")
		}
	}

	if err := weightChanges(ctx, o, r, sess, configDir, progress); err != nil {
		return err
	}

	if o.churn > 0 {
		ch, err := churn(ctx, o, sess, s, configDir)
		r.Churn = ch
		if err != nil {
			return err
		}
		fmt.Fprintf(progress, "   churn: %d writes; responses cds %d eds %d lds %d rds %d, %s; server CPU %.1f%%\n", ch.Writes,
			ch.Responses["cds"].Responses, ch.Responses["eds"].Responses, ch.Responses["lds"].Responses, ch.Responses["rds"].Responses,
			mibs(totalBytes(ch.Responses)), 100*ch.Window.CPUCores)
	}
	return ctx.Err()
}

// weightChanges changes the weights of one service after another and waits for each
// change's RDS to converge on every stream.
func weightChanges(ctx context.Context, o *options, r *Run, sess *load.Session, configDir string, progress io.Writer) error {
	if o.changes == 0 {
		return nil
	}
	current := map[int][]int{}
	var convs []*load.Convergence
	defer func() {
		if len(r.Changes) == 0 {
			return
		}
		sum := &ChangeSummary{Changes: len(r.Changes)}
		for _, c := range r.Changes {
			if c.Convergence.Complete() {
				sum.Complete++
			}
		}
		sum.FromChange, sum.FromFirstReceipt = load.Pool(convs...)
		r.Change = sum
	}()
	for c := range o.changes {
		if c > 0 {
			if err := sleep(ctx, o.changePause); err != nil {
				return err
			}
		}
		svc := c % o.spec.Services
		cur, ok := current[svc]
		if !ok {
			cur = initialWeights(o.spec.Subsets)
		}
		w := nextWeights(c, o.spec.Subsets, cur)
		before := sess.Counts()
		since := time.Now()
		if err := scenario.SetWeights(configDir, o.spec, svc, w); err != nil {
			return err
		}
		current[svc] = w
		cctx, cancel := context.WithTimeout(ctx, o.changeTimeout)
		conv := sess.WaitChange(cctx, resourcev3.RouteType, since)
		cancel()
		convs = append(convs, conv)
		r.Changes = append(r.Changes, &Change{Service: svc, Weights: w, Convergence: conv, Responses: diffCounts(sess.Counts(), before)})
		fmt.Fprintf(progress, "   change %d (%s -> %v): %d/%d acked; from change p50 %s p99 %s max %s\n", c+1, scenario.Name(svc), w,
			conv.Acked, conv.Streams, sec(conv.FromChange.P50), sec(conv.FromChange.P99), sec(conv.FromChange.Max))
		if !conv.Complete() {
			msg := fmt.Sprintf("change %d: %d of %d streams ACKed the new routes (%d received, %d failed)", c+1, conv.Acked, conv.Streams, conv.Received, conv.Failed)
			if conv.Error != "" {
				msg += ": " + conv.Error
			}
			return errors.New(msg)
		}
	}
	return nil
}

// churn moves endpoints at o.churnRate per second for o.churn, waits o.churnDrain, and
// returns what the streams received meanwhile.
func churn(ctx context.Context, o *options, sess *load.Session, s *server, configDir string) (*Churn, error) {
	ch := &Churn{Rate: o.churnRate, DrainSeconds: o.churnDrain.Seconds()}
	writes := max(1, int(o.churn.Seconds()*o.churnRate))
	interval := time.Duration(float64(time.Second) / o.churnRate)
	before := sess.Counts()
	start := time.Now()
	sampled := make(chan window, 1)
	go func() { sampled <- sample(s.pid(), o.churn+o.churnDrain, s.exited) }()
	defer func() {
		ch.Window = <-sampled
		ch.Seconds = time.Since(start).Seconds()
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for k := range writes {
		if k > 0 {
			if err := waitTick(ctx, t.C); err != nil {
				return ch, err
			}
		}
		if err := scenario.ShiftEndpoint(configDir, o.spec, k%o.spec.Services, k); err != nil {
			return ch, err
		}
		ch.Writes++
	}
	if err := waitTick(ctx, t.C); err != nil { // the last write's share of the phase
		return ch, err
	}
	if err := sleep(ctx, o.churnDrain); err != nil {
		return ch, err
	}
	ch.Responses = diffCounts(sess.Counts(), before)
	return ch, nil
}

// initialWeights are the weights scenario.Write gives: even, the remainder on v1.
func initialWeights(subsets int) []int {
	w := make([]int, subsets)
	for i := range w {
		w[i] = 100 / subsets
	}
	w[0] += 100 % subsets
	return w
}

// nextWeights gives change c a split that differs from cur: v1 gets between 10 and 90
// percent, the others share the rest.
func nextWeights(c, subsets int, cur []int) []int {
	for k := 0; ; k++ {
		w := make([]int, subsets)
		w[0] = 10 + ((c+k)*37)%81
		rest, others := 100-w[0], subsets-1
		for i := 1; i < subsets; i++ {
			w[i] = rest / others
		}
		w[1] += rest % others
		if !slices.Equal(w, cur) {
			return w
		}
	}
}

func diffCounts(after, before map[string]load.Counters) map[string]load.Counters {
	out := make(map[string]load.Counters, len(after))
	for k, v := range after {
		out[k] = v.Sub(before[k])
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func waitTick(ctx context.Context, c <-chan time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c:
		return nil
	}
}
