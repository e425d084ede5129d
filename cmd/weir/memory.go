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
	trimCheckEvery = 2 * time.Second
	trimQuietFor   = 3                // checks in a row without a collection
	trimEvery      = 10 * time.Second // at most one trim per
	trimAtLeast    = 32 << 20         // reclaimable bytes that make a trim worth a full GC
)

// trimMemory checks every trimCheckEvery and, when more than trimAtLeast bytes could be
// returned (heap that sits idle and unreturned, plus garbage: at rest no collection runs
// to free it) and weir is at rest, returns them (debug.FreeOSMemory: one full GC, at most
// every trimEvery). At rest means no garbage collection ran for trimQuietFor checks in a
// row (6 s): while proxies connect or pushes follow one another weir allocates and
// collects, and returning memory then would stall that work (the scavenger holds the heap
// lock) only to have the memory mapped again a moment later.
func trimMemory(ctx context.Context, log *zap.Logger) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/memory/classes/heap/objects:bytes"}, // live and garbage
		{Name: "/gc/heap/live:bytes"},                // live at the last collection
	}
	t := time.NewTicker(trimCheckEvery)
	defer t.Stop()
	var lastCycles uint64
	var lastTrim time.Time
	quiet := 0 // checks in a row without a collection
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		cycles := samples[1].Value.Uint64()
		idle := samples[0].Value.Uint64()
		if objects, live := samples[2].Value.Uint64(), samples[3].Value.Uint64(); objects > live {
			idle += objects - live
		}
		if cycles != lastCycles {
			quiet = 0
		} else {
			quiet++
		}
		lastCycles = cycles
		if idle < trimAtLeast || quiet < trimQuietFor || time.Since(lastTrim) < trimEvery {
			continue
		}
		start := time.Now()
		lastTrim = start
		debug.FreeOSMemory()
		metrics.Read(samples)
		lastCycles = samples[1].Value.Uint64() // our own collection is not activity
		log.Debug("returned idle memory to the OS", zap.Uint64("idle_bytes", idle), zap.Duration("took", time.Since(start)))
	}
}
