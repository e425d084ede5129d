package envoystats

import (
	"slices"
	"sync"
	"time"
)

// instant is a time on the sink's clock, in nanoseconds since the sink was made.
type instant int64

// limits bound what a series keeps.
type limits struct {
	// retention is how far back samples are kept: the longest window asked so far.
	retention time.Duration
	// step is the longest a merged sample may span: see record. It is
	// 2·retention/(maxSamples-2), which keeps a series within maxSamples.
	step       time.Duration
	maxSamples int
}

// stream is what one Envoy sent over one StreamMetrics call. Envoy names its node only in
// a stream's first message, so the stream, not the node id, keys the series: a proxy
// that reconnects starts a new stream whose counters are baselined afresh.
type stream struct {
	id uint64

	mu     sync.Mutex
	node   string
	open   bool
	ended  instant
	series map[string]*series // by cluster
	// bounds is the stream's histogram bucket layout, shared by its series.
	bounds []float64

	// Owned by the stream's handler goroutine.
	flush   flushes
	warned  bool // about histograms without buckets
	started bool // the first message was logged
}

// flushes tells a stream's first flush from the rest. The counters of the first flush
// hold everything since Envoy started, before weir listened, so they are only a baseline.
type flushes struct {
	started, over bool
	firstMs       int64
}

// first reports whether a message with families belongs to the stream's first flush.
// When batch_size is set Envoy sends one flush as several messages, all with the flush's
// timestamp; without timestamps only the first message counts as the first flush.
func (f *flushes) first(flushMs int64, families int) bool {
	switch {
	case f.over || families == 0:
		return false
	case !f.started:
		f.started, f.firstMs = true, flushMs
		return true
	case flushMs != 0 && flushMs == f.firstMs:
		return true
	}
	f.over = true
	return false
}

// series is one cluster as one stream reports it: the last counter values, to turn
// them into increments, and the increments over the retention window.
type series struct {
	completed, errors counter
	bounds            []float64 // of the samples' duration buckets
	samples           []sample  // oldest first; only non-zero increments are kept
}

// sample is what one cluster gained between two flushes (or several, when merged).
type sample struct {
	at               instant
	requests, errors uint64
	dur              buckets
}

func (s sample) empty() bool { return s.requests == 0 && s.errors == 0 && len(s.dur.counts) == 0 }

// counter turns Envoy's cumulative counter into increments.
type counter struct {
	last uint64
	seen bool
}

// increase is how much the counter grew since the last flush.
//
// A counter first seen in the stream's first flush is a baseline: its value is history
// from before weir listened, and counting it would over-count the window. A counter first
// seen later grew from zero: Envoy sends only counters that were ever incremented, so it
// was zero at the previous flush (upstream_rq_5xx appears with the first 5xx). A value
// that went down means the counter was reset; the new value is the new baseline.
func (c *counter) increase(v uint64, firstFlush bool) uint64 {
	var inc uint64
	switch {
	case !c.seen && firstFlush:
	case !c.seen:
		inc = v
	case v >= c.last:
		inc = v - c.last
	}
	c.last, c.seen = v, true
	return inc
}

// apply records one message at now and returns how many series it created.
func (st *stream) apply(m message, now instant, lim limits) (created int) {
	first := st.flush.first(m.flushMs, m.families)
	st.mu.Lock()
	defer st.mu.Unlock()
	if m.nodeID != "" {
		st.node = m.nodeID
	}
	for _, u := range m.updates {
		se := st.series[u.cluster]
		if se == nil {
			se = &series{}
			st.series[u.cluster] = se
			created++
		}
		var add sample
		switch u.kind {
		case statCompleted:
			add.requests = se.completed.increase(u.counter, first)
		case stat5xx:
			add.errors = se.errors.increase(u.counter, first)
		case statTime:
			add.dur = se.observe(st.layout(u.hist.bounds), u.hist)
		}
		se.record(now, add, lim)
	}
	return created
}

