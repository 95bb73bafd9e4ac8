package cli

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// The version comes from the best source a build has: the module version,
// else the linker's, else the VCS revision (dirty or not), else the source tree's version.
func TestPickVersion(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name   string
		info   *debug.BuildInfo
		linked string
		want   string
	}{
		{"module version", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: vcs(rev, "true")}, "v9", "v1.2.3"},
		{"linker over a checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "false")}, "v2.0.0-rc1", "v2.0.0-rc1"},
		{"clean checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "false")}, "", "0123456789ab"},
		{"dirty checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "true")}, "", "0123456789ab-dirty"},
		{"linker only", &debug.BuildInfo{Main: debug.Module{Version: ""}}, "v3", "v3"},
		{"nothing stamped", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "", sourceVersion},
		{"no build info", nil, "", sourceVersion},
	} {
		if got := pickVersion(tc.info, tc.linked); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestVersionLine(t *testing.T) {
	got := versionLine()
	want := " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	if !strings.HasPrefix(got, "rsh ") || !strings.HasSuffix(got, want) || strings.Contains(got, "(devel)") {
		t.Errorf("versionLine() = %q, want rsh VERSION%s", got, want)
	}
}
