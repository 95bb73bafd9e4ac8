package tcp

// Classify exposes classify to the external tests.
var Classify = classify

// Probe and DialProbe expose the two connect paths to the benchmarks.
var (
	Probe     = probe
	DialProbe = dialProbe
)

// RequireWith exposes requireWith: Require with the lookup connect uses.
var RequireWith = requireWith
