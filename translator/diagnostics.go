package translator

import (
	"cmp"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/weir-mesh/weir/model"
)

// diagnostics collects problems found while translating. The same problem is often met
// once per port or per virtual host; it is reported once.
type diagnostics struct {
	list []model.Diagnostic
}

func (d *diagnostics) add(ds ...model.Diagnostic) {
	d.list = append(d.list, ds...)
}

// sorted returns the diagnostics without duplicates, ordered by source object and field so
// that output does not depend on the order in which things were visited.
func (d *diagnostics) sorted() []model.Diagnostic {
	out := slices.Clone(d.list)
	slices.SortStableFunc(out, func(a, b model.Diagnostic) int {
		return cmp.Or(compareRefs(a.Source, b.Source), cmp.Compare(a.Field, b.Field),
			cmp.Compare(a.Severity, b.Severity), cmp.Compare(a.Message, b.Message))
	})
	return slices.Compact(out)
}

func compareRefs(a, b model.Ref) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name), cmp.Compare(a.File, b.File))
}

// sortedRefs returns refs sorted and without duplicates.
func sortedRefs(refs []model.Ref) []model.Ref {
	out := slices.Clone(refs)
	slices.SortFunc(out, compareRefs)
	return slices.Compact(out)
}

// ignoredFields warns about every field set in m that weir does not translate yet.
// Listing the supported fields (rather than the unsupported ones) means that a field
// added to the Istio API later is reported too, never silently dropped.
func ignoredFields(src model.Ref, path string, m proto.Message, supported ...string) []model.Diagnostic {
	var out []model.Diagnostic
	for _, name := range setFields(m.ProtoReflect()) {
		if !slices.Contains(supported, name) {
			out = append(out, model.Warnf(src, path+"."+name, "%s is not supported yet; ignored", name))
		}
	}
	return out
}

// setFields lists the JSON names of the fields set in m, in declaration order.
func setFields(m protoreflect.Message) []string {
	var out []string
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); m.Has(fd) {
			out = append(out, fd.JSONName())
		}
	}
	return out
}

// leafPaths lists the dotted JSON paths of every set leaf field under m (well-known types
// such as Duration count as leaves), in declaration order.
func leafPaths(m protoreflect.Message, prefix string) []string {
	var out []string
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		path := prefix + fd.JSONName()
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() &&
			!strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf.") {
			out = append(out, leafPaths(m.Get(fd).Message(), path+".")...)
			continue
		}
		out = append(out, path)
	}
	return out
}
