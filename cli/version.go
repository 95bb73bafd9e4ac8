package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// linkVersion is the version a build gives with the linker, for builds
// that carry no module version (a distribution's, a Makefile's):
//
//	go build -ldflags "-X github.com/runspaces/rsh/cli.linkVersion=v1.2.3" .
//
// Only the linker sets it; nothing in rsh writes it.
var linkVersion string

// sourceVersion is the version of this source tree, for a build that
// carries no other (no module version, linker value or VCS stamp, as with
// -buildvcs=false): the next release, marked as a development build.
const sourceVersion = "v0.1.0-dev"

// revisionLen is how much of a VCS revision the version shows: twelve hex
// digits name a commit unambiguously in any repository of a sane size, as
// Go's own pseudo-versions do.
const revisionLen = 12

// pickVersion chooses what `rsh version` calls this build, from the best
// source there is: the module version `go install ...@VERSION` stamps;
// else the version given to the linker (linked), which a packager sets on
// purpose and so outranks whatever checkout it built from; else the VCS
// revision `go build` in a clone stamps, with "-dirty" when the tree had
// changes; else sourceVersion. info is debug.ReadBuildInfo's (nil when it has
// none).
func pickVersion(info *debug.BuildInfo, linked string) string {
	if info != nil && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	if linked != "" {
		return linked
	}
	if info != nil {
		var rev string
		var dirty bool
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > revisionLen {
				rev = rev[:revisionLen]
			}
			if dirty {
				rev += "-dirty"
			}
			return rev
		}
	}
	return sourceVersion
}

// versionLine is what `rsh version` prints: rsh's version, the Go that
// built it, and the platform it was built for.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = nil
	}
	return fmt.Sprintf("rsh %s %s %s/%s", pickVersion(info, linkVersion), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
