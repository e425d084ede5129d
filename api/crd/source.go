package crd

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
)

// Source is what reflection cannot see in a package: the doc comments of its types and
// fields, which become descriptions (what `kubectl explain` prints), and the constants
// of its named string types, which become enums. Reading them from the source keeps both
// in step with the code: a new WebhookType constant is a new enum value.
type Source struct {
	pkgPath string
	types   map[string]*typeInfo
}

type typeInfo struct {
	doc    string
	fields map[string]string
	enum   []string
}

// ReadSource reads the non-test Go files of dir, the package imported as pkgPath.
func ReadSource(dir, pkgPath string) (*Source, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	src := &Source{pkgPath: pkgPath, types: map[string]*typeInfo{}}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, name, b, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("read source: %w", err)
		}
		for _, decl := range f.Decls {
			if gd, ok := decl.(*ast.GenDecl); ok {
				src.decl(gd)
			}
		}
	}
	if len(src.types) == 0 {
		return nil, fmt.Errorf("read source %s: no types", dir)
	}
	return src, nil
}

func (src *Source) info(name string) *typeInfo {
	if src.types[name] == nil {
		src.types[name] = &typeInfo{fields: map[string]string{}}
	}
	return src.types[name]
}

func (src *Source) decl(gd *ast.GenDecl) {
	for _, spec := range gd.Specs {
		switch spec := spec.(type) {
		case *ast.TypeSpec:
			ti := src.info(spec.Name.Name)
			doc := spec.Doc
			if doc == nil && len(gd.Specs) == 1 {
				doc = gd.Doc
			}
			ti.doc = text(doc)
			if st, ok := spec.Type.(*ast.StructType); ok {
				for _, f := range st.Fields.List {
					for _, n := range f.Names {
						ti.fields[n.Name] = text(f.Doc)
					}
				}
			}
		case *ast.ValueSpec:
			// `Name Type = "value"`: a value of the named string type Type.
			id, ok := spec.Type.(*ast.Ident)
			if gd.Tok != token.CONST || !ok || len(spec.Values) != len(spec.Names) {
				continue
			}
			for _, v := range spec.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil {
						src.info(id.Name).enum = append(src.info(id.Name).enum, s)
					}
				}
			}
		}
	}
}

// text is a doc comment as one line of prose.
func text(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	return strings.Join(strings.Fields(cg.Text()), " ")
}

func (src *Source) lookup(t reflect.Type) *typeInfo {
	if src == nil || t.PkgPath() != src.pkgPath {
		return nil
	}
	return src.types[t.Name()]
}

func (src *Source) typeDoc(t reflect.Type) string {
	if ti := src.lookup(t); ti != nil {
		return ti.doc
	}
	return ""
}

func (src *Source) fieldDoc(t reflect.Type, field string) string {
	if ti := src.lookup(t); ti != nil {
		return ti.fields[field]
	}
	return ""
}

func (src *Source) enum(t reflect.Type) []string {
	if ti := src.lookup(t); ti != nil {
		return ti.enum
	}
	return nil
}
