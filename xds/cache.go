package xds

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// sharedCache serves every proxy of a class from one classState: each resource was
// marshaled once when the state was built, and every stream's response points at the same
// bytes. Its locks are per class and are never held while a response is handed to a
// stream, so a slow proxy cannot stall a push to the others.
//
// It also holds NACKed versions: in state-of-the-world xDS a NACK carries the last version
// the proxy accepted, which differs from the current one, so a naive cache answers at once
// with the very config the proxy just rejected — forever. Here a NACK of the current
// version counts as "up to date", and the proxy hears from us again only when its class's
// config changes. (Delta needs no help: what was sent is recorded as held either way.)
type sharedCache struct {
	reg *registry

	mu      sync.Mutex
	classes map[string]*classEntry
}

var _ cachev3.Cache = (*sharedCache)(nil)

func newSharedCache(reg *registry) *sharedCache {
	return &sharedCache{reg: reg, classes: map[string]*classEntry{}}
}

// classEntry is one class's current state and the watches waiting for its next change.
type classEntry struct {
	mu      sync.Mutex
	state   classState // nil until the class is first translated
	watches map[string]map[*watch]struct{}
	// recent keeps the last versions of EDS and RDS, so a state-of-the-world stream is
	// sent only the endpoints and route configurations that changed; changes caches those
	// lists by type and old version, for the current version (every stream of the class
	// usually holds the same old version).
	recent  map[string][]versioned
	changes map[string]map[string]*wireBlob
	// covers remembers, for the current state, which interned name sets subscribe to every
	// resource of their type: thousands of streams share a handful of sets.
	covers map[coverKey]bool
}

type coverKey struct {
	typeURL string
	names   *nameSet
}

// subscribesAll is subscribesAll(v, sub), remembered per shared name set. The entry's
// lock is held.
func (e *classEntry) subscribesAll(typeURL string, v versioned, sub cachev3.Subscription) bool {
	s, ok := sub.(*subscription)
	if !ok || s.names == nil {
		return subscribesAll(v, sub)
	}
	k := coverKey{typeURL, s.names}
	all, known := e.covers[k]
	if !known {
		if e.covers == nil {
			e.covers = map[coverKey]bool{}
		}
		all = subscribesAll(v, sub)
		e.covers[k] = all
	}
	return all
}

// partialTypes are the types whose state-of-the-world responses may carry only what
// changed: the proxy subscribes to them by name and keeps a resource a response leaves
// out (xDS: only Listener, Cluster and other wildcard types need the whole set each time).
var partialTypes = []string{resourcev3.EndpointType, resourcev3.RouteType}

// keptVersions is how many versions of a partial type a class remembers for incremental
// pushes.
const keptVersions = 4

// remember records the class's new versions of the partial types.
func (e *classEntry) remember(st classState) {
	if e.recent == nil {
		e.recent, e.changes = map[string][]versioned{}, map[string]map[string]*wireBlob{}
	}
	for _, t := range partialTypes {
		v, ok := st[t]
		recent := e.recent[t]
		if n := len(recent); !ok || (n > 0 && recent[n-1].version == v.version) {
			continue
		}
		recent = append(recent, v)
		if len(recent) > keptVersions {
			recent = recent[1:]
		}
		e.recent[t], e.changes[t] = recent, map[string]*wireBlob{}
	}
}

// changedSince returns the current resources of a partial type that differ from version
// old, if that version is still remembered.
func (e *classEntry) changedSince(typeURL string, cur versioned, old string) (*wireBlob, bool) {
	if list, ok := e.changes[typeURL][old]; ok {
		return list, true
	}
	for _, prev := range e.recent[typeURL] {
		if prev.version != old {
			continue
		}
		list := []*anypb.Any{}
		for _, name := range cur.names {
			it := cur.items[name]
			if was, ok := prev.items[name]; !ok || was.hash != it.hash {
				list = append(list, it.any)
			}
		}
		e.changes[typeURL][old] = newWireBlob(list)
		return e.changes[typeURL][old], true
	}
	return nil, false
}

// watch is one stream's open request for one type, state of the world or delta.
type watch struct {
	node   string
	sotw   *cachev3.Request
	delta  *cachev3.DeltaRequest
	sub    cachev3.Subscription
	out    chan cachev3.Response
	notify func(cachev3.Response) // instead of out: must not block
	dout   chan cachev3.DeltaResponse
	done   chan struct{}
	cancel sync.Once
}

