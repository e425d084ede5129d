package backend

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

func start(t *testing.T, version string) *Backend {
	t.Helper()
	b, err := Start("127.0.0.1:0", version, "reviews-"+version)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func client(h2c bool) *http.Client {
	tr := &http.Transport{}
	if h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func get(t *testing.T, c *http.Client, url string, header http.Header) (int, http.Header, Response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r Response
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return resp.StatusCode, resp.Header, r
}

func TestServesVersionAndEchoesHeaders(t *testing.T) {
	b := start(t, "v2")
	for _, tc := range []struct {
		name      string
		h2c       bool
		wantProto string
	}{
		{"http1", false, "HTTP/1.1"},
		{"h2c", true, "HTTP/2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, r := get(t, client(tc.h2c), "http://"+b.Addr()+"/reviews/1",
				http.Header{"User-Type": {"internal"}})
			if status != http.StatusOK || hdr.Get(VersionHeader) != "v2" || r.Version != "v2" {
				t.Errorf("got status %d, header %q, body version %q; want 200, v2, v2",
					status, hdr.Get(VersionHeader), r.Version)
			}
			if r.Proto != tc.wantProto {
				t.Errorf("proto = %q, want %q", r.Proto, tc.wantProto)
			}
			if got := r.Headers["User-Type"]; len(got) != 1 || got[0] != "internal" {
				t.Errorf("echoed User-Type = %q, want [internal]", got)
			}
			if r.Path != "/reviews/1" || r.Name != "reviews-v2" {
				t.Errorf("path, name = %q, %q", r.Path, r.Name)
			}
		})
	}
	if got := b.Requests(); got != 2 {
		t.Errorf("Requests() = %d, want 2", got)
	}
}

func TestFailEveryKth(t *testing.T) {
	b := start(t, "v1")
	b.Fail(503, 3)
	c := client(false)
	var codes []int
	for range 6 {
		status, _, _ := get(t, c, "http://"+b.Addr()+"/", nil)
		codes = append(codes, status)
	}
	want := []int{200, 200, 503, 200, 200, 503}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("codes = %v, want %v", codes, want)
		}
	}
	if s := b.Stats(); s.Requests != 6 || s.Failed != 2 {
		t.Errorf("stats = %+v, want 6 requests, 2 failed", s)
	}
	b.Heal()
	if status, _, _ := get(t, c, "http://"+b.Addr()+"/", nil); status != 200 {
		t.Errorf("after Heal: status %d, want 200", status)
	}
}

func TestControlEndpoint(t *testing.T) {
	b := start(t, "v3")
	c := client(false)
	base := "http://" + b.Addr()

	resp, err := c.Post(base+ControlPrefix+"behavior?fail_status=500&fail_every=1&delay=50ms", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("control: status %d", resp.StatusCode)
	}

	began := time.Now()
	status, hdr, r := get(t, c, base+"/", nil)
	if status != 500 || r.Status != 500 || hdr.Get(VersionHeader) != "v3" {
		t.Errorf("failing request: status %d, body status %d, version %q", status, r.Status, hdr.Get(VersionHeader))
	}
	if d := time.Since(began); d < 50*time.Millisecond {
		t.Errorf("answered after %v, want at least the 50ms delay", d)
	}

	// fail_status alone means every request.
	resp, err = c.Post(base+ControlPrefix+"behavior?fail_every=0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.Post(base+ControlPrefix+"behavior?fail_status=502", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st.Behavior != (Behavior{FailStatus: 502, FailEvery: 1, Delay: 50 * time.Millisecond}) {
		t.Errorf("behavior after fail_status=502 = %+v, want 502 every request, 50ms delay", st.Behavior)
	}

	resp, err = c.Post(base+ControlPrefix+"behavior?fail_every=x", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad control query: status %d, want 400", resp.StatusCode)
	}

	resp, err = c.Post(base+ControlPrefix+"reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var s Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s.Requests != 0 || s.Behavior != (Behavior{}) {
		t.Errorf("after reset: %+v, want zero counters and behavior", s)
	}
	if status, _, _ := get(t, c, base+"/", nil); status != 200 {
		t.Errorf("after reset: status %d, want 200", status)
	}
	if got := b.Requests(); got != 1 {
		t.Errorf("control requests were counted: Requests() = %d, want 1", got)
	}
}
