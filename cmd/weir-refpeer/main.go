// Command weir-refpeer serves a directory of YAML over ADS the way most Go control planes
// start: go-control-plane's snapshot cache with one snapshot per node id, fed by weir's
// translator. Benchmarks run it next to weir to compare weir's cache with that design.
//
// It is a benchmark tool: it listens on loopback only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/weir-mesh/weir/load/refpeer"
	"github.com/weir-mesh/weir/watchers/file"
)

// errNotLoopback is returned for a listen address outside 127.0.0.0/8 and ::1.
var errNotLoopback = errors.New("must be a loopback IP address (127.0.0.0/8 or ::1): weir-refpeer is a benchmark tool")

// options are the command line flags.
type options struct {
	configDir string
	xdsAddr   string
	adminAddr string
	logLevel  string
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err == nil {
		err = run(opts)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "weir-refpeer:", err)
		os.Exit(1)
	}
}

// parseFlags reads and checks the flags.
func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("weir-refpeer", flag.ContinueOnError)
	fs.StringVar(&o.configDir, "config-dir", "", "directory of YAML to serve, read recursively and watched for changes (required)")
	fs.StringVar(&o.xdsAddr, "xds-address", "127.0.0.1:18100", "loopback address of the ADS gRPC server")
	fs.StringVar(&o.adminAddr, "admin-address", "127.0.0.1:18101", "loopback address of the admin HTTP server (/healthz, /metrics)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.configDir == "" {
		return o, errors.New("--config-dir is required")
	}
	if st, err := os.Stat(o.configDir); err != nil || !st.IsDir() {
		return o, fmt.Errorf("config dir %s: not a readable directory", o.configDir)
	}
	if err := checkLoopback(o.xdsAddr); err != nil {
		return o, fmt.Errorf("--xds-address: %w", err)
	}
	if err := checkLoopback(o.adminAddr); err != nil {
		return o, fmt.Errorf("--admin-address: %w", err)
	}
	return o, nil
}

// checkLoopback accepts host:port where host is a loopback IP literal.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q: %w", addr, errNotLoopback)
	}
	return nil
}

// run serves until SIGINT or SIGTERM, or until a server fails.
func run(o options) error {
	log, err := newLogger(o.logLevel)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	xdsLis, err := net.Listen("tcp", o.xdsAddr)
	if err != nil {
		return fmt.Errorf("listen xds on %s: %w", o.xdsAddr, err)
	}
	adminLis, err := net.Listen("tcp", o.adminAddr)
	if err != nil {
		_ = xdsLis.Close()
		return fmt.Errorf("listen admin on %s: %w", o.adminAddr, err)
	}

	peer := refpeer.New(log.Named("refpeer"))
	adminSrv := &http.Server{Handler: peer.Handler(), ReadHeaderTimeout: 5 * time.Second}
	watcher := file.NewWatcher(o.configDir, log.Named("file"))

	errc := make(chan error, 3)
	go func() {
		if err := watcher.Run(ctx, peer.Update); err != nil {
			errc <- fmt.Errorf("watch %s: %w", o.configDir, err)
		}
	}()
	go func() {
		if err := peer.Serve(ctx, xdsLis); err != nil {
			errc <- err
		}
	}()
	go func() {
		if err := adminSrv.Serve(adminLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve admin: %w", err)
		}
	}()
	log.Info("weir-refpeer serving", zap.String("config_dir", o.configDir),
		zap.String("xds_address", xdsLis.Addr().String()), zap.String("admin_address", adminLis.Addr().String()))

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = adminSrv.Shutdown(shutdownCtx)
	log.Info("weir-refpeer stopped")
	return err
}

// newLogger builds a console logger at level.
func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	cfg := zap.NewDevelopmentConfig()
	cfg.DisableStacktrace, cfg.DisableCaller = true, true
	cfg.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	l, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return l, nil
}
