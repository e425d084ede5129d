package file

import "time"

// debouncer turns a burst of pokes into one firing: it fires once pokes have stopped for
// holdOff, or maxDelay after the first poke of the burst, whichever comes first. It is
// used from one goroutine only.
type debouncer struct {
	holdOff, maxDelay time.Duration
	timer             *time.Timer
	first             time.Time // first poke of the pending burst; zero when idle
}

func newDebouncer(holdOff, maxDelay time.Duration) *debouncer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &debouncer{holdOff: holdOff, maxDelay: maxDelay, timer: t}
}

func (d *debouncer) poke() {
	now := time.Now()
	if d.first.IsZero() {
		d.first = now
	}
	wait := min(d.holdOff, d.maxDelay-now.Sub(d.first))
	d.timer.Reset(max(wait, 0))
}

// C delivers when the pending burst is due; the receiver must then call done.
func (d *debouncer) C() <-chan time.Time {
	return d.timer.C
}

// done makes the debouncer idle: the next poke starts a new burst.
func (d *debouncer) done() {
	d.first = time.Time{}
}

func (d *debouncer) stop() {
	d.timer.Stop()
}
