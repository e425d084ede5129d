// Package admin serves weir's admin HTTP API: health, readiness, Prometheus metrics and
// debug views of connected proxies and config diagnostics.
package admin

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weir-mesh/weir/model"
	"github.com/weir-mesh/weir/xds"
)

// Sources is what the admin API reads; each field may be nil.
type Sources struct {
	Ready       func() bool
	Proxies     func() []xds.ProxyStatus
	Diagnostics func() []model.Diagnostic
	// Config returns what one proxy (by node id) is served, by short type name.
	Config   func(nodeID string) (map[string][]types.Resource, error)
	Gatherer prometheus.Gatherer
	Rollouts Rollouts
}

// Handler returns the admin API's routes.
func Handler(src Sources) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if src.Ready == nil || !src.Ready() {
			http.Error(w, "not ready: inputs not read yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if src.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(src.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /debug/proxies", func(w http.ResponseWriter, _ *http.Request) {
		proxies := []xds.ProxyStatus{}
		if src.Proxies != nil {
			proxies = src.Proxies()
		}
		writeJSON(w, map[string]any{"proxies": proxies})
	})
	mux.HandleFunc("GET /debug/diagnostics", func(w http.ResponseWriter, _ *http.Request) {
		diags := []model.Diagnostic{}
		if src.Diagnostics != nil {
			diags = append(diags, src.Diagnostics()...)
		}
		writeJSON(w, map[string]any{"diagnostics": diags})
	})
	if src.Config != nil {
		mux.Handle("GET /debug/config", configHandler(src.Config))
	}
	if src.Rollouts != nil {
		rolloutRoutes(mux, src.Rollouts)
	}
	// Go's profiler, for "where do the CPU and memory go" at scale.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
