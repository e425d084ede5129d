package file

import (
	"slices"

	"github.com/weir-mesh/weir/model"
)

// memory is what a source remembers from its previous read so that bad input never takes
// away what was serving. Load starts with an empty memory every time.
type memory struct {
	// goodFiles is each file's last result that parsed completely.
	goodFiles map[string]*fileResult
	// served is every object of the last snapshot, by key.
	served map[objectKey]*object
}

// readFile is one file's result in a read, by path relative to the directory.
type readFile struct {
	rel string
	res *fileResult
}

// assemble decides which object serves each key, given every file's result in path
// order, and updates the memory. Rules, in order:
//   - a file with an unreadable document contributes its last good version whole, if it
//     has one, else whatever of it could be read;
//   - a key belongs to the first file (then document) that defines it; later copies are
//     errors;
//   - a rejected object is replaced by the version served last time, if any.
func (m *memory) assemble(files []readFile) ([]*object, []model.Diagnostic) {
	var diags []model.Diagnostic
	owners := map[objectKey]string{}
	served := map[objectKey]*object{}
	good := map[string]*fileResult{}
	for _, f := range files {
		res := m.fileVersion(f, good, &diags)
		for _, o := range res.objects {
			diags = append(diags, m.place(o, f.rel, owners, served)...)
		}
	}
	m.goodFiles, m.served = good, served
	out := make([]*object, 0, len(served))
	for _, o := range served {
		out = append(out, o)
		diags = append(diags, o.warnings...)
	}
	slices.SortFunc(out, func(a, b *object) int { return compareKeys(a.key(), b.key()) })
	return out, diags
}

// fileVersion picks which version of a file to use and reports its file-level problems.
func (m *memory) fileVersion(f readFile, good map[string]*fileResult, diags *[]model.Diagnostic) *fileResult {
	res := f.res
	if !res.broken() {
		good[f.rel] = res
		*diags = append(*diags, res.diags...)
		return res
	}
	last, ok := m.goodFiles[f.rel]
	suffix := "; the document is ignored"
	if ok {
		good[f.rel] = last
		res = last
		suffix = "; the file keeps its last good objects until this is fixed"
	}
	for _, d := range f.res.unreadable {
		d.Message += suffix
		*diags = append(*diags, d)
	}
	*diags = append(*diags, res.diags...)
	return res
}

// place gives one object its key, unless an earlier file or document has it.
func (m *memory) place(o *object, file string, owners map[objectKey]string, served map[objectKey]*object) []model.Diagnostic {
	key := o.key()
	if first, ok := owners[key]; ok {
		where := first + ", which is used"
		if first == file {
			where = "an earlier document of this file, which is used"
		}
		return []model.Diagnostic{model.Errorf(o.ref, "metadata.name", "duplicate: %s %s/%s is also defined in %s; this copy is ignored",
			key.kind, key.namespace, key.name, where)}
	}
	owners[key] = file
	if !o.rejected() {
		served[key] = o
		return nil
	}
	suffix := "; the object is not used"
	if last, ok := m.served[key]; ok {
		served[key] = last
		suffix = "; keeping the last good version"
		if last.ref.File != o.ref.File {
			suffix += " (from " + last.ref.File + ")"
		}
	}
	out := make([]model.Diagnostic, 0, len(o.errs))
	for _, d := range o.errs {
		d.Message += suffix
		out = append(out, d)
	}
	return out
}
