package stages

// HubSource returns the Source a runner prepared with EnableReload reads: the
// reload hub, for the Source conformance suite in package stages_test.
func HubSource(r *Runner) Source { return r.hub() }
