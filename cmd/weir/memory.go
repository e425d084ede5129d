package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"go.uber.org/zap"
)

// Memory left idle after a burst (a thousand proxies connecting at once, each sent the
// whole config) is returned to the OS. Go's scavenger keeps about twice the live heap
// mapped; after a burst that is far more than weir needs at rest.
const (
	trimEvery   = 10 * time.Second
	trimAtLeast = 64 << 20 // idle bytes that make a trim worth a full GC
)

// trimMemory checks every trimEvery and, when more than trimAtLeast bytes of heap sit idle
// and unreturned, returns them (debug.FreeOSMemory: one full GC, at most every 10 s).
func trimMemory(ctx context.Context, log *zap.Logger) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/free:bytes"},
	}
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		idle := samples[0].Value.Uint64()
		if idle < trimAtLeast {
			continue
		}
		start := time.Now()
		debug.FreeOSMemory()
		log.Debug("returned idle memory to the OS", zap.Uint64("idle_bytes", idle), zap.Duration("took", time.Since(start)))
	}
}
