package xds

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Type URLs in the order ADS must deliver them: a route never arrives before its cluster.
var orderedTypes = []string{
	resourcev3.ClusterType,
	resourcev3.EndpointType,
	resourcev3.SecretType,
	resourcev3.ListenerType,
	resourcev3.ScopedRouteType,
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
	case resourcev3.ScopedRouteType:
		return "srds"
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
	Scopes    []types.Resource // ScopedRouteConfigurations
	Secrets   []types.Resource // TLS certificates of gateway listeners
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
	case resourcev3.ScopedRouteType:
		return r.Scopes
	case resourcev3.SecretType:
		return r.Secrets
	}
	return nil
}

// item is one resource of one version, marshaled once and shared, bytes and all, by every
// stream that is sent it.
type item struct {
	name string
	any  *anypb.Any
	hash string // content hash: the resource's version in delta xDS
}

// versioned is one type's resources with a content-derived version: equal content gives
// an equal version, so an unchanged type is never resent. Everything a response needs is
// computed here once per version, so answering a stream costs no marshaling and, when the
// stream receives everything (the usual case), no allocation beyond the response itself.
type versioned struct {
	version string
	items   map[string]*item
	names   []string     // sorted
	all     []*anypb.Any // every resource, in name order
	wire    *wireBlob    // all, encoded once for every stream
	// sotwReturned is what a state-of-the-world stream holds after receiving all of this
	// version (name -> type version); shared, never modified.
	sotwReturned map[string]string
	deltaAll     *deltaList // every resource, for a delta proxy that holds none
	marshaled    int        // bytes marshaled to build this version
}

func newVersioned(resources []types.Resource) (versioned, error) {
	items := make([]*item, 0, len(resources))
	opts := proto.MarshalOptions{Deterministic: true}
	marshaled := 0
	for _, r := range resources {
		b, err := opts.Marshal(r)
		if err != nil {
			return versioned{}, fmt.Errorf("marshal %s: %w", cachev3.GetResourceName(r), err)
		}
		marshaled += len(b)
		h := fnv.New64a()
		h.Write(b)
		items = append(items, &item{
			name: cachev3.GetResourceName(r),
			any:  &anypb.Any{TypeUrl: typePrefix + string(proto.MessageName(r)), Value: b},
			hash: hex.EncodeToString(h.Sum(nil)),
		})
	}
	v, err := fromItems(items)
	v.marshaled = marshaled
	return v, err
}

const typePrefix = "type.googleapis.com/"

// fromItems assembles a version from already-marshaled resources.
func fromItems(items []*item) (versioned, error) {
	sorted := append([]*item(nil), items...)
	sort.Slice(sorted, func(i, j int) bool {
		return sorted[i].name < sorted[j].name
	})
	v := versioned{
		items: make(map[string]*item, len(sorted)),
		names: make([]string, 0, len(sorted)),
		all:   make([]*anypb.Any, 0, len(sorted)),
	}
	h := fnv.New128a()
	for _, it := range sorted {
		name := it.name
		if _, dup := v.items[name]; dup {
			return versioned{}, fmt.Errorf("duplicate resource name %q", name)
		}
		fmt.Fprintf(h, "%s\x00%s\x00", name, it.hash)
		v.items[name] = it
		v.names = append(v.names, name)
		v.all = append(v.all, it.any)
	}
	v.version = hex.EncodeToString(h.Sum(nil))[:16]
	v.wire = newWireBlob(v.all)
	v.deltaAll = &deltaList{names: v.names, items: v.items}
	v.sotwReturned = make(map[string]string, len(sorted))
	for _, name := range v.names {
		v.sotwReturned[name] = v.version
	}
	return v, nil
}

// deltaHeld is what a delta stream holds after receiving all of this version (name ->
// resource hash): a new map for each stream, which go-control-plane's delta loop edits.
func (v versioned) deltaHeld() map[string]string {
	m := make(map[string]string, len(v.items))
	for name, it := range v.items {
		m[name] = it.hash
	}
	return m
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
	eds, err := tiedToClusters(st[resourcev3.EndpointType], st[resourcev3.ClusterType])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", shortType(resourcev3.EndpointType), err)
	}
	st[resourcev3.EndpointType] = eds
	return st, nil
}

