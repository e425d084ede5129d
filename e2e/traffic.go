package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/weir-mesh/weir/e2e/backend"
)

// Traffic sends requests with one Host and header set to a sidecar's outbound listener.
type Traffic struct {
	URL         string
	Host        string
	Header      http.Header
	Concurrency int
	client      *http.Client
}

// Traffic targets this sidecar's outbound listener with Host: host. kv are header
// name/value pairs.
func (v *Envoy) Traffic(host string, kv ...string) *Traffic {
	tr := &Traffic{
		URL:         "http://" + v.OutboundAddr() + "/",
		Host:        host,
		Header:      http.Header{},
		Concurrency: 8,
	}
	tr.client = &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 32, DisableCompression: true},
	}
	return tr.With(kv...)
}

// With returns a copy of tr with extra headers (name/value pairs).
func (tr *Traffic) With(kv ...string) *Traffic {
	cp := *tr
	cp.Header = tr.Header.Clone()
	for i := 0; i+1 < len(kv); i += 2 {
		cp.Header.Set(kv[i], kv[i+1])
	}
	return &cp
}

// WithPath returns a copy of tr that requests path (starting with "/").
func (tr *Traffic) WithPath(path string) *Traffic {
	cp := *tr
	cp.Header = tr.Header.Clone()
	base, _, _ := strings.Cut(strings.TrimPrefix(tr.URL, "http://"), "/")
	cp.URL = "http://" + base + path
	return &cp
}

// Result is one request's outcome.
type Result struct {
	Status  int
	Version string // "" if no backend answered (e.g. Envoy's own 503 or 404)
	Proto   string // the protocol the backend saw (HTTP/1.1 or HTTP/2.0)
	Err     error
}

// One sends a single request.
func (tr *Traffic) One() Result {
	req, err := http.NewRequest(http.MethodGet, tr.URL, nil)
	if err != nil {
		return Result{Err: err}
	}
	req.Host = tr.Host
	req.Header = tr.Header.Clone()
	resp, err := tr.client.Do(req)
	if err != nil {
		return Result{Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r := Result{Status: resp.StatusCode, Version: resp.Header.Get(backend.VersionHeader), Err: err}
	var echo backend.Response
	if r.Version != "" && json.Unmarshal(body, &echo) == nil {
		r.Proto = echo.Proto
	}
	return r
}

// Tally counts outcomes of many requests.
type Tally struct {
	mu       sync.Mutex
	Total    int
	Versions map[string]int
	Codes    map[int]int
	Protos   map[string]int // protocol the backends saw
	// VersionProtos counts "version protocol" pairs, e.g. "stable HTTP/2.0".
	VersionProtos map[string]int
	Errors        int
	FirstErrors   []string
}

func newTally() *Tally {
	return &Tally{Versions: map[string]int{}, Codes: map[int]int{}, Protos: map[string]int{}, VersionProtos: map[string]int{}}
}

func (ta *Tally) add(r Result) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.Total++
	if r.Err != nil {
		ta.Errors++
		if len(ta.FirstErrors) < 5 {
			ta.FirstErrors = append(ta.FirstErrors, r.Err.Error())
		}
		return
	}
	ta.Codes[r.Status]++
	ta.Versions[r.Version]++
	if r.Proto != "" {
		ta.Protos[r.Proto]++
		ta.VersionProtos[r.Version+" "+r.Proto]++
	}
}

// Failures counts transport errors and non-200 answers.
func (ta *Tally) Failures() int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return ta.Total - ta.Codes[http.StatusOK]
}

// Share is the percentage of all requests answered by version.
func (ta *Tally) Share(version string) float64 {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if ta.Total == 0 {
		return 0
	}
	return 100 * float64(ta.Versions[version]) / float64(ta.Total)
}

