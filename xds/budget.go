package xds

import (
	"context"
	"sync"
	"time"
)

// sendBudget bounds the bytes sent to proxies and not yet ACKed. gRPC marshals a whole
// response into a buffer that lives until the proxy has read it, so a thousand proxies
// connecting at once would otherwise pin a thousand copies of the full config. A stream
// takes budget before it sends and gives it back when the proxy answers (ACK or NACK),
// goes away, or holdTimeout passes (a proxy that never answers cannot stall the rest). A stream that already holds budget sends without
// waiting — it must stay free to read the ACK that returns it — so the bound is exceeded
// by at most one response per stream and type.
type sendBudget struct {
	capacity    int64
	holdTimeout time.Duration

	mu      sync.Mutex
	used    int64
	queue   []*budgetWaiter
	held    map[int64]*budgetHold
	streams map[int64]context.Context
}

type budgetHold struct{ n int64 }

type budgetWaiter struct {
	stream int64
	n      int64
	ready  chan struct{}
}

func newSendBudget(capacity int64, holdTimeout time.Duration) *sendBudget {
	return &sendBudget{capacity: capacity, holdTimeout: holdTimeout,
		held: map[int64]*budgetHold{}, streams: map[int64]context.Context{}}
}

// open records a stream's context, which ends a wait when the stream goes away.
func (b *sendBudget) open(stream int64, ctx context.Context) {
	b.mu.Lock()
	b.streams[stream] = ctx
	b.mu.Unlock()
}

// closed returns what a stream held.
func (b *sendBudget) closed(stream int64) {
	b.mu.Lock()
	delete(b.streams, stream)
	b.mu.Unlock()
	b.release(stream)
}

// acquire waits until n bytes may be sent on a stream; it returns how long it waited.
func (b *sendBudget) acquire(stream int64, n int64) time.Duration {
	if b == nil || b.capacity <= 0 {
		return 0
	}
	n = max(1, min(n, b.capacity))
	b.mu.Lock()
	if _, holding := b.held[stream]; holding {
		b.mu.Unlock()
		return 0
	}
	if len(b.queue) == 0 && b.used+n <= b.capacity {
		b.grantLocked(stream, n)
		b.mu.Unlock()
		return 0
	}
	w := &budgetWaiter{stream: stream, n: n, ready: make(chan struct{})}
	b.queue = append(b.queue, w)
	ctx := b.streams[stream]
	b.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	// No timeout of its own: budget held by proxies that never answer expires (grantLocked),
	// and that moves the queue.
	began := time.Now()
	select {
	case <-w.ready:
	case <-ctx.Done():
		b.abandon(w)
	}
	return time.Since(began)
}

// abandon takes a waiter out of the queue; if it was granted meanwhile, the grant is
// kept (and returned by release as usual).
func (b *sendBudget) abandon(w *budgetWaiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, q := range b.queue {
		if q == w {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			return
		}
	}
}

func (b *sendBudget) grantLocked(stream int64, n int64) {
	h := &budgetHold{n: n}
	b.used += n
	b.held[stream] = h
	time.AfterFunc(b.holdTimeout, func() { b.expire(stream, h) })
}

// release returns what a stream holds, when its proxy has answered.
func (b *sendBudget) release(stream int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.releaseLocked(stream, nil)
}

func (b *sendBudget) expire(stream int64, h *budgetHold) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.releaseLocked(stream, h)
}

// releaseLocked returns a stream's hold (only if it is h, when h is given) and grants
// waiters in order while budget lasts.
func (b *sendBudget) releaseLocked(stream int64, h *budgetHold) {
	cur, ok := b.held[stream]
	if !ok || (h != nil && cur != h) {
		return
	}
	delete(b.held, stream)
	b.used -= cur.n
	for len(b.queue) > 0 && b.used+b.queue[0].n <= b.capacity {
		w := b.queue[0]
		b.queue = b.queue[1:]
		b.grantLocked(w.stream, w.n)
		close(w.ready)
	}
}

// inUse is the budget held now, for tests.
func (b *sendBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
