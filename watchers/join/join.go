// Package join serves several sources as one: each source's latest snapshot, merged.
package join

import (
	"slices"
	"sync"

	"github.com/weir-mesh/weir/model"
)

// Sources returns one publish function per source. The merged snapshot is published
// once every source has published its first (so a slow source never makes the others
// look like the whole world), then on each publish of any source.
func Sources(n int, publish func(*model.Snapshot)) []func(*model.Snapshot) {
	var mu sync.Mutex
	latest := make([]*model.Snapshot, n)
	out := make([]func(*model.Snapshot), n)
	for i := range out {
		out[i] = func(snap *model.Snapshot) {
			mu.Lock()
			defer mu.Unlock()
			latest[i] = snap
			if !slices.Contains(latest, nil) {
				publish(Merge(latest...))
			}
		}
	}
	return out
}

// Merge puts snapshots together. With one snapshot it is that snapshot. A name two
// sources define is left for the translator, which keeps the first and reports the other.
func Merge(snaps ...*model.Snapshot) *model.Snapshot {
	if len(snaps) == 1 {
		return snaps[0]
	}
	out := &model.Snapshot{}
	for _, s := range snaps {
		out.Services = append(out.Services, s.Services...)
		out.Endpoints = append(out.Endpoints, s.Endpoints...)
		out.VirtualServices = append(out.VirtualServices, s.VirtualServices...)
		out.DestinationRules = append(out.DestinationRules, s.DestinationRules...)
		out.Gateways = append(out.Gateways, s.Gateways...)
		out.Sidecars = append(out.Sidecars, s.Sidecars...)
		out.Secrets = append(out.Secrets, s.Secrets...)
		out.Rollouts = append(out.Rollouts, s.Rollouts...)
		out.Diagnostics = append(out.Diagnostics, s.Diagnostics...)
	}
	return out
}
