//go:build race

package worker

// raceBuild is set in binaries built with the race detector, whose shadow
// memory needs far more address space than any limit derived from
// MaxMemory: such workers rely on the watchdog alone.
const raceBuild = true
