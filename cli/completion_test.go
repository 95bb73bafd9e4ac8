package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The bash script is valid bash and offers every flag of rsh run, from the
// flag definitions; the zsh and fish scripts name every command and verb.
func TestCompletionScripts(t *testing.T) {
	nodes := completionTree()
	bash := bashCompletion(nodes)
	path := filepath.Join(t.TempDir(), "rsh.bash")
	if err := os.WriteFile(path, []byte(bash), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	run := newRunFlags(&runOptions{})
	for _, w := range flagWords(visible(run, nil)) {
		if !strings.Contains(bash, " "+w+" ") && !strings.Contains(bash, " "+w+`"`) && !strings.Contains(bash, `"`+w+" ") {
			t.Errorf("bash completion lacks %s", w)
		}
	}
	for _, must := range []string{"-j", "--jobs", "--allow-read"} {
		if !strings.Contains(bash, must) {
			t.Errorf("bash completion lacks %s", must)
		}
	}
	zsh, fish := zshCompletion(nodes), fishCompletion(nodes)
	words := []string{"run", "serve", "job", "queue", "completion", "version"}
	for _, v := range jobVerbs {
		words = append(words, v.name)
	}
	for _, v := range queueVerbs {
		words = append(words, v.name)
	}
	for _, w := range words {
		if !strings.Contains(zsh, "'"+w+"'") {
			t.Errorf("zsh completion lacks %s", w)
		}
		if !strings.Contains(fish, "-a "+w+" ") {
			t.Errorf("fish completion lacks %s", w)
		}
	}
	// A verb's flags complete after the verb only: job ls takes --state,
	// job wait does not.
	if !strings.Contains(fish, "__fish_seen_subcommand_from job; and __fish_seen_subcommand_from ls' -l state") {
		t.Error("fish completion lacks job ls --state")
	}
	if zsh2, err := exec.LookPath("zsh"); err == nil {
		zpath := filepath.Join(t.TempDir(), "_rsh")
		if err := os.WriteFile(zpath, []byte(zsh), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(zsh2, "-n", zpath).CombinedOutput(); err != nil {
			t.Errorf("zsh -n: %v\n%s", err, out)
		}
	}
}