func (w *watch) typeURL() string {
	if w.sotw != nil {
		return w.sotw.GetTypeUrl()
	}
	return w.delta.GetTypeUrl()
}

func (c *sharedCache) entry(key string) *classEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.classes[key]
	if !ok {
		e = &classEntry{watches: map[string]map[*watch]struct{}{}}
		c.classes[key] = e
	}
	return e
}

// set makes st the state of a class and answers every watch it changes, in CDS, EDS, LDS,
// RDS order.
func (c *sharedCache) set(key string, st classState) {
	e := c.entry(key)
	type answer struct {
		w    *watch
		resp any
	}
	var answers []answer
	e.mu.Lock()
	e.state = st
	e.covers = nil
	e.remember(st)
	for _, t := range orderedTypes {
		for w := range e.watches[t] {
			if resp := c.respond(e, w); resp != nil {
				delete(e.watches[t], w)
				answers = append(answers, answer{w, resp})
			}
		}
	}
	e.mu.Unlock()
	for _, a := range answers {
		a.w.deliver(a.resp)
	}
}

// clear forgets a class's state; watches stay open for when it is translated again.
func (c *sharedCache) clear(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.classes[key]
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state, e.covers = nil, nil
	if e.empty() {
		delete(c.classes, key)
	}
}

func (e *classEntry) empty() bool {
	for _, ws := range e.watches {
		if len(ws) > 0 {
			return false
		}
	}
	return true
}

// has reports whether a class has a state, for tests.
func (c *sharedCache) has(key string) bool {
	c.mu.Lock()
	e, ok := c.classes[key]
	c.mu.Unlock()
	if !ok {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state != nil
}

// CreateWatch answers a state-of-the-world request at once if the proxy is behind, or
// keeps it until the class's state changes.
func (c *sharedCache) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, out chan cachev3.Response) (func(), error) {
	w := &watch{node: req.GetNode().GetId(), sotw: withoutNames(req), sub: sub, out: out, done: make(chan struct{})}
	return c.open(ClassOf(req.GetNode()).Key(), w), nil
}

// watchClass is CreateWatch for a caller that knows the proxy's class (weir's own stream
// loop works it out once per stream, not on every ACK).
// The answer is handed to notify, which must not block.
func (c *sharedCache) watchClass(class string, req *cachev3.Request, sub cachev3.Subscription, notify func(cachev3.Response)) func() {
	w := &watch{node: req.GetNode().GetId(), sotw: withoutNames(req), sub: sub, notify: notify, done: make(chan struct{})}
	return c.open(class, w)
}

// withoutNames keeps a request without its resource names (the subscription has them): a
// sidecar's EDS request names every cluster of the mesh, and a watch lives as long as the
// stream.
func withoutNames(req *cachev3.Request) *cachev3.Request {
	if len(req.GetResourceNames()) == 0 {
		return req
	}
	return &cachev3.Request{Node: req.GetNode(), TypeUrl: req.GetTypeUrl(), VersionInfo: req.GetVersionInfo(),
		ResponseNonce: req.GetResponseNonce(), ErrorDetail: req.GetErrorDetail()}
}

// CreateDeltaWatch answers an incremental request at once if any subscribed resource
// differs from what the proxy holds, or keeps it until the class's state changes.
func (c *sharedCache) CreateDeltaWatch(req *cachev3.DeltaRequest, sub cachev3.Subscription, out chan cachev3.DeltaResponse) (func(), error) {
	kept := &cachev3.DeltaRequest{Node: req.GetNode(), TypeUrl: req.GetTypeUrl(), ResponseNonce: req.GetResponseNonce(),
		ErrorDetail: req.GetErrorDetail()}
	w := &watch{node: req.GetNode().GetId(), delta: kept, sub: sub, dout: out, done: make(chan struct{})}
	return c.open(ClassOf(req.GetNode()).Key(), w), nil
}

func (c *sharedCache) open(key string, w *watch) func() {
	e := c.entry(key)
	t := w.typeURL()
	e.mu.Lock()
	if e.state != nil {
		if resp := c.respond(e, w); resp != nil {
			e.mu.Unlock()
			w.deliver(resp)
			return func() {}
		}
	}
	if e.watches[t] == nil {
		e.watches[t] = map[*watch]struct{}{}
	}
	e.watches[t][w] = struct{}{}
	e.mu.Unlock()
	return func() {
		w.cancel.Do(func() { close(w.done) })
		e.mu.Lock()
		delete(e.watches[t], w)
		e.mu.Unlock()
	}
}

