package infer

import "slices"

// FormatNames returns the model formats the decoders understand, sorted.
func FormatNames() []string { return formatNames() }

// Providers returns the execution providers Open knows, in preference order.
func Providers() []string { return slices.Clone(knownProviders) }
