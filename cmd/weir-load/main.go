// Command weir-load opens many Envoy-like ADS streams against a local xDS server and
// reports time to first config and how fast an RDS change converges.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/weir-mesh/weir/load"
)

// errIncomplete makes the exit status say that not every stream got what it should.
var errIncomplete = errors.New("not every stream got its config or converged")

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "weir-load:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("weir-load", flag.ContinueOnError)
	var cfg load.Config
	fs.StringVar(&cfg.Target, "target", "127.0.0.1:18000", "ADS server address (loopback only)")
	fs.IntVar(&cfg.Streams, "n", 100, "number of ADS streams")
	fs.IntVar(&cfg.Classes, "classes", 1, "number of proxy classes (stream i gets outbound_port 20000+i%classes)")
	fs.BoolVar(&cfg.Delta, "delta", false, "use incremental xDS instead of state of the world")
	fs.Float64Var(&cfg.Ramp, "ramp", 200, "streams opened per second (0: no limit)")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "bound on the whole run")
	fs.BoolVar(&cfg.WatchChange, "watch-change", false, "after all streams are up, wait for the next RDS change and report its convergence")
	fs.IntVar(&cfg.StreamsPerConn, "streams-per-conn", 100, "ADS streams sharing one gRPC connection")
	fs.StringVar(&cfg.Namespace, "namespace", "default", "namespace in the node metadata")
	jsonPath := fs.String("json", "", "also write the result as JSON to this file")
	verbose := fs.Bool("v", false, "log stream errors")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(*verbose)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.WatchChange {
		cfg.OnAllUp = func() { fmt.Fprintln(os.Stderr, "all streams up; waiting for an RDS change") }
	}
	res, err := load.Run(ctx, log, cfg)
	if err != nil {
		return err
	}
	res.WriteSummary(os.Stdout)
	if *jsonPath != "" {
		if err := res.WriteJSON(*jsonPath); err != nil {
			return err
		}
	}
	if res.Up < res.Streams || (res.Convergence != nil && res.Convergence.Acked < res.Convergence.Streams) {
		return errIncomplete
	}
	return nil
}

func newLogger(verbose bool) (*zap.Logger, error) {
	cfg := zap.NewDevelopmentConfig()
	cfg.DisableStacktrace, cfg.DisableCaller = true, true
	cfg.Level = zap.NewAtomicLevelAt(zap.InfoLevel)
	if verbose {
		cfg.Level = zap.NewAtomicLevelAt(zap.DebugLevel)
	}
	l, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return l, nil
}
