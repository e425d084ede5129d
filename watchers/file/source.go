package file

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/weir-mesh/weir/model"
)

// Load reads dir once (recursively) and returns the snapshot plus every diagnostic. It is
// stateless: with no earlier read to fall back on, a broken file contributes the documents
// that could be read. The error is only for a directory that cannot be read at all.
func Load(dir string) (*model.Snapshot, error) {
	return newSource(dir).read()
}

// source reads a directory, reparsing only files whose content changed since the last
// read, and remembers enough to keep serving what bad input would otherwise take away.
type source struct {
	dir   string
	cache map[string]cachedFile // by path relative to dir
	mem   memory
	// inputs identifies what the last read was built from: every file's path and content
	// hash, and the directories that could not be read. Equal inputs give an equal
	// snapshot, so comparing inputs is how a reread that changed nothing is recognized,
	// without hashing the whole snapshot.
	inputs [sha256.Size]byte
	// onDirs, if set, sees the directories of each walk before any file is read: the
	// watcher watches them first, so that a write during the read is never missed.
	onDirs func(dirs []string)
}

type cachedFile struct {
	sum [sha256.Size]byte
	res *fileResult
}

func newSource(dir string) *source {
	return &source{dir: dir, cache: map[string]cachedFile{}}
}

// read reads the whole directory into a snapshot.
func (s *source) read() (*model.Snapshot, error) {
	l, err := list(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read config dir %s: %w", s.dir, err)
	}
	if s.onDirs != nil {
		s.onDirs(l.dirs)
	}
	var diags []model.Diagnostic
	cache := map[string]cachedFile{}
	for _, rel := range l.files {
		if c, ok := s.readFile(rel, &diags); ok {
			cache[rel] = c
		}
	}
	// A directory that cannot be read now keeps the files it held last time.
	for _, dir := range l.unreadable {
		for rel, c := range s.cache {
			if _, ok := cache[rel]; !ok && strings.HasPrefix(rel, dir.rel+"/") {
				cache[rel] = c
			}
		}
		diags = append(diags, model.Errorf(model.Ref{Kind: "Directory", Name: dir.rel, File: dir.rel}, "",
			"cannot be read: %v; its files keep their last good objects", dir.err))
	}
	s.cache = cache
	s.inputs = inputsKey(cache, l.unreadable)
	objs, d := s.mem.assemble(s.sortedFiles())
	snap := build(objs)
	snap.Diagnostics = sortDiagnostics(slices.Concat(diags, d, snap.Diagnostics))
	return snap, nil
}

func inputsKey(files map[string]cachedFile, unreadable []dirError) [sha256.Size]byte {
	h := sha256.New()
	for _, rel := range sortedKeys(files) {
		f := files[rel]
		if r := f.res; r != nil && len(r.objects) == 0 && len(r.unreadable) == 0 && len(r.diags) == 0 {
			continue // contributes nothing (say, only comments): its edits change nothing
		}
		fmt.Fprintf(h, "%s\x00%x\x00", rel, f.sum[:])
	}
	for _, d := range unreadable {
		fmt.Fprintf(h, "unreadable\x00%s\x00%v\x00", d.rel, d.err)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}

// readFile reads and parses one file, or reuses the last parse when its bytes are the
// same. A file that vanished since the walk is gone; one that cannot be read keeps its
// last result.
func (s *source) readFile(rel string, diags *[]model.Diagnostic) (cachedFile, bool) {
	data, err := os.ReadFile(filepath.Join(s.dir, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return cachedFile{}, false
	}
	last, had := s.cache[rel]
	if err != nil {
		*diags = append(*diags, model.Errorf(model.Ref{Kind: "File", Name: rel, File: rel}, "",
			"cannot be read: %v; keeping its last good objects", err))
		return last, had
	}
	sum := sha256.Sum256(data)
	if had && last.sum == sum {
		return last, true
	}
	return cachedFile{sum: sum, res: parseFile(rel, data)}, true
}

func (s *source) sortedFiles() []readFile {
	out := make([]readFile, 0, len(s.cache))
	for _, rel := range sortedKeys(s.cache) {
		out = append(out, readFile{rel: rel, res: s.cache[rel].res})
	}
	return out
}

// listing is what a walk of the directory found.
type listing struct {
	files      []string // config files, relative, slash-separated, sorted
	dirs       []string // directories walked, absolute
	unreadable []dirError
}

type dirError struct {
	rel string
	err error
}

// list walks dir. Hidden directories are skipped; so are symlinked directories (a loop
// would never end), but a symlinked file is read, which is how a Kubernetes ConfigMap
// volume presents its files.
func list(dir string) (listing, error) {
	var l listing
	// The root itself may be a symlink (a mounted volume); WalkDir would not enter it.
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return l, err
	}
	if info, err := os.Stat(dir); err != nil {
		return l, err
	} else if !info.IsDir() {
		return l, errors.New("not a directory")
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			l.unreadable = append(l.unreadable, dirError{rel: relPath(dir, path), err: err})
			return nil
		}
		if d.IsDir() {
			if path != dir && isIgnoredName(d.Name()) {
				return filepath.SkipDir
			}
			l.dirs = append(l.dirs, path)
			return nil
		}
		if isConfigFile(d.Name()) && isRegular(path, d) {
			l.files = append(l.files, relPath(dir, path))
		}
		return nil
	})
	slices.Sort(l.files)
	return l, err
}

func isRegular(path string, d fs.DirEntry) bool {
	if d.Type()&fs.ModeSymlink == 0 {
		return d.Type().IsRegular()
	}
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}

func relPath(dir, path string) string {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return filepath.ToSlash(path)
	}
	return filepath.ToSlash(rel)
}
