package file

import (
	"crypto/sha256"
	"slices"
	"sync"

	"github.com/weir-mesh/weir/model"
)

// Objects builds snapshots from objects that arrive one at a time rather than as files
// (say, from Kubernetes informers), with the file source's rules: each object is decoded
// and validated the same way, and one that is rejected keeps its last good version. An
// object's id only has to be unique and stable (kind, namespace and name); diagnostics
// name the object, not the id. It is safe for concurrent use.
type Objects struct {
	mu    sync.Mutex
	cache map[string]cachedFile
	mem   memory
}

// NewObjects returns an empty set.
func NewObjects() *Objects {
	return &Objects{cache: map[string]cachedFile{}}
}

// Set stores one object, as JSON or YAML, under id; an unchanged object is not parsed
// again.
func (o *Objects) Set(id string, data []byte) {
	sum := sha256.Sum256(data)
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.cache[id]; ok && c.sum == sum {
		return
	}
	o.cache[id] = cachedFile{sum: sum, res: parseFile("", data)}
}

// Delete forgets the object stored under id.
func (o *Objects) Delete(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.cache, id)
}

// Snapshot assembles the objects stored now.
func (o *Objects) Snapshot() *model.Snapshot {
	o.mu.Lock()
	defer o.mu.Unlock()
	files := make([]readFile, 0, len(o.cache))
	for _, id := range sortedKeys(o.cache) {
		files = append(files, readFile{rel: id, res: o.cache[id].res})
	}
	objs, d := o.mem.assemble(files)
	snap := build(objs)
	snap.Diagnostics = sortDiagnostics(slices.Concat(d, snap.Diagnostics))
	return snap
}
