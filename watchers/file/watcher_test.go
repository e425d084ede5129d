package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"

	"github.com/weir-mesh/weir/model"
)

// Timing: this machine is noisy, so waits are generous and hold-offs in the count-sensitive
// tests are longer than the default.
const (
	publishTimeout = 5 * time.Second
	quietPeriod    = time.Second
)

// harness runs a Watcher over a temporary directory and collects what it publishes.
type harness struct {
	t      *testing.T
	dir    string
	snaps  chan *model.Snapshot
	cancel context.CancelFunc
	done   chan error
}

func startWatcher(t *testing.T, files map[string]string, opts ...Option) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), snaps: make(chan *model.Snapshot, 1000), done: make(chan error, 1)}
	writeTree(t, h.dir, files)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	w := NewWatcher(h.dir, zaptest.NewLogger(t), opts...)
	go func() { h.done <- w.Run(ctx, func(s *model.Snapshot) { h.snaps <- s }) }()
	t.Cleanup(h.stop)
	return h
}

// stop cancels the watcher and waits for Run to return, so that nothing logs after the test.
func (h *harness) stop() {
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(publishTimeout):
		h.t.Error("Run did not return after its context was cancelled")
	}
	h.done <- nil // later stops return at once
}

func (h *harness) next() *model.Snapshot {
	h.t.Helper()
	select {
	case s := <-h.snaps:
		return s
	case <-time.After(publishTimeout):
		h.t.Fatal("no snapshot published")
		return nil
	}
}

// until waits for a snapshot whose services are want: a change may take more than one
// publish on a slow machine, and only the settled state is asserted.
func (h *harness) until(want []string) *model.Snapshot {
	h.t.Helper()
	deadline := time.After(publishTimeout)
	var last []string
	for {
		select {
		case s := <-h.snaps:
			if last = hostnames(s); cmp.Equal(want, last) {
				return s
			}
		case <-deadline:
			h.t.Fatalf("no snapshot with services %v; last published %v", want, last)
			return nil
		}
	}
}

func (h *harness) quiet(d time.Duration) {
	h.t.Helper()
	select {
	case s := <-h.snaps:
		h.t.Errorf("unexpected publish: services %v, diagnostics %v", hostnames(s), s.Diagnostics)
	case <-time.After(d):
	}
}

func (h *harness) write(rel, content string) {
	h.t.Helper()
	writeTree(h.t, h.dir, map[string]string{rel: content})
}

func (h *harness) path(rel string) string { return filepath.Join(h.dir, filepath.FromSlash(rel)) }

func hosts(names ...string) []string {
	out := []string{}
	for _, n := range names {
		out = append(out, n+".default.svc.cluster.local")
	}
	return out
}

// The first snapshot comes only after the whole directory was read.
func TestWatcherFirstSnapshotIsComplete(t *testing.T) {
	files := map[string]string{}
	var want []string
	for i := range 40 {
		name := fmt.Sprintf("svc-%02d", i)
		files[fmt.Sprintf("d%d/%s.yaml", i%4, name)] = serviceYAML(name, "default")
		want = append(want, name)
	}
	h := startWatcher(t, files)
	if diff := cmp.Diff(hosts(want...), hostnames(h.next())); diff != "" {
		t.Errorf("first snapshot (-want +got):\n%s", diff)
	}
	h.quiet(quietPeriod)
}

