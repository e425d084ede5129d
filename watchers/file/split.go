package file

import (
	"bytes"
	"path/filepath"
	"strings"
)

// isConfigFile reports whether a file name holds config: YAML or JSON, not hidden, not an
// editor's temporary file.
func isConfigFile(name string) bool {
	if isIgnoredName(name) {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// isIgnoredName reports names that are never config: hidden files and directories, and
// the backup, lock and swap files editors leave next to what they edit.
func isIgnoredName(name string) bool {
	return strings.HasPrefix(name, ".") || isEditorTemp(name)
}

// isEditorTemp matches the temporary files of common editors (vim's foo~ and .foo.swp,
// emacs's .#foo and #foo#, vim's 4913 write probe). Their churn never causes a reread.
func isEditorTemp(name string) bool {
	switch {
	case strings.HasSuffix(name, "~"), strings.HasPrefix(name, ".#"),
		strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#"), name == "4913":
		return true
	}
	ext := filepath.Ext(name)
	return ext == ".swp" || ext == ".swx" || ext == ".swo" || ext == ".tmp"
}

// document is one YAML document of a file.
type document struct {
	index int // 1-based position in the file
	line  int // 1-based line of the file where the document starts
	data  []byte
}

// splitDocuments cuts a multi-document YAML file at its "---" separator lines. Splitting
// by line (rather than with the YAML parser) means one broken document cannot hide the
// documents after it. Documents holding only comments or blanks are dropped.
func splitDocuments(data []byte) []document {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	var docs []document
	var cur []byte
	start, line, index := 1, 0, 0
	flush := func(next int) {
		index++
		if !isBlankYAML(cur) {
			docs = append(docs, document{index: index, line: start, data: cur})
		}
		cur, start = nil, next
	}
	for len(data) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i+1], data[i+1:]
		} else {
			l, data = data, nil
		}
		if isSeparator(l) {
			flush(line + 1)
			continue
		}
		cur = append(cur, l...)
	}
	flush(line + 1)
	return docs
}

// isSeparator matches "---" alone on its line, optionally followed by a comment.
func isSeparator(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("---"))
	if !ok {
		return false
	}
	rest = bytes.TrimSpace(rest)
	return len(rest) == 0 || rest[0] == '#'
}

// isBlankYAML reports whether data holds nothing but blank lines, comments and "..." end
// markers.
func isBlankYAML(data []byte) bool {
	for _, l := range bytes.Split(data, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' && !bytes.Equal(l, []byte("...")) {
			return false
		}
	}
	return true
}
