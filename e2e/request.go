package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/weir-mesh/weir/e2e/backend"
)

// Request is one HTTP request to a sidecar's outbound listener, for checks that look at
// more than which version answered: the method, path and headers, what the backend saw,
// the response's headers, redirects (never followed) and how long the answer took.
type Request struct {
	Method string // default GET
	Path   string // default /
	Host   string
	Header http.Header
}

// Response is what the client got. Echo is what the backend saw, nil when no backend
// answered (a redirect, a direct response, an injected fault, Envoy's own error).
type Response struct {
	Status int
	Header http.Header
	Body   string
	Echo   *backend.Response
	Took   time.Duration
	Err    error
}

// requestClient never follows redirects: a test looks at the redirect itself.
var requestClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// Do sends one request to this sidecar's outbound listener.
func (v *Envoy) Do(r Request) Response {
	method, path := r.Method, r.Path
	if method == "" {
		method = http.MethodGet
	}
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequest(method, "http://"+v.OutboundAddr()+path, nil)
	if err != nil {
		return Response{Err: err}
	}
	req.Host = r.Host
	if r.Header != nil {
		req.Header = r.Header.Clone()
	}
	start := time.Now()
	resp, err := requestClient.Do(req)
	if err != nil {
		return Response{Err: err, Took: time.Since(start)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	out := Response{Status: resp.StatusCode, Header: resp.Header, Body: string(body), Took: time.Since(start), Err: err}
	// The body, not the version header, says a backend answered: a route may remove the
	// header.
	var echo backend.Response
	if json.Unmarshal(body, &echo) == nil && echo.Version != "" {
		out.Echo = &echo
	}
	return out
}

// DoMany sends n copies of r, concurrency at a time, and returns every response.
func (v *Envoy) DoMany(r Request, n, concurrency int) []Response {
	out := make([]Response, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range max(concurrency, 1) {
		wg.Go(func() {
			for i := range next {
				out[i] = v.Do(r)
			}
		})
	}
	wg.Wait()
	return out
}
