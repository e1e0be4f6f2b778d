package infer

import "slices"

// Providers returns the execution providers Open knows, in preference order.
func Providers() []string { return slices.Clone(knownProviders) }

// DETRChoices returns the accepted values of each model.detr key.
func DETRChoices() map[string][]string {
	out := make(map[string][]string, len(detrChoices))
	for k, v := range detrChoices {
		out[k] = slices.Clone(v)
	}
	return out
}

// Values returns the options by their yaml key.
func (o DETROptions) Values() map[string]string {
	return map[string]string{"scores": o.Scores, "background": o.Background, "boxes": o.Boxes, "units": o.Units, "normalize": o.Normalize}
}
