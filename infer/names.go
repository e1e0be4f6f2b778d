package infer

import "slices"

// Providers returns the execution providers Open knows, in preference order.
func Providers() []string { return slices.Clone(knownProviders) }
