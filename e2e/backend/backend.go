// Package backend is a tiny HTTP service for end-to-end tests and demos: it says which
// version answered, echoes the request, and can be told to fail or slow down at run time.
package backend

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ControlPrefix is the path prefix of the control endpoints. Requests under it are not
// counted and never fail or slow down.
const ControlPrefix = "/_weir/"

// VersionHeader carries the answering backend's version on every response.
const VersionHeader = "x-weir-version"

// Response is the JSON body of every answered request.
type Response struct {
	Version string              `json:"version"`
	Name    string              `json:"name"`
	Addr    string              `json:"addr"`
	Proto   string              `json:"proto"`
	Method  string              `json:"method"`
	Host    string              `json:"host"`
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
	// Request is this request's number, counted from 1 since start or the last Reset.
	Request int64 `json:"request"`
	Status  int   `json:"status"`
	// SNI and ClientCert (the client certificate's common name) are set over TLS only.
	SNI        string `json:"sni,omitempty"`
	ClientCert string `json:"client_cert,omitempty"`
}

// Behavior is what the backend does to the requests it serves.
type Behavior struct {
	// FailStatus, if non-zero, is the status returned by failing requests.
	FailStatus int
	// FailEvery fails every k-th request (1: all of them). Zero never fails.
	FailEvery int
	// Delay is added before answering each request.
	Delay time.Duration
}

