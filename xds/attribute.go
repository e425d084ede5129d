package xds

import (
	"sort"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"
)

// history keeps the last few published states of a class so that a NACK of any recent
// version can be traced to the resources, and so the source objects, that changed in it.
type history struct {
	entries []historyEntry
}

type historyEntry struct {
	state   classState
	origins map[string][]string
}

// historyLen bounds the states kept per class. A NACK answers one of the last pushes
// (a change is at most three stages), and each state holds a whole config, so keep few.
const historyLen = 4

func (h *history) add(st classState, origins map[string][]string) {
	h.entries = append(h.entries, historyEntry{state: st, origins: origins})
	if len(h.entries) > historyLen {
		h.entries = h.entries[len(h.entries)-historyLen:]
	}
}

// attribute names the source objects behind a rejected version of one type: resources the
// error message names, else the resources (and virtual hosts) that changed in that version.
func (h *history) attribute(typeURL, version, errMsg string) []string {
	idx := -1
	for i := len(h.entries) - 1; i >= 0; i-- {
		if h.entries[i].state[typeURL].version == version {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil
	}
	cur := h.entries[idx]
	var prev map[string]types.Resource
	for i := idx - 1; i >= 0; i-- {
		if v := h.entries[i].state[typeURL]; v.version != version {
			prev = v.decoded()
			break
		}
	}
	var keys []string
	for _, name := range cur.state[typeURL].names {
		if strings.Contains(errMsg, name) {
			keys = append(keys, name)
		}
	}
	if len(keys) == 0 {
		keys = changedKeys(cur.state[typeURL].decoded(), prev)
	}
	if out := originsOf(cur.origins, keys); len(out) > 0 {
		return out
	}
	// Nothing finer is known: every source of every resource of the rejected type.
	return originsOf(cur.origins, cur.state[typeURL].names)
}

// changedKeys lists resources that are new or differ from prev; for route configurations it
// descends to virtual hosts (keyed by virtual host name) so one bad VirtualService is
// singled out.
func changedKeys(now, prev map[string]types.Resource) []string {
	var keys []string
	for name, r := range now {
		old, ok := prev[name]
		if ok && proto.Equal(old, r) {
			continue
		}
		rc, isRC := r.(*routev3.RouteConfiguration)
		oldRC, _ := old.(*routev3.RouteConfiguration)
		if !isRC {
			keys = append(keys, name)
			continue
		}
		oldVH := map[string]*routev3.VirtualHost{}
		for _, vh := range oldRC.GetVirtualHosts() {
			oldVH[vh.GetName()] = vh
		}
		for _, vh := range rc.GetVirtualHosts() {
			if o, ok := oldVH[vh.GetName()]; !ok || !proto.Equal(o, vh) {
				keys = append(keys, vh.GetName())
			}
		}
	}
	return keys
}

func originsOf(origins map[string][]string, keys []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range keys {
		for _, o := range origins[k] {
			if !seen[o] {
				seen[o] = true
				out = append(out, o)
			}
		}
	}
	sort.Strings(out)
	return out
}