func TestWatcherFollowsChanges(t *testing.T) {
	initial := map[string]string{"a.yaml": serviceYAML("a", "default"), "sub/b.yaml": serviceYAML("b", "default")}
	tests := []struct {
		name   string
		change func(h *harness)
		want   []string
		errors int
	}{
		{
			name:   "edit",
			change: func(h *harness) { h.write("a.yaml", serviceYAML("a2", "default")) },
			want:   hosts("a2", "b"),
		},
		{
			name:   "new file in a new nested directory",
			change: func(h *harness) { h.write("new/deeper/c.yaml", serviceYAML("c", "default")) },
			want:   hosts("a", "b", "c"),
		},
		{
			name: "file written into a directory created empty first",
			change: func(h *harness) {
				if err := os.Mkdir(h.path("later"), 0o755); err != nil {
					h.t.Fatal(err)
				}
				time.Sleep(300 * time.Millisecond) // past the hold-off: the directory alone is a change
				h.write("later/c.yaml", serviceYAML("c", "default"))
			},
			want: hosts("a", "b", "c"),
		},
		{
			name:   "file removed",
			change: func(h *harness) { mustDo(h.t, os.Remove(h.path("sub/b.yaml"))) },
			want:   hosts("a"),
		},
		{
			name:   "directory removed",
			change: func(h *harness) { mustDo(h.t, os.RemoveAll(h.path("sub"))) },
			want:   hosts("a"),
		},
		{
			name: "atomic rename-write",
			change: func(h *harness) {
				h.write(".a.yaml.tmp", serviceYAML("a3", "default"))
				mustDo(h.t, os.Rename(h.path(".a.yaml.tmp"), h.path("a.yaml")))
			},
			want: hosts("a3", "b"),
		},
		{
			name: "vim-style save: backup, write, remove backup",
			change: func(h *harness) {
				mustDo(h.t, os.Rename(h.path("a.yaml"), h.path("a.yaml~")))
				h.write("a.yaml", serviceYAML("a4", "default"))
				mustDo(h.t, os.Remove(h.path("a.yaml~")))
			},
			want: hosts("a4", "b"),
		},
		{
			name:   "file moved into another directory",
			change: func(h *harness) { mustDo(h.t, os.Rename(h.path("a.yaml"), h.path("sub/a.yaml"))) },
			want:   hosts("a", "b"),
		},
		{
			name:   "bad YAML keeps the file's last good objects",
			change: func(h *harness) { h.write("a.yaml", serviceYAML("a5", "default")+"  ports: [\n") },
			want:   hosts("a", "b"),
			errors: 1,
		},
		{
			name:   "invalid object keeps its last good version",
			change: func(h *harness) { h.write("a.yaml", serviceYAML("a", "default")+"  bogus: true\n") },
			want:   hosts("a", "b"),
			errors: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startWatcher(t, initial)
			h.until(hosts("a", "b"))
			tt.change(h)
			snap := h.until(tt.want)
			if got := len(errorsOnly(snap.Diagnostics)); got != tt.errors {
				t.Errorf("got %d errors, want %d: %v", got, tt.errors, snap.Diagnostics)
			}
		})
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A burst of writes becomes one publish of the final state.
func TestWatcherDebouncesBursts(t *testing.T) {
	h := startWatcher(t, map[string]string{"a.yaml": serviceYAML("a", "default")},
		WithHoldOff(300*time.Millisecond), WithMaxDelay(10*time.Second))
	h.next()
	for i := range 20 {
		h.write(fmt.Sprintf("burst-%d.yaml", i%5), serviceYAML(fmt.Sprintf("b%d", i), "default"))
	}
	if diff := cmp.Diff(hosts("a", "b15", "b16", "b17", "b18", "b19"), hostnames(h.next())); diff != "" {
		t.Errorf("snapshot after the burst (-want +got):\n%s", diff)
	}
	h.quiet(quietPeriod)
}

// A steady stream of writes cannot postpone publishing past the max delay.
func TestWatcherMaxDelay(t *testing.T) {
	h := startWatcher(t, map[string]string{"a.yaml": serviceYAML("a", "default")},
		WithHoldOff(400*time.Millisecond), WithMaxDelay(700*time.Millisecond))
	h.next()
	stop := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(stop); i++ {
		h.write("a.yaml", serviceYAML(fmt.Sprintf("a%d", i), "default"))
		time.Sleep(50 * time.Millisecond) // always inside the hold-off
	}
	// Without the max delay nothing would be published until the writes stop.
	if n := len(h.snaps); n < 2 {
		t.Errorf("got %d publishes during 3s of writes with a 700ms max delay, want at least 2", n)
	}
}

// Rewriting the same bytes, touching or adding an editor's temp file changes nothing, so
// nothing is pushed.
func TestWatcherPublishesOnlyChanges(t *testing.T) {
	h := startWatcher(t, map[string]string{"a.yaml": serviceYAML("a", "default")})
	h.next()
	h.write("a.yaml", serviceYAML("a", "default"))
	now := time.Now()
	mustDo(t, os.Chtimes(h.path("a.yaml"), now, now))
	h.write(".a.yaml.swp", "junk")
	h.write("notes.txt", "not config")
	h.write("empty.yaml", "# nothing yet\n")
	h.quiet(quietPeriod)
}

// Run returns when its context ends and leaves no goroutine behind.
func TestWatcherStopsWithContext(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.yaml": serviceYAML("a", "default"), "sub/b.yaml": serviceYAML("b", "default")})
	ctx, cancel := context.WithCancel(context.Background())
	published := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() {
		done <- NewWatcher(dir, zaptest.NewLogger(t)).Run(ctx, func(*model.Snapshot) { published <- struct{}{} })
	}()
	select {
	case <-published:
	case <-time.After(publishTimeout):
		t.Fatal("no first snapshot")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(publishTimeout):
		t.Fatal("Run did not return after cancel")
	}
	deadline := time.Now().Add(publishTimeout)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before Run, %d after it returned:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

func TestWatcherMissingDir(t *testing.T) {
	w := NewWatcher(filepath.Join(t.TempDir(), "missing"), zaptest.NewLogger(t))
	if err := w.Run(context.Background(), func(*model.Snapshot) { t.Error("published") }); err == nil {
		t.Error("Run over a missing directory returned no error")
	}
}