func (ta *Tally) String() string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	var parts []string
	for _, v := range slices.Sorted(maps.Keys(ta.Versions)) {
		name := v
		if name == "" {
			name = "(no backend)"
		}
		parts = append(parts, fmt.Sprintf("%s=%d (%.1f%%)", name, ta.Versions[v], 100*float64(ta.Versions[v])/float64(max(ta.Total, 1))))
	}
	s := fmt.Sprintf("%d requests: %s; codes %v", ta.Total, strings.Join(parts, " "), ta.Codes)
	if ta.Errors > 0 {
		s += fmt.Sprintf("; %d errors, first: %q", ta.Errors, ta.FirstErrors)
	}
	return s
}

// Send sends n requests, Concurrency at a time, and tallies them.
func (tr *Traffic) Send(n int) *Tally {
	ta := newTally()
	work := make(chan struct{}, n)
	for range n {
		work <- struct{}{}
	}
	close(work)
	var wg sync.WaitGroup
	for range max(tr.Concurrency, 1) {
		wg.Go(func() {
			for range work {
				ta.add(tr.One())
			}
		})
	}
	wg.Wait()
	return ta
}

// AssertSplit fails unless every request succeeded and each version's share is within
// tolerance percentage points of want (versions not in want must not answer at all).
func AssertSplit(t TB, what string, ta *Tally, want map[string]float64, tolerancePP float64) {
	t.Helper()
	if f := ta.Failures(); f > 0 {
		t.Errorf("%s: %d of %d requests failed: %s", what, f, ta.Total, ta)
		return
	}
	for v := range ta.Versions {
		if _, ok := want[v]; !ok {
			t.Errorf("%s: version %q answered but should get no traffic: %s", what, v, ta)
		}
	}
	for v, pct := range want {
		got := ta.Share(v)
		if math.Abs(got-pct) > tolerancePP {
			t.Errorf("%s: %s got %.2f%%, want %.0f%% ± %.0f points: %s", what, v, got, pct, tolerancePP, ta)
		}
	}
	t.Logf("%s: %s", what, ta)
}

// AssertAll fails unless every request got 200 from version.
func AssertAll(t TB, what string, ta *Tally, version string) {
	t.Helper()
	if ta.Failures() > 0 || ta.Versions[version] != ta.Total {
		t.Errorf("%s: want all %d requests answered 200 by %s, got %s", what, ta.Total, version, ta)
	}
}

// WaitVersion sends requests back to back until one is answered by version, and returns
// when that answer arrived, measured from since.
func (tr *Traffic) WaitVersion(t TB, version string, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	var last Result
	deadline := since.Add(timeout)
	for time.Now().Before(deadline) {
		last = tr.One()
		if last.Err == nil && last.Status == http.StatusOK && last.Version == version {
			return time.Since(since)
		}
	}
	t.Fatalf("no answer from %s within %v of the change; last: status %d version %q err %v",
		version, timeout, last.Status, last.Version, last.Err)
	return 0
}

// Background is traffic that flows until stopped.
type Background struct {
	stop chan struct{}
	done chan struct{}
	ta   *Tally
}

// Background starts sending requests, paced and bounded (at most maxDuration), until
// Stop. It is stopped at the latest when the test ends.
func (tr *Traffic) Background(t TB, maxDuration time.Duration) *Background {
	bg := &Background{stop: make(chan struct{}), done: make(chan struct{}), ta: newTally()}
	deadline := time.Now().Add(maxDuration)
	go func() {
		defer close(bg.done)
		for time.Now().Before(deadline) {
			select {
			case <-bg.stop:
				return
			default:
			}
			bg.ta.add(tr.One())
			time.Sleep(time.Millisecond) // about 500 requests a second: load, not a flood
		}
	}()
	t.Cleanup(func() { bg.Stop() })
	return bg
}

// Stop ends the traffic and returns its tally.
func (bg *Background) Stop() *Tally {
	select {
	case <-bg.stop:
	default:
		close(bg.stop)
	}
	<-bg.done
	return bg.ta
}

// Tally is the running count so far.
func (bg *Background) Tally() *Tally { return bg.ta }