// MarshalJSON writes Delay as a duration string ("250ms") rather than nanoseconds.
func (bh Behavior) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		FailStatus int    `json:"fail_status"`
		FailEvery  int    `json:"fail_every"`
		Delay      string `json:"delay"`
	}{bh.FailStatus, bh.FailEvery, bh.Delay.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (bh *Behavior) UnmarshalJSON(data []byte) error {
	var raw struct {
		FailStatus int    `json:"fail_status"`
		FailEvery  int    `json:"fail_every"`
		Delay      string `json:"delay"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	d, err := time.ParseDuration(raw.Delay)
	if err != nil && raw.Delay != "" {
		return fmt.Errorf("delay: %w", err)
	}
	*bh = Behavior{FailStatus: raw.FailStatus, FailEvery: raw.FailEvery, Delay: d}
	return nil
}

// Stats counts what the backend has served since start or the last Reset.
type Stats struct {
	Version  string   `json:"version"`
	Requests int64    `json:"requests"`
	Failed   int64    `json:"failed"`
	Behavior Behavior `json:"behavior"`
}

// Backend is one running server. Its methods are safe for concurrent use.
type Backend struct {
	version string
	name    string

	ln  net.Listener
	srv *http.Server

	mu       sync.Mutex
	behavior Behavior

	requests atomic.Int64
	failed   atomic.Int64
}

// Start listens on addr (host:port; port 0 picks one) and serves HTTP/1.1 and
// cleartext HTTP/2 (h2c, prior knowledge) on the same port.
func Start(addr, version, name string) (*Backend, error) {
	b, err := listen(addr, version, name)
	if err != nil {
		return nil, err
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	b.srv.Protocols = &protocols
	go func() { _ = b.srv.Serve(b.ln) }()
	return b, nil
}

// StartTLS is Start over TLS: HTTP/1.1 and HTTP/2 (by ALPN) with cfg's certificates and,
// if cfg asks for them, client certificates. Answers then say which server name the
// client sent (SNI) and which client certificate it presented.
func StartTLS(addr, version, name string, cfg *tls.Config) (*Backend, error) {
	b, err := listen(addr, version, name)
	if err != nil {
		return nil, err
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	b.srv.Protocols = &protocols
	b.srv.TLSConfig = cfg.Clone()
	go func() { _ = b.srv.ServeTLS(b.ln, "", "") }()
	return b, nil
}

func listen(addr, version, name string) (*Backend, error) {
	if name == "" {
		name = version
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", name, err)
	}
	b := &Backend{version: version, name: name, ln: ln}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	return b, nil
}

// Addr is the host:port the backend listens on.
func (b *Backend) Addr() string { return b.ln.Addr().String() }

// Port is the TCP port the backend listens on.
func (b *Backend) Port() int { return b.ln.Addr().(*net.TCPAddr).Port }

// Version is the version this backend reports.
func (b *Backend) Version() string { return b.version }

// Close stops the server at once, dropping open connections.
func (b *Backend) Close() error {
	err := b.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for in-flight requests.
func (b *Backend) Shutdown(ctx context.Context) error { return b.srv.Shutdown(ctx) }

// SetBehavior replaces the failure and delay settings.
func (b *Backend) SetBehavior(bh Behavior) {
	b.mu.Lock()
	b.behavior = bh
	b.mu.Unlock()
}

// Fail makes every k-th request (k=1: every request) answer with status.
func (b *Backend) Fail(status, every int) {
	b.mu.Lock()
	b.behavior.FailStatus, b.behavior.FailEvery = status, every
	b.mu.Unlock()
}

// Heal stops injected failures.
func (b *Backend) Heal() { b.Fail(0, 0) }

// SetDelay delays every answer by d.
func (b *Backend) SetDelay(d time.Duration) {
	b.mu.Lock()
	b.behavior.Delay = d
	b.mu.Unlock()
}

// Reset clears behavior and counters.
func (b *Backend) Reset() {
	b.SetBehavior(Behavior{})
	b.requests.Store(0)
	b.failed.Store(0)
}

// Stats reports the counters and current behavior.
func (b *Backend) Stats() Stats {
	b.mu.Lock()
	bh := b.behavior
	b.mu.Unlock()
	return Stats{Version: b.version, Requests: b.requests.Load(), Failed: b.failed.Load(), Behavior: bh}
}

// Requests is the number of requests served (control requests excluded).
func (b *Backend) Requests() int64 { return b.requests.Load() }

// ServeHTTP answers a request, or a control request under ControlPrefix.
func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Path) >= len(ControlPrefix) && r.URL.Path[:len(ControlPrefix)] == ControlPrefix {
		b.serveControl(w, r)
		return
	}
	n := b.requests.Add(1)
	b.mu.Lock()
	bh := b.behavior
	b.mu.Unlock()
	if bh.Delay > 0 {
		select {
		case <-time.After(bh.Delay):
		case <-r.Context().Done():
			return
		}
	}
	status := http.StatusOK
	if bh.FailStatus != 0 && bh.FailEvery > 0 && n%int64(bh.FailEvery) == 0 {
		status = bh.FailStatus
		b.failed.Add(1)
	}
	resp := Response{
		Version: b.version,
		Name:    b.name,
		Addr:    b.Addr(),
		Proto:   r.Proto,
		Method:  r.Method,
		Host:    r.Host,
		Path:    r.URL.Path,
		Headers: r.Header,
		Request: n,
		Status:  status,
	}
	if r.TLS != nil {
		resp.SNI = r.TLS.ServerName
		if len(r.TLS.PeerCertificates) > 0 {
			resp.ClientCert = r.TLS.PeerCertificates[0].Subject.CommonName
		}
	}
	b.writeJSON(w, status, resp)
}

// serveControl handles:
//
//	GET  /_weir/stats
//	POST /_weir/reset
//	POST /_weir/behavior?fail_status=503&fail_every=1&delay=200ms   (absent keys: unchanged)
func (b *Backend) serveControl(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case ControlPrefix + "stats":
	case ControlPrefix + "reset":
		b.Reset()
	case ControlPrefix + "behavior":
		if err := b.applyQuery(r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	b.writeJSON(w, http.StatusOK, b.Stats())
}

func (b *Backend) applyQuery(r *http.Request) error {
	q := r.URL.Query()
	b.mu.Lock()
	defer b.mu.Unlock()
	bh := b.behavior
	for key, dst := range map[string]*int{"fail_status": &bh.FailStatus, "fail_every": &bh.FailEvery} {
		if v := q.Get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("%s: want a non-negative integer, got %q", key, v)
			}
			*dst = n
		}
	}
	if q.Get("fail_status") != "" && q.Get("fail_every") == "" && bh.FailStatus != 0 && bh.FailEvery == 0 {
		bh.FailEvery = 1 // "fail with 503" alone means every request
	}
	if v := q.Get("delay"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("delay: want a duration such as 200ms, got %q", v)
		}
		bh.Delay = d
	}
	b.behavior = bh
	return nil
}

func (b *Backend) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(VersionHeader, b.version)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
