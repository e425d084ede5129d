// Package file turns a directory of Kubernetes and Istio YAML into model.Snapshots: Load
// reads it once (for `weir validate`), Watcher keeps it current for `weir serve`.
//
// Bad input fails closed for the object it is in: a file that does not parse keeps its
// last good objects, an invalid object keeps its last good version, and every problem is
// a model.Diagnostic naming the file, the object and the field.
package file