// layout returns the stream's shared copy of a bucket layout: every histogram of one
// proxy has the same buckets, so the stream keeps them once.
func (st *stream) layout(bounds []float64) []float64 {
	if !slices.Equal(st.bounds, bounds) {
		st.bounds = bounds
	}
	return st.bounds
}

// observe returns an interval histogram as sparse buckets. A series whose layout changes
// forgets its stored durations, whose bucket numbers meant the old layout.
func (se *series) observe(bounds []float64, h *histogram) buckets {
	if !slices.Equal(se.bounds, bounds) {
		for i := range se.samples {
			se.samples[i].dur = buckets{}
		}
		se.bounds = bounds
	}
	return sparse(h)
}

// record adds a non-empty increment at now. Each sample holds what happened after the
// sample before it, up to its own time. A flush is added into the latest sample (which
// moves to now) when the sample would still span at most a step, so any two samples
// apart cover more than a step and 2·retention/step+2 samples cover the retention. A
// window counts a sample whole when its time is inside, which may count up to a step's
// worth of flushes from before the window's start: window edges are exact to the flush
// when two flush intervals exceed the step, and to the step otherwise. The stats of one
// message always make one sample.
func (se *series) record(now instant, add sample, lim limits) {
	if add.empty() {
		return
	}
	n := len(se.samples)
	if n > 0 && se.samples[n-1].at == now || n > 1 && now-se.samples[n-2].at <= instant(lim.step) {
		last := &se.samples[n-1]
		last.at = now
		last.requests += add.requests
		last.errors += add.errors
		last.dur = last.dur.add(add.dur)
	} else {
		add.at = now
		se.samples = append(se.samples, add)
	}
	se.prune(now, lim)
}

// prune drops the samples older than the retention and, past maxSamples, the oldest.
func (se *series) prune(now instant, lim limits) {
	drop := 0
	for drop < len(se.samples) && se.samples[drop].at <= now-instant(lim.retention) {
		drop++
	}
	drop = max(drop, len(se.samples)-lim.maxSamples)
	if drop == 0 {
		return
	}
	n := copy(se.samples, se.samples[drop:])
	clear(se.samples[n:])
	se.samples = se.samples[:n]
	if n == 0 {
		se.samples = nil // let an idle series give its array back
	}
}

// buckets is a sparse histogram: counts[i] samples fell in bucket first+i, bucket j being
// (bounds[j-1], bounds[j]] and bucket len(bounds) the overflow above the last bound. Most
// flushes fill a few neighbouring buckets of twenty.
type buckets struct {
	first  int
	counts []uint32
}

// sparse turns cumulative counts into the non-empty run of per-bucket counts.
func sparse(h *histogram) buckets {
	per := make([]uint64, len(h.cum)+1)
	var prev uint64
	for i, c := range h.cum {
		per[i] = c - min(c, prev) // Envoy's counts never go down; guard anyway
		prev = max(prev, c)
	}
	per[len(h.cum)] = h.count - min(h.count, prev)
	lo := slices.IndexFunc(per, func(c uint64) bool { return c > 0 })
	if lo < 0 {
		return buckets{}
	}
	hi := len(per)
	for per[hi-1] == 0 {
		hi--
	}
	out := buckets{first: lo, counts: make([]uint32, hi-lo)}
	for i := range out.counts {
		out.counts[i] = uint32(per[lo+i])
	}
	return out
}

// add returns the bucket-wise sum of a and b.
func (a buckets) add(b buckets) buckets {
	switch {
	case len(b.counts) == 0:
		return a
	case len(a.counts) == 0:
		return b
	}
	lo := min(a.first, b.first)
	hi := max(a.first+len(a.counts), b.first+len(b.counts))
	out := buckets{first: lo, counts: make([]uint32, hi-lo)}
	for i, c := range a.counts {
		out.counts[a.first-lo+i] += c
	}
	for i, c := range b.counts {
		out.counts[b.first-lo+i] += c
	}
	return out
}
