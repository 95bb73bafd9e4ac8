package cli

import (
	"os"
	"path/filepath"
)

// stateDir is where `rsh serve` keeps jobs and its token: $RSH_STATE, else
// $XDG_STATE_HOME/rsh, else ~/.local/state/rsh.
func stateDir() string {
	if d := os.Getenv("RSH_STATE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "rsh")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "rsh")
	}
	return filepath.Join(os.TempDir(), "rsh-state")
}

// socketPath is the daemon's Unix socket: $RSH_SOCKET, else
// $XDG_RUNTIME_DIR/rsh/rsh.sock, else rsh.sock in the state directory.
func socketPath() string {
	if s := os.Getenv("RSH_SOCKET"); s != "" {
		return s
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "rsh", "rsh.sock")
	}
	return filepath.Join(stateDir(), "rsh.sock")
}
