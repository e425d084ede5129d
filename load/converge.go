package load

import (
	"context"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// waitChange waits for the next RDS version change after since and measures, per
// stream, the time from the first stream receiving a new version to that stream ACKing
// its own new version. It returns when every stream has ACKed or the run ends.
func (r *runner) waitChange(ctx context.Context, since time.Time) *Convergence {
	base := map[string]string{}
	for _, v := range r.views() {
		base[v.nodeID] = v.lastAcked(resourcev3.RouteType, since)
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		c, done := convergence(r.views(), base, since)
		if done {
			return c
		}
		select {
		case <-ctx.Done():
			if c.Received == 0 {
				c.Error = errNoChange.Error()
			}
			return c
		case <-t.C:
		}
	}
}

// convergence computes the convergence of the RDS change seen after since; done is true
// when every stream has ACKed a new version.
func convergence(views []streamView, base map[string]string, since time.Time) (*Convergence, bool) {
	c := &Convergence{Streams: len(views)}
	var first time.Time
	news := make([]versionEvent, len(views))
	seen := make([]bool, len(views))
	for i, v := range views {
		e, ok := v.firstNewSince(resourcev3.RouteType, base[v.nodeID], since)
		if !ok {
			continue
		}
		news[i], seen[i] = e, true
		c.Received++
		if first.IsZero() || e.received.Before(first) {
			first = e.received
		}
	}
	var lat []time.Duration
	for i, v := range views {
		if !seen[i] || news[i].acked.IsZero() {
			c.Missing = append(c.Missing, v.nodeID)
			continue
		}
		lat = append(lat, news[i].acked.Sub(first))
	}
	c.Acked = len(lat)
	c.Latency = percentiles(lat)
	c.Missing = truncate(c.Missing)
	return c, c.Acked == len(views)
}
