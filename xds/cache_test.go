package xds

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
)

func testState(t *testing.T, weightA, weightB uint32) classState {
	t.Helper()
	st, err := buildState(testResources(weightA, weightB))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sotwReq(id, typeURL, version string, names ...string) *cachev3.Request {
	return &cachev3.Request{Node: testNode(id), TypeUrl: typeURL, VersionInfo: version, ResourceNames: names}
}

// decoded is a response as the proxy reads it: shared encoded resources become Resources.
func decoded(t *testing.T, r cachev3.Response) *discoveryv3.DiscoveryResponse {
	t.Helper()
	out, err := r.GetDiscoveryResponse()
	if err != nil {
		t.Fatal(err)
	}
	b, err := newInternCodec().Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	got := &discoveryv3.DiscoveryResponse{}
	if err := proto.Unmarshal(b.Materialize(), got); err != nil {
		t.Fatal(err)
	}
	return got
}

func receive(t *testing.T, ch chan cachev3.Response) *discoveryv3.DiscoveryResponse {
	t.Helper()
	select {
	case r := <-ch:
		return decoded(t, r)
	case <-time.After(2 * time.Second):
		t.Fatal("no response")
		return nil
	}
}

func noResponse(t *testing.T, ch chan cachev3.Response) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("unexpected response, version %s", r.GetResponseVersion())
	case <-time.After(50 * time.Millisecond):
	}
}

// Every stream of a class is sent the very same encoded bytes: nothing is marshaled or
// copied per stream.
func TestStreamsShareEncodedResources(t *testing.T) {
	c := newSharedCache(newRegistry())
	key := ClassOf(testNode("a")).Key()
	c.set(key, testState(t, 90, 10))

	for _, typ := range []string{resourcev3.ClusterType, resourcev3.RouteType} {
		var shared [][]byte
		var msgs []*discoveryv3.DiscoveryResponse
		for _, id := range []string{"a", "b"} {
			ch := make(chan cachev3.Response, 1)
			if _, err := c.CreateWatch(sotwReq(id, typ, ""), stream.NewSotwSubscription(nil, true), ch); err != nil {
				t.Fatal(err)
			}
			r := <-ch
			out, _ := r.GetDiscoveryResponse()
			wire, err := newInternCodec().Marshal(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(wire) != 2 {
				t.Fatalf("%s: response encoded as %d buffers, want a header and the shared resources", typ, len(wire))
			}
			shared = append(shared, wire[1].ReadOnlyData())
			msgs = append(msgs, out)
			if got := decoded(t, r); len(got.Resources) == 0 || got.VersionInfo == "" || got.TypeUrl != typ {
				t.Fatalf("%s: decodes to %d resources, version %q, type %q", typ, len(got.Resources), got.VersionInfo, got.TypeUrl)
			}
		}
		if msgs[0] == msgs[1] {
			t.Fatal("two streams share one response message; each needs its own for its nonce")
		}
		if &shared[0][0] != &shared[1][0] {
			t.Fatalf("%s: resources encoded separately per stream", typ)
		}
	}
}

// A stream that holds the current version gets nothing until the class changes, and then
// only the types that changed.
func TestWatchIsAnsweredOnlyByChange(t *testing.T) {
	c := newSharedCache(newRegistry())
	key := ClassOf(testNode("a")).Key()
	st := testState(t, 90, 10)
	c.set(key, st)

	cds := make(chan cachev3.Response, 1)
	rds := make(chan cachev3.Response, 1)
	if _, err := c.CreateWatch(sotwReq("a", resourcev3.ClusterType, st[resourcev3.ClusterType].version), stream.NewSotwSubscription(nil, true), cds); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateWatch(sotwReq("a", resourcev3.RouteType, st[resourcev3.RouteType].version, "outbound"), stream.NewSotwSubscription([]string{"outbound"}, true), rds); err != nil {
		t.Fatal(err)
	}
	noResponse(t, cds)
	noResponse(t, rds)

	next := testState(t, 50, 50) // a weight change: routes only
	c.set(key, next)
	if got := receive(t, rds); got.VersionInfo != next[resourcev3.RouteType].version {
		t.Fatalf("rds version %s, want %s", got.VersionInfo, next[resourcev3.RouteType].version)
	}
	noResponse(t, cds)
}

// Versions are shared: two classes with equal clusters hold one copy, and a change that
// leaves the clusters alone keeps the very object streams were sent (a stream knows what
// it holds by the identity of its "returned" map).
func TestPublisherSharesEqualVersions(t *testing.T) {
	srv, _ := startServer(t)
	a, b := ClassOf(testNode("a")).Key(), "other-class"
	for _, key := range []string{a, b} {
		if err := srv.Publish(key, testResources(90, 10)); err != nil {
			t.Fatal(err)
		}
	}
	desired := func(key string) classState {
		cp := srv.pub.classes[key]
		cp.mu.Lock()
		defer cp.mu.Unlock()
		return cp.desired
	}
	first := desired(a)[resourcev3.ClusterType]
	if !sameMap(desired(b)[resourcev3.ClusterType].sotwReturned, first.sotwReturned) {
		t.Error("two classes with equal clusters hold two copies")
	}
	if err := srv.Publish(a, testResources(50, 50)); err != nil { // routes only
		t.Fatal(err)
	}
	if !sameMap(desired(a)[resourcev3.ClusterType].sotwReturned, first.sotwReturned) {
		t.Error("a weight change replaced the unchanged clusters by an equal copy")
	}
	if desired(a)[resourcev3.RouteType].version == first.version {
		t.Error("the routes did not change")
	}
	ha, hb := srv.pub.classes[a].hist.entries, srv.pub.classes[b].hist.entries
	if len(ha) != 2 || len(hb) != 1 || !sameOrigins(ha[0].origins, hb[0].origins) || !sameOrigins(ha[1].origins, ha[0].origins) {
		t.Error("equal origins are kept as separate maps")
	}
}

// A stream that never reads must not hold up the push to the others.
func TestWedgedStreamDoesNotBlockOthers(t *testing.T) {
	c := newSharedCache(newRegistry())
	key := ClassOf(testNode("a")).Key()
	st := testState(t, 90, 10)
	c.set(key, st)

	wedged := make(chan cachev3.Response) // unbuffered, never read
	cancel, err := c.CreateWatch(sotwReq("a", resourcev3.RouteType, st[resourcev3.RouteType].version), stream.NewSotwSubscription(nil, true), wedged)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	healthy := make(chan cachev3.Response, 1)
	if _, err := c.CreateWatch(sotwReq("b", resourcev3.RouteType, st[resourcev3.RouteType].version), stream.NewSotwSubscription(nil, true), healthy); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.set(key, testState(t, 50, 50)); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("set blocked on a stream that does not read")
	}
	receive(t, healthy)
}

