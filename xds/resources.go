package xds

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"sort"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// Type URLs in the order ADS must deliver them: a route never arrives before its cluster.
var orderedTypes = []string{
	resourcev3.ClusterType,
	resourcev3.EndpointType,
	resourcev3.ListenerType,
	resourcev3.RouteType,
}

// shortType names a type URL the way people say it.
func shortType(typeURL string) string {
	switch typeURL {
	case resourcev3.ClusterType:
		return "cds"
	case resourcev3.EndpointType:
		return "eds"
	case resourcev3.ListenerType:
		return "lds"
	case resourcev3.RouteType:
		return "rds"
	case resourcev3.SecretType:
		return "sds"
	}
	return typeURL
}

// Resources is the complete config of one proxy class.
type Resources struct {
	Clusters  []types.Resource
	Endpoints []types.Resource
	Listeners []types.Resource
	Routes    []types.Resource
	// Origins maps a resource name, or a virtual host name, to the source objects that
	// produced it, for NACK attribution.
	Origins map[string][]string
}

func (r *Resources) byType(typeURL string) []types.Resource {
	switch typeURL {
	case resourcev3.ClusterType:
		return r.Clusters
	case resourcev3.EndpointType:
		return r.Endpoints
	case resourcev3.ListenerType:
		return r.Listeners
	case resourcev3.RouteType:
		return r.Routes
	}
	return nil
}

// versioned is one type's resources with a content-derived version: equal content gives
// an equal version, so an unchanged type is never resent.
type versioned struct {
	version string
	byName  map[string]types.Resource
}

func newVersioned(items []types.Resource) (versioned, error) {
	sorted := append([]types.Resource(nil), items...)
	sort.Slice(sorted, func(i, j int) bool {
		return cachev3.GetResourceName(sorted[i]) < cachev3.GetResourceName(sorted[j])
	})
	h := fnv.New128a()
	byName := make(map[string]types.Resource, len(sorted))
	opts := proto.MarshalOptions{Deterministic: true}
	for _, r := range sorted {
		name := cachev3.GetResourceName(r)
		if _, dup := byName[name]; dup {
			return versioned{}, fmt.Errorf("duplicate resource name %q", name)
		}
		b, err := opts.Marshal(r)
		if err != nil {
			return versioned{}, fmt.Errorf("marshal %s: %w", name, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
		h.Write(b)
		byName[name] = r
	}
	return versioned{version: hex.EncodeToString(h.Sum(nil))[:16], byName: byName}, nil
}

// classState is what one proxy class is being served: one versioned set per type.
type classState map[string]versioned

func buildState(r *Resources) (classState, error) {
	st := classState{}
	for _, t := range orderedTypes {
		v, err := newVersioned(r.byType(t))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", shortType(t), err)
		}
		st[t] = v
	}
	return st, nil
}

// snapshot turns a state into a go-control-plane snapshot with per-type versions and
// checks that every referenced EDS and RDS resource is present.
func (st classState) snapshot() (*cachev3.Snapshot, error) {
	snap := &cachev3.Snapshot{}
	for _, t := range orderedTypes {
		v := st[t]
		items := make([]types.Resource, 0, len(v.byName))
		for _, r := range v.byName {
			items = append(items, r)
		}
		snap.Resources[cachev3.GetResponseType(t)] = cachev3.NewResources(v.version, items)
	}
	if err := snap.Consistent(); err != nil {
		return nil, fmt.Errorf("inconsistent snapshot: %w", err)
	}
	return snap, nil
}

// merge returns a type's resources with every name from both a and b; b wins on conflict.
func merge(a, b versioned) (versioned, error) {
	items := make([]types.Resource, 0, len(a.byName)+len(b.byName))
	for name, r := range a.byName {
		if _, ok := b.byName[name]; !ok {
			items = append(items, r)
		}
	}
	for _, r := range b.byName {
		items = append(items, r)
	}
	return newVersioned(items)
}
