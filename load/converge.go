package load

import (
	"context"
	"fmt"
	"time"
)

// WaitChange waits until every stream has ACKed the first new version of typeURL it
// received at or after since (new meaning other than the version it had ACKed at
// since), and measures each stream's latency two ways: from since, the moment the
// caller changed the server's input, and from the first receipt of a new version by
// any stream. It returns when every stream has ACKed, when every stream that has not
// has failed, or when ctx ends.
func (s *Session) WaitChange(ctx context.Context, typeURL string, since time.Time) *Convergence {
	streams := s.opened()
	c := &Convergence{Type: shortType(typeURL), Streams: s.cfg.Streams}
	ti := typeIndex(typeURL)
	if ti < 0 {
		c.Error = "unknown type " + typeURL
		return c
	}
	w := &changeWait{ti: ti, since: since, prefix: s.cfg.IDPrefix, streams: streams, base: make([]string, len(streams)),
		news: make([]versionEvent, len(streams)), state: make([]changeState, len(streams))}
	for i, st := range streams {
		w.base[i] = st.lastAcked(ti, since)
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if w.poll() {
			return w.result(c)
		}
		select {
		case <-ctx.Done():
			w.poll()
			c = w.result(c)
			if c.Received == 0 {
				c.Error = errNoChange.Error()
			}
			return c
		case <-t.C:
		}
	}
}

type changeState uint8

const (
	waiting  changeState = iota
	received             // has a new version, not ACKed yet
	acked                // has ACKed its new version
	failed               // ended without ACKing a new version
)

// changeWait follows one change over the streams open when the wait began; streams the
// ramp opens later are counted as missing.
type changeWait struct {
	ti      int
	since   time.Time
	prefix  string
	streams []*streamStats
	base    []string
	news    []versionEvent
	state   []changeState
}

// poll updates the streams not yet done and reports whether every stream is.
func (w *changeWait) poll() bool {
	done := true
	for i, st := range w.streams {
		if w.state[i] == acked || w.state[i] == failed {
			continue
		}
		e, ok, isFailed := st.firstNewSince(w.ti, w.base[i], w.since)
		switch {
		case ok && !e.acked.IsZero():
			w.news[i], w.state[i] = e, acked
			continue
		case isFailed:
			w.news[i], w.state[i] = e, failed
			continue
		case ok:
			w.news[i], w.state[i] = e, received
		}
		done = false
	}
	return done
}

func (w *changeWait) result(c *Convergence) *Convergence {
	var first time.Time
	for i, e := range w.news {
		if w.state[i] == waiting || (w.state[i] == failed && e.received.IsZero()) {
			continue
		}
		c.Received++
		if first.IsZero() || e.received.Before(first) {
			first = e.received
		}
	}
	var fromChange, fromFirst []time.Duration
	for i, st := range w.streams {
		switch w.state[i] {
		case acked:
			fromChange = append(fromChange, w.news[i].acked.Sub(w.since))
			fromFirst = append(fromFirst, w.news[i].acked.Sub(first))
			continue
		case failed:
			c.Failed++
		}
		c.Missing = append(c.Missing, st.nodeID)
	}
	for i := len(w.streams); i < c.Streams; i++ {
		c.Missing = append(c.Missing, fmt.Sprintf("%s%d", w.prefix, i))
	}
	c.Acked = len(fromChange)
	c.FromChange = percentiles(fromChange)
	c.FromFirstReceipt = percentiles(fromFirst)
	c.Latency = c.FromFirstReceipt
	if !first.IsZero() {
		c.FirstReceipt = first.Sub(w.since).Seconds()
	}
	c.Missing = truncate(c.Missing)
	c.fromChange, c.fromFirst = fromChange, fromFirst
	return c
}
