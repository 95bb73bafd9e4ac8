package main

import (
	"os/exec"
	"strings"
	"testing"
)

// layers says which of rsh's own packages each library package may import
// (directly or not): the library never reaches up into the command, and
// the engine never into the pool. See the Layout section of README.md.
var layers = map[string][]string{
	"builtins": {"builtins"},
	"vm":       {"builtins"},
	"pool":     {"vm", "builtins"},
	"worker":   {"pool", "vm", "builtins"},
	"jobs":     {"pool", "worker", "vm", "builtins"},
	"queue":    {"pool", "vm", "builtins"},
}

func TestLayering(t *testing.T) {
	const mod = "github.com/runspaces/rsh/"
	for pkg, allowed := range layers {
		out, err := exec.Command("go", "list", "-deps", "./"+pkg+"/...").Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			rel, ok := strings.CutPrefix(dep, mod)
			if !ok {
				continue
			}
			top, _, _ := strings.Cut(rel, "/")
			if top == pkg {
				continue
			}
			ok = false
			for _, a := range allowed {
				ok = ok || top == a
			}
			if !ok {
				t.Errorf("%s imports %s: it may import only %v", pkg, dep, allowed)
			}
		}
	}
}