// errNoFetch: weir serves streams only; Envoy's REST polling is not supported.
var errNoFetch = errors.New("fetch (REST xDS) is not supported; use ADS")

// Fetch is not supported.
func (c *sharedCache) Fetch(context.Context, *cachev3.Request) (cachev3.Response, error) {
	return nil, errNoFetch
}

// deliver hands a response to the stream. The stream's channel has room for one response
// per type, so this almost never waits; if it must, it waits in its own goroutine until
// the stream takes it or goes away, never holding anyone else up.
func (w *watch) deliver(resp any) {
	if w.sotw != nil {
		r := resp.(cachev3.Response)
		if w.notify != nil {
			w.notify(r)
			return
		}
		select {
		case w.out <- r:
		default:
			go func() {
				select {
				case w.out <- r:
				case <-w.done:
				}
			}()
		}
		return
	}
	r := resp.(cachev3.DeltaResponse)
	select {
	case w.dout <- r:
	default:
		go func() {
			select {
			case w.dout <- r:
			case <-w.done:
			}
		}()
	}
}

// respond returns the response a watch needs from the class's state, or nil if it is up
// to date. The entry's lock is held.
func (c *sharedCache) respond(e *classEntry, w *watch) any {
	v, ok := e.state[w.typeURL()]
	if !ok {
		return nil
	}
	if w.sotw != nil {
		return c.respondSotw(e, v, w)
	}
	return respondDelta(v, w)
}

func (c *sharedCache) respondSotw(e *classEntry, v versioned, w *watch) cachev3.Response {
	req := w.sotw
	held := req.GetVersionInfo()
	if req.GetErrorDetail() != nil && c.reg.nackedVersion(w.node, req.GetTypeUrl()) == v.version {
		held = v.version // rejected this very version: do not send it again
	}
	if held == v.version && !missingNames(v, w.sub) {
		return nil
	}
	resp := &sotwResponse{req: req, version: v.version}
	if w.sub.IsWildcard() || e.subscribesAll(req.GetTypeUrl(), v, w.sub) {
		resp.wire, resp.returned = v.wire, v.sotwReturned
		// Endpoints and routes need not be sent whole: a stream that holds a remembered
		// version gets only the assignments or route configurations that changed since.
		if t := req.GetTypeUrl(); slices.Contains(partialTypes, t) && sameMap(w.sub.ReturnedResources(), e.recentReturned(t, held)) {
			if changed, ok := e.changedSince(t, v, held); ok {
				resp.wire = changed
			}
		}
		return resp
	}
	resp.returned = map[string]string{}
	for _, name := range v.names {
		if _, ok := w.sub.SubscribedResources()[name]; ok {
			resp.resources = append(resp.resources, v.items[name].any)
			resp.returned[name] = v.version
		}
	}
	return resp
}

// recentReturned is the shared "returned" map of a remembered version of a partial type: a
// stream holding it received that version whole.
func (e *classEntry) recentReturned(typeURL, version string) map[string]string {
	for _, prev := range e.recent[typeURL] {
		if prev.version == version {
			return prev.sotwReturned
		}
	}
	return nil
}

// missingNames reports whether the stream, holding the current version, still lacks a
// resource it subscribes to (say, it just added a name). A stream that holds the version
// but has been sent nothing on this stream is a proxy reconnecting with its config: it
// lacks nothing.
func missingNames(v versioned, sub cachev3.Subscription) bool {
	returned := sub.ReturnedResources()
	if len(returned) == 0 || sameMap(returned, v.sotwReturned) {
		return false
	}
	if sub.IsWildcard() {
		return len(returned) < len(v.items)
	}
	for name := range sub.SubscribedResources() {
		if _, known := returned[name]; !known {
			if _, exists := v.items[name]; exists {
				return true
			}
		}
	}
	return false
}

// subscribesAll reports whether a named subscription covers every resource of v, so the
// shared full response serves it.
func subscribesAll(v versioned, sub cachev3.Subscription) bool {
	subscribed := sub.SubscribedResources()
	if len(subscribed) < len(v.items) {
		return false
	}
	n := 0
	for name := range subscribed {
		if _, ok := v.items[name]; ok {
			n++
		}
	}
	return n == len(v.items)
}

