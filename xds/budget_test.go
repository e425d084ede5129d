package xds

import (
	"context"
	"testing"
	"time"
)

func TestSendBudgetBoundsUnackedBytes(t *testing.T) {
	b := newSendBudget(100, 5*time.Second)
	b.acquire(1, 80)
	if b.acquire(1, 80) != 0 {
		t.Fatal("a stream that holds budget must not wait: it has to stay free to read its ACK")
	}
	got := make(chan time.Duration, 1)
	go func() { got <- b.acquire(2, 50) }()
	select {
	case <-got:
		t.Fatal("stream 2 sent although 80 of 100 bytes are unACKed and it needs 50")
	case <-time.After(50 * time.Millisecond):
	}
	b.release(1) // stream 1's proxy ACKed
	select {
	case <-got:
	case <-time.After(2 * time.Second):
		t.Fatal("stream 2 still waits after stream 1's ACK")
	}
	if b.inUse() != 50 {
		t.Fatalf("in use %d, want 50", b.inUse())
	}
}

func TestSendBudgetWaitEndsWhenStreamCloses(t *testing.T) {
	b := newSendBudget(10, 5*time.Second)
	b.acquire(1, 10)
	ctx, cancel := context.WithCancel(context.Background())
	b.open(2, ctx)
	done := make(chan struct{})
	go func() { b.acquire(2, 10); close(done) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("a closed stream keeps waiting for budget")
	}
	b.closed(1)
	if b.inUse() != 0 {
		t.Fatalf("in use %d after every stream closed, want 0", b.inUse())
	}
}

func TestSendBudgetExpiresSilentHolders(t *testing.T) {
	b := newSendBudget(10, 50*time.Millisecond)
	b.acquire(1, 10) // this proxy never answers
	began := time.Now()
	b.acquire(2, 10)
	if waited := time.Since(began); waited > 2*time.Second {
		t.Fatalf("waited %v behind a silent proxy", waited)
	}
}
