package xds

import (
	"slices"
)

// Pending returns the node ids of the proxies that do not yet run, for the resource
// called name of typeURL, the content their class is to serve now: they have not ACKed a
// version that holds it (a NACK does not count). Proxies whose class has no such
// resource are not asked. The rollout controller waits for an empty answer before it
// judges a step: the weights must be in effect everywhere first.
func (s *Server) Pending(typeURL, name string) []string {
	s.pub.mu.Lock()
	classes := make([]*classPub, 0, len(s.pub.classes))
	for _, cp := range s.pub.classes {
		classes = append(classes, cp)
	}
	s.pub.mu.Unlock()
	var out []string
	for _, cp := range classes {
		want, held := cp.contentOf(typeURL, name)
		if want == "" {
			continue
		}
		for node, version := range s.reg.ackedVersions(cp.key, typeURL) {
			if held[version] != want {
				out = append(out, node)
			}
		}
	}
	slices.Sort(out)
	return out
}

// contentOf returns the hash of the named resource in the class's desired state ("" if
// it has none) and, for every version of the type the class still knows, the hash that
// version holds for it.
func (cp *classPub) contentOf(typeURL, name string) (string, map[string]string) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	it, ok := cp.desired[typeURL].items[name]
	if !ok {
		return "", nil
	}
	held := map[string]string{}
	add := func(v versioned) {
		if it, ok := v.items[name]; ok {
			held[v.version] = it.hash
		}
	}
	add(cp.desired[typeURL])
	add(cp.serving[typeURL])
	for _, e := range cp.hist.entries {
		add(e.state[typeURL])
	}
	return it.hash, held
}

// ackedVersions returns the version each proxy of a class last ACKed for typeURL ("" if
// none yet), by node id.
func (r *registry) ackedVersions(classKey, typeURL string) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.byClass[classKey]))
	for _, p := range r.byClass[classKey] {
		v := ""
		if ts, ok := p.Types[shortType(typeURL)]; ok {
			v = ts.AckedVersion
		}
		out[p.NodeID] = v
	}
	return out
}