func respondDelta(v versioned, w *watch) cachev3.DeltaResponse {
	held := w.sub.ReturnedResources()
	resp := &deltaResponse{req: w.delta, version: v.version}
	if w.sub.IsWildcard() && len(held) == 0 {
		resp.resources, resp.next = v.deltaAll.get(), v.deltaHeld()
	} else if w.sub.IsWildcard() {
		for _, name := range v.names {
			if it := v.items[name]; held[name] != it.hash {
				resp.resources = append(resp.resources, deltaResource(name, it))
			}
		}
		for name := range held {
			if _, ok := v.items[name]; !ok {
				resp.removed = append(resp.removed, name)
			}
		}
		// A copy: go-control-plane's delta loop edits the map it is given when the proxy
		// unsubscribes, and this one belongs to the version.
		resp.next = v.deltaHeld()
	} else {
		resp.next = make(map[string]string, len(w.sub.SubscribedResources()))
		for name := range w.sub.SubscribedResources() {
			it, exists := v.items[name]
			prev, had := held[name]
			switch {
			case exists:
				resp.next[name] = it.hash
				if prev != it.hash {
					resp.resources = append(resp.resources, deltaResource(name, it))
				}
			case had:
				resp.removed = append(resp.removed, name)
			}
		}
	}
	if len(resp.resources) == 0 && len(resp.removed) == 0 {
		// Only news is sent, except that a proxy's first wildcard request is always
		// answered: Envoy's initialization waits for it.
		if !w.sub.IsWildcard() || w.delta.GetResponseNonce() != "" {
			return nil
		}
	}
	return resp
}

func deltaResource(name string, it *item) *discoveryv3.Resource {
	return &discoveryv3.Resource{Name: name, Version: it.hash, Resource: it.any}
}

// sameMap reports whether two maps are the same map (not merely equal): a stream that was
// sent a whole version holds that version's shared map.
func sameMap(a, b map[string]string) bool {
	return a != nil && b != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// sotwResponse is one stream's state-of-the-world response. Its resources are either the
// encoded bytes shared by every stream (wire) or, for a stream that subscribes to only
// some names, a list of shared Anys.
type sotwResponse struct {
	req       *cachev3.Request
	version   string
	wire      *wireBlob
	resources []*anypb.Any
	returned  map[string]string
}

var _ cachev3.Response = (*sotwResponse)(nil)

func (r *sotwResponse) GetDiscoveryResponse() (*discoveryv3.DiscoveryResponse, error) {
	// A new message per stream: the server writes the stream's nonce into it.
	out := &discoveryv3.DiscoveryResponse{VersionInfo: r.version, Resources: r.resources, TypeUrl: r.req.GetTypeUrl()}
	if r.wire != nil {
		// The resources travel as already-encoded field bytes, shared by every stream.
		out.ProtoReflect().SetUnknown(r.wire.bytes())
	}
	return out, nil
}
func (r *sotwResponse) GetRequest() *discoveryv3.DiscoveryRequest { return r.req }
func (r *sotwResponse) GetVersion() (string, error)               { return r.version, nil }
func (r *sotwResponse) GetResponseVersion() string                { return r.version }
func (r *sotwResponse) GetReturnedResources() map[string]string   { return r.returned }
func (r *sotwResponse) GetContext() context.Context               { return context.Background() }

// deltaResponse is one stream's incremental response; its resources are shared.
type deltaResponse struct {
	req       *cachev3.DeltaRequest
	version   string
	resources []*discoveryv3.Resource
	removed   []string
	next      map[string]string
}

var _ cachev3.DeltaResponse = (*deltaResponse)(nil)

func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discoveryv3.DeltaDiscoveryResponse, error) {
	return &discoveryv3.DeltaDiscoveryResponse{
		SystemVersionInfo: r.version, Resources: r.resources, RemovedResources: r.removed, TypeUrl: r.req.GetTypeUrl(),
	}, nil
}
func (r *deltaResponse) GetDeltaRequest() *discoveryv3.DeltaDiscoveryRequest { return r.req }
func (r *deltaResponse) GetSystemVersion() (string, error)                   { return r.version, nil }
func (r *deltaResponse) GetResponseVersion() string                          { return r.version }
func (r *deltaResponse) GetNextVersionMap() map[string]string                { return r.next }
func (r *deltaResponse) GetReturnedResources() map[string]string             { return r.next }
func (r *deltaResponse) GetContext() context.Context                         { return context.Background() }