// Delta: the first wildcard request gets everything, a change gets only what changed.
func TestDeltaSendsOnlyChanges(t *testing.T) {
	c := newSharedCache(newRegistry())
	key := ClassOf(testNode("a")).Key()
	st := testState(t, 90, 10)
	c.set(key, st)

	sub := stream.NewDeltaSubscription(nil, nil, nil, true)
	ch := make(chan cachev3.DeltaResponse, 1)
	req := &cachev3.DeltaRequest{Node: testNode("a"), TypeUrl: resourcev3.ClusterType}
	if _, err := c.CreateDeltaWatch(req, &sub, ch); err != nil {
		t.Fatal(err)
	}
	first := <-ch
	out, _ := first.GetDeltaDiscoveryResponse()
	if len(out.Resources) != len(st[resourcev3.ClusterType].items) {
		t.Fatalf("first response has %d clusters, want %d", len(out.Resources), len(st[resourcev3.ClusterType].items))
	}
	sub.SetReturnedResources(first.GetNextVersionMap())

	// The proxy ACKs: nothing new to send.
	ack := &cachev3.DeltaRequest{Node: testNode("a"), TypeUrl: resourcev3.ClusterType, ResponseNonce: "1"}
	cancel, err := c.CreateDeltaWatch(ack, &sub, ch)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		t.Fatalf("unexpected delta response %v", r.GetNextVersionMap())
	case <-time.After(50 * time.Millisecond):
	}
	cancel()

	// Drop one cluster: the next response removes exactly it.
	res := testResources(90, 10)
	res.Clusters = res.Clusters[1:]
	next, err := buildState(res)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateDeltaWatch(ack, &sub, ch); err != nil {
		t.Fatal(err)
	}
	c.set(key, next)
	r := <-ch
	out, _ = r.GetDeltaDiscoveryResponse()
	if len(out.Resources) != 0 || len(out.RemovedResources) != 1 {
		t.Fatalf("got %d resources and removed %v, want 0 and one removal", len(out.Resources), out.RemovedResources)
	}
}