// tiedToClusters makes each ClusterLoadAssignment's version depend on its cluster's too.
// Envoy builds a modified EDS cluster anew and keeps serving the old one until the new one
// has received its endpoints; were they unchanged, they would never be resent and the
// change (a new load balancer, TLS settings, outlier detection) would never take effect.
// With the cluster's hash folded in, a changed cluster's assignment counts as changed and
// goes out right after it, in both state-of-the-world and delta xDS.
func tiedToClusters(eds, cds versioned) (versioned, error) {
	items := make([]*item, 0, len(eds.items))
	tied := false
	for _, it := range eds.items {
		c, ok := cds.items[it.name]
		if !ok {
			items = append(items, it)
			continue
		}
		h := fnv.New64a()
		fmt.Fprintf(h, "%s\x00%s", it.hash, c.hash)
		items = append(items, &item{name: it.name, any: it.any, hash: hex.EncodeToString(h.Sum(nil))})
		tied = true
	}
	if !tied {
		return eds, nil
	}
	v, err := fromItems(items)
	v.marshaled = eds.marshaled
	return v, err
}

// decoded returns the resources of this version by name, decoded from their bytes: a
// version keeps only bytes, since every proxy is sent those and decoded protos would
// double a class's memory for the rare reader (NACK attribution, /debug/config).
func (v versioned) decoded() map[string]types.Resource {
	out := make(map[string]types.Resource, len(v.items))
	for name, it := range v.items {
		m, err := it.any.UnmarshalNew()
		if err != nil { // bytes we marshaled ourselves
			panic(fmt.Sprintf("decode %s: %v", name, err))
		}
		out[name] = m.(types.Resource)
	}
	return out
}

// consistent checks that every EDS and RDS resource the clusters and route scopes
// reference is present, and nothing more.
func (r *Resources) consistent() error {
	snap := &cachev3.Snapshot{}
	for _, t := range orderedTypes {
		snap.Resources[cachev3.GetResponseType(t)] = cachev3.NewResources("", r.byType(t))
	}
	if err := snap.Consistent(); err != nil {
		return fmt.Errorf("inconsistent snapshot: %w", err)
	}
	return nil
}

// merge returns a type's resources with every name from both a and b; b wins on conflict.
// Nothing is marshaled again.
func merge(a, b versioned) (versioned, error) {
	items := make([]*item, 0, len(a.items)+len(b.items))
	for name, it := range a.items {
		if _, ok := b.items[name]; !ok {
			items = append(items, it)
		}
	}
	for _, it := range b.items {
		items = append(items, it)
	}
	return fromItems(items)
}

// wireBlob is a list of resources encoded once, lazily, as the `resources` field of a
// DiscoveryResponse. A response carrying it as raw field bytes (see sotwResponse) costs
// each stream a few header bytes: gRPC writes the shared bytes without copying them into
// a per-stream buffer (internCodec.Marshal).
type wireBlob struct {
	once sync.Once
	anys []*anypb.Any
	b    []byte
}

func newWireBlob(anys []*anypb.Any) *wireBlob { return &wireBlob{anys: anys} }

// resourcesField is DiscoveryResponse.resources' field number.
const resourcesField = 2

func (w *wireBlob) bytes() []byte {
	w.once.Do(func() {
		opts := proto.MarshalOptions{Deterministic: true}
		size := 0
		for _, a := range w.anys {
			size += proto.Size(a) + 8
		}
		b := make([]byte, 0, size)
		for _, a := range w.anys {
			enc, err := opts.Marshal(a)
			if err != nil { // an Any of bytes we built ourselves cannot fail to encode
				panic(fmt.Sprintf("encode resource: %v", err))
			}
			b = protowire.AppendTag(b, resourcesField, protowire.BytesType)
			b = protowire.AppendBytes(b, enc)
		}
		w.b = b
	})
	return w.b
}

// deltaList is every resource of a version as delta resources, built on first use: a mesh
// of state-of-the-world proxies never needs it.
type deltaList struct {
	once  sync.Once
	names []string
	items map[string]*item
	list  []*discoveryv3.Resource
}

func (d *deltaList) get() []*discoveryv3.Resource {
	d.once.Do(func() {
		d.list = make([]*discoveryv3.Resource, 0, len(d.names))
		for _, name := range d.names {
			d.list = append(d.list, deltaResource(name, d.items[name]))
		}
	})
	return d.list
}
