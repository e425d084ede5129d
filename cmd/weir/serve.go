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
	"path/filepath"
	"syscall"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weir-mesh/weir/admin"
	"github.com/weir-mesh/weir/model"
	"github.com/weir-mesh/weir/pipeline"
	"github.com/weir-mesh/weir/rollout"
	"github.com/weir-mesh/weir/rollout/envoystats"
	promprovider "github.com/weir-mesh/weir/rollout/prometheus"
	"github.com/weir-mesh/weir/translator"
	"github.com/weir-mesh/weir/watchers/file"
	"github.com/weir-mesh/weir/watchers/join"
	"github.com/weir-mesh/weir/watchers/kube"
	"github.com/weir-mesh/weir/xds"
)

func serve(args []string) error {
	fs := flag.NewFlagSet("weir serve", flag.ContinueOnError)
	configDir := fs.String("config-dir", "examples/canary", "directory of YAML to serve (read recursively, watched for changes)")
	xdsAddr := fs.String("xds-address", "127.0.0.1:18000", "address of the ADS gRPC server")
	adminAddr := fs.String("admin-address", "127.0.0.1:18001", "address of the admin HTTP server (/healthz, /readyz, /metrics, /debug/...)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "console", "console or json")
	stageTimeout := fs.Duration("stage-timeout", 5*time.Second, "longest wait for proxies to ACK one make-before-break stage")
	rolloutState := fs.String("rollout-state", "", "file that keeps rollout state across restarts (default: <config-dir>.weir-rollouts.json, beside the config directory)")
	sendBudget := fs.Int("send-budget-mib", 64, "MiB of responses sent and not yet ACKed, across all proxies (0: unbounded); bounds memory when many proxies connect at once")
	kubeconfig := fs.String("kubeconfig", "", "read the cluster this kubeconfig names (Services, EndpointSlices, Pods, TLS Secrets, Istio objects, Rollouts); with --config-dir, both are served")
	inCluster := fs.Bool("in-cluster", false, "read the cluster weir runs in, with its service account (instead of --kubeconfig)")
	kubeNamespace := fs.String("kube-namespace", "", "read only this namespace of the cluster (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	useKube := *kubeconfig != "" || *inCluster
	useFiles := !useKube || flagSet(fs, "config-dir")
	log, err := newLogger(*logLevel, *logFormat)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if st, err := os.Stat(*configDir); useFiles && (err != nil || !st.IsDir()) {
		return fmt.Errorf("config dir %s: not a readable directory", *configDir)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *rolloutState == "" {
		*rolloutState = filepath.Clean(*configDir) + ".weir-rollouts.json"
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The proxies send their stats to weir's xDS port (Envoy's metrics service): the
	// rollouts' built-in metrics need nothing else.
	stats := envoystats.NewSink(log.Named("envoystats"), reg)
	srv := xds.New(ctx, log.Named("xds"), reg, xds.Options{StageTimeout: *stageTimeout, SendBudget: budgetBytes(*sendBudget),
		Services: []func(grpc.ServiceRegistrar){stats.Register}})
	pipe := pipeline.New(log.Named("pipeline"), srv, reg)
	srv.OnClass(pipe.AddClass)
	srv.OnClassGone(pipe.RemoveClass)
	ctrl, err := rollout.NewController(log.Named("rollout"), router{pipe, srv},
		rollout.Providers{Builtin: stats, Prometheus: promprovider.New()},
		rollout.FileStore{Path: *rolloutState}, reg)
	if err != nil {
		return err
	}
	pipe.SetOverlay(ctrl.Overlay)

	xdsLis, err := net.Listen("tcp", *xdsAddr)
	if err != nil {
		return fmt.Errorf("listen xds: %w", err)
	}
	adminLis, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		return fmt.Errorf("listen admin: %w", err)
	}
	adminSrv := &http.Server{
		Handler: admin.Handler(admin.Sources{
			Ready: pipe.Ready, Proxies: srv.Proxies, Diagnostics: pipe.Diagnostics, Config: srv.Config, Gatherer: reg,
			Rollouts: ctrl,
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}

	var sources []source
	if useFiles {
		sources = append(sources, file.NewWatcher(*configDir, log.Named("file"), file.WithRegisterer(reg)))
	}
	if useKube {
		w, err := kubeWatcher(*kubeconfig, *kubeNamespace, log.Named("kube"))
		if err != nil {
			return err
		}
		sources = append(sources, w)
	}
	errc := make(chan error, 2+len(sources))
	go pipe.Run(ctx)
	go ctrl.Run(ctx)
	go trimMemory(ctx, log.Named("memory"))
	publish := join.Sources(len(sources), func(snap *model.Snapshot) {
		ctrl.Update(snap)
		pipe.Update(snap)
	})
	for i, src := range sources {
		go func() { errc <- src.Run(ctx, publish[i]) }()
	}
	go func() { errc <- srv.Serve(xdsLis) }()
	go func() {
		if err := adminSrv.Serve(adminLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve admin: %w", err)
		}
	}()
	log.Info("weir serving", zap.String("version", version), zap.Bool("files", useFiles), zap.String("config_dir", *configDir),
		zap.Bool("kubernetes", useKube), zap.String("rollout_state", *rolloutState),
		zap.String("xds_address", xdsLis.Addr().String()), zap.String("admin_address", adminLis.Addr().String()))

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = adminSrv.Shutdown(shutdownCtx)
	log.Info("weir stopped")
	return err
}

// source is where snapshots come from: a config directory or a cluster.
type source interface {
	Run(ctx context.Context, publish func(*model.Snapshot)) error
}

// kubeWatcher connects to the cluster a kubeconfig names, or, without one, to the
// cluster weir runs in.
func kubeWatcher(kubeconfig, namespace string, log *zap.Logger) (*kube.Watcher, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes config: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return kube.NewWatcher(dyn, log, kube.WithNamespace(namespace)), nil
}

// flagSet reports whether a flag was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// router connects the rollout controller to the pipeline (which applies its weights) and
// to the xDS server (which knows which proxies run them).
type router struct {
	pipe *pipeline.Pipeline
	srv  *xds.Server
}

func (r router) Refresh() uint64   { return r.pipe.Refresh() }
func (r router) Published() uint64 { return r.pipe.Published() }
func (r router) Pending(host string) []string {
	return r.srv.Pending(resourcev3.RouteType, translator.RouteConfigName(host))
}

// budgetBytes turns the flag's MiB into xds.Options.SendBudget, where negative means
// unbounded.
func budgetBytes(mib int) int64 {
	if mib <= 0 {
		return -1
	}
	return int64(mib) << 20
}

func newLogger(level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	if format == "console" {
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
	} else if format != "json" {
		return nil, fmt.Errorf("log format %q: want console or json", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.DisableCaller = true
	return cfg.Build()
}
