package model

import (
	"fmt"
	"strings"
)

// Ref names the source object something came from, so that every diagnostic and every
// Envoy resource can be traced back to what a user wrote.
type Ref struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// File is the file the object was read from (file source only).
	File string `json:"file,omitempty"`
}

// String renders a Ref the way diagnostics print it: "VirtualService default/reviews (vs.yaml)".
func (r Ref) String() string {
	var b strings.Builder
	b.WriteString(r.Kind)
	b.WriteByte(' ')
	if r.Namespace != "" {
		b.WriteString(r.Namespace)
		b.WriteByte('/')
	}
	b.WriteString(r.Name)
	if r.File != "" {
		fmt.Fprintf(&b, " (%s)", r.File)
	}
	return b.String()
}

// Severity says whether a diagnostic rejects something (Error) or only informs (Warning).
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Diagnostic is a validation problem as data: which object, which field, what is wrong.
type Diagnostic struct {
	Severity Severity `json:"severity"`
	Source   Ref      `json:"source"`
	// Field is the path inside the object, e.g. "spec.http[1].route[0].weight".
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (d Diagnostic) String() string {
	if d.Field == "" {
		return fmt.Sprintf("%s: %s: %s", d.Severity, d.Source, d.Message)
	}
	return fmt.Sprintf("%s: %s: %s: %s", d.Severity, d.Source, d.Field, d.Message)
}

// Errorf and Warnf build diagnostics without ceremony.
func Errorf(src Ref, field, format string, args ...any) Diagnostic {
	return Diagnostic{Severity: SeverityError, Source: src, Field: field, Message: fmt.Sprintf(format, args...)}
}

func Warnf(src Ref, field, format string, args ...any) Diagnostic {
	return Diagnostic{Severity: SeverityWarning, Source: src, Field: field, Message: fmt.Sprintf(format, args...)}
}

// HasErrors reports whether any diagnostic is an error.
func HasErrors(ds []Diagnostic) bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}
