package file

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/weir-mesh/weir/model"
)

// Defaults of the debounce: a burst of writes (an editor saving, `cp -r`, a git checkout)
// becomes one snapshot, and a steady trickle of writes still publishes at least once per
// max delay.
const (
	DefaultHoldOff  = 100 * time.Millisecond
	DefaultMaxDelay = time.Second
)

// Watcher keeps a directory's snapshot current.
type Watcher struct {
	dir      string
	log      *zap.Logger
	holdOff  time.Duration
	maxDelay time.Duration
	reg      prometheus.Registerer
	metrics  *metrics

	src       *source
	fw        *fsnotify.Watcher
	watched   map[string]bool
	last      [sha256.Size]byte
	published bool
}

// Option configures a Watcher.
type Option func(*Watcher)

// WithHoldOff sets how long the directory must be quiet before it is reread.
func WithHoldOff(d time.Duration) Option { return func(w *Watcher) { w.holdOff = d } }

// WithMaxDelay bounds how long a stream of changes can postpone a reread.
func WithMaxDelay(d time.Duration) Option { return func(w *Watcher) { w.maxDelay = d } }

// WithRegisterer registers the watcher's metrics.
func WithRegisterer(reg prometheus.Registerer) Option { return func(w *Watcher) { w.reg = reg } }

// NewWatcher returns a watcher of dir. The caller names the logger.
func NewWatcher(dir string, log *zap.Logger, opts ...Option) *Watcher {
	if log == nil {
		log = zap.NewNop()
	}
	w := &Watcher{dir: dir, log: log, holdOff: DefaultHoldOff, maxDelay: DefaultMaxDelay, watched: map[string]bool{}}
	for _, opt := range opts {
		opt(w)
	}
	w.metrics = newMetrics(w.reg)
	w.src = newSource(dir)
	w.src.onDirs = w.watchDirs
	return w
}

// Run reads the whole directory, publishes the first snapshot, then publishes a new one
// each time changes settle and the snapshot actually differs. It returns nil when ctx
// ends, or an error if the directory cannot be read or watched at the start. Run must
// not be called twice at once.
func (w *Watcher) Run(ctx context.Context, publish func(*model.Snapshot)) error {
	if ctx.Err() != nil {
		return nil
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config dir %s: %w", w.dir, err)
	}
	defer fw.Close()
	w.fw, w.watched = fw, map[string]bool{}
	if err := w.reload(publish); err != nil {
		return err
	}
	w.log.Info("watching config dir", zap.String("dir", w.dir), zap.Int("directories", len(w.watched)))
	return w.loop(ctx, publish)
}

func (w *Watcher) loop(ctx context.Context, publish func(*model.Snapshot)) error {
	deb := newDebouncer(w.holdOff, w.maxDelay)
	defer deb.stop()
	for {
		select {
		case <-ctx.Done():
			w.log.Info("stopped watching config dir", zap.String("dir", w.dir))
			return nil
		case ev, ok := <-w.fw.Events:
			if !ok {
				return errors.New("file watcher closed")
			}
			if w.noteEvent(ev) {
				deb.poke()
			}
		case err, ok := <-w.fw.Errors:
			if !ok {
				return errors.New("file watcher closed")
			}
			// After an overflow, events were lost: only a full reread is safe, which is
			// what every reread is.
			w.log.Warn("watch error; rereading the config dir", zap.String("dir", w.dir), zap.Error(err))
			deb.poke()
		case <-deb.C():
			deb.done()
			if err := w.reload(publish); err != nil {
				w.log.Error("config dir unreadable; still serving the previous snapshot", zap.String("dir", w.dir), zap.Error(err))
			}
		}
	}
}

// noteEvent reports whether an event calls for a reread: editors' temporary files never
// do; everything else does, hidden names included, because a Kubernetes ConfigMap volume
// publishes an update by renaming its hidden ..data link. A new directory is watched at
// once, so that files written into it right after are seen.
func (w *Watcher) noteEvent(ev fsnotify.Event) bool {
	if isEditorTemp(filepath.Base(ev.Name)) {
		return false
	}
	w.log.Debug("config dir changed", zap.String("path", ev.Name), zap.Stringer("op", ev.Op))
	if ev.Has(fsnotify.Create) && !isIgnoredName(filepath.Base(ev.Name)) {
		if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
			w.watch(ev.Name)
		}
	}
	return true
}

// watchDirs makes the watched set exactly dirs.
func (w *Watcher) watchDirs(dirs []string) {
	want := make(map[string]bool, len(dirs))
	for _, d := range dirs {
		want[d] = true
		w.watch(d)
	}
	for d := range w.watched {
		if !want[d] {
			_ = w.fw.Remove(d) // fails harmlessly when the directory is already gone
			delete(w.watched, d)
		}
	}
}

func (w *Watcher) watch(dir string) {
	if w.watched[dir] {
		return
	}
	if err := w.fw.Add(dir); err != nil {
		w.log.Warn("cannot watch directory; its changes are seen only with others", zap.String("path", dir), zap.Error(err))
		return
	}
	w.watched[dir] = true
}

// reload rereads the directory and publishes the snapshot if it differs from the last one.
func (w *Watcher) reload(publish func(*model.Snapshot)) error {
	start := time.Now()
	snap, err := w.read()
	if err != nil {
		w.metrics.reloads.WithLabelValues(reloadFailed).Inc()
		return err
	}
	sum := w.src.inputs
	if w.published && sum == w.last {
		w.metrics.reloads.WithLabelValues(reloadUnchanged).Inc()
		w.log.Debug("config dir reread; nothing changed", zap.String("dir", w.dir))
		return nil
	}
	publish(snap)
	w.last, w.published = sum, true
	w.metrics.reloads.WithLabelValues(reloadPublished).Inc()
	w.log.Info("published snapshot", zap.String("dir", w.dir),
		zap.Int("services", len(snap.Services)), zap.Int("endpoints", len(snap.Endpoints)),
		zap.Int("virtual_services", len(snap.VirtualServices)), zap.Int("destination_rules", len(snap.DestinationRules)), zap.Int("rollouts", len(snap.Rollouts)),
		zap.Int("diagnostics", len(snap.Diagnostics)), zap.Duration("took", time.Since(start)))
	return nil
}

// read is source.read with a net under it: a panic on some input becomes a failed read,
// and the previous snapshot keeps serving.
func (w *Watcher) read() (snap *model.Snapshot, err error) {
	defer func() {
		if r := recover(); r != nil {
			w.metrics.panics.Inc()
			w.log.Error("reading the config dir panicked", zap.Any("panic", r), zap.Stack("stack"))
			err = fmt.Errorf("read config dir %s: panic: %v", w.dir, r)
		}
	}()
	return w.src.read()
}