// State of the world: endpoints are not a full-state type, so a stream that holds the
// previous endpoints is sent only the assignment that changed; one that reconnects gets all.
func TestSotwEndpointsAreIncremental(t *testing.T) {
	c := newSharedCache(newRegistry())
	key := ClassOf(testNode("a")).Key()
	st := testState(t, 90, 10)
	c.set(key, st)
	names := []string{"a", "b"}

	ch := make(chan cachev3.Response, 1)
	sub := stream.NewSotwSubscription(names, true)
	if _, err := c.CreateWatch(sotwReq("a", resourcev3.EndpointType, "", names...), sub, ch); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if out := decoded(t, r); len(out.Resources) != 2 {
		t.Fatalf("first EDS response has %d assignments, want 2", len(out.Resources))
	}
	sub.SetReturnedResources(r.GetReturnedResources())
	if _, err := c.CreateWatch(sotwReq("a", resourcev3.EndpointType, r.GetResponseVersion(), names...), sub, ch); err != nil {
		t.Fatal(err)
	}

	res := testResources(90, 10)
	res.Endpoints[1].(*endpointv3.ClusterLoadAssignment).Endpoints = []*endpointv3.LocalityLbEndpoints{{}}
	next, err := buildState(res)
	if err != nil {
		t.Fatal(err)
	}
	c.set(key, next)
	out := receive(t, ch)
	if len(out.Resources) != 1 {
		t.Fatalf("after one assignment changed, EDS response has %d, want 1", len(out.Resources))
	}
	cla := &endpointv3.ClusterLoadAssignment{}
	if err := out.Resources[0].UnmarshalTo(cla); err != nil || cla.ClusterName != "b" {
		t.Fatalf("sent %q (%v), want the changed assignment b", cla.ClusterName, err)
	}

	fresh := make(chan cachev3.Response, 1)
	if _, err := c.CreateWatch(sotwReq("z", resourcev3.EndpointType, "", names...), stream.NewSotwSubscription(names, true), fresh); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, fresh); len(got.Resources) != 2 {
		t.Fatalf("a new stream got %d assignments, want all 2", len(got.Resources))
	}
}

// go-control-plane's delta loop edits the "returned" map of a stream when the proxy
// unsubscribes; the map a delta stream is given must be its own, never the version's.
func TestDeltaStreamsDoNotShareReturnedMaps(t *testing.T) {
	c := newSharedCache(newRegistry())
	key := ClassOf(testNode("a")).Key()
	st := testState(t, 90, 10)
	c.set(key, st)
	held := func() map[string]string {
		sub := stream.NewDeltaSubscription(nil, nil, nil, true)
		ch := make(chan cachev3.DeltaResponse, 1)
		if _, err := c.CreateDeltaWatch(&cachev3.DeltaRequest{Node: testNode("a"), TypeUrl: resourcev3.ClusterType}, &sub, ch); err != nil {
			t.Fatal(err)
		}
		m := (<-ch).GetNextVersionMap()
		sub.SetReturnedResources(m)
		sub.UpdateResourceSubscriptions([]string{"a"}, nil)
		sub.UpdateResourceSubscriptions(nil, []string{"a", "b"})
		return m
	}
	one, two := held(), held()
	if want := len(st[resourcev3.ClusterType].items); len(st[resourcev3.ClusterType].deltaHeld()) != want {
		t.Fatalf("the version's resources changed: %v", st[resourcev3.ClusterType].deltaHeld())
	}
	if sameMap(one, two) {
		t.Fatal("two delta streams were given one map")
	}
}

func sameOrigins(a, b map[string][]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
