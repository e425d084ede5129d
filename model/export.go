package model

import "slices"

// ExportedTo reads an Istio exportTo list: whether an object of namespace objNS is
// visible to proxies of namespace proxyNS. Empty or "*" means every namespace, "." the
// object's own, "~" none; other entries name namespaces.
func ExportedTo(exportTo []string, objNS, proxyNS string) bool {
	if len(exportTo) == 0 {
		return true
	}
	return slices.ContainsFunc(exportTo, func(e string) bool {
		switch e {
		case "*":
			return true
		case ".":
			return objNS == proxyNS
		case "~":
			return false
		}
		return e == proxyNS
	})
}
