package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// store is a state directory: STATE/lock, held by the Manager, and a
// directory per job under STATE/jobs (see proto.go for its files).
type store struct {
	dir  string
	lock *os.File
}

// daemonLockFile is the lock a Manager holds on its state directory.
const daemonLockFile = "lock"

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "jobs"), 0o700); err != nil {
		return nil, fmt.Errorf("jobs: state directory: %w", err)
	}
	lock, err := LockFile(filepath.Join(dir, daemonLockFile))
	if err != nil {
		return nil, fmt.Errorf("jobs: state directory %s: %w", dir, err)
	}
	return &store{dir: dir, lock: lock}, nil
}

func (s *store) close() error { return s.lock.Close() }

func (s *store) jobDir(name string) string { return filepath.Join(s.dir, "jobs", name) }

func (s *store) exists(name string) bool {
	_, err := os.Lstat(s.jobDir(name))
	return err == nil
}

// ErrLocked is returned when another process holds a lock.
var ErrLocked = errors.New("locked by another process")

// LockFile takes an exclusive lock on path (created if need be) and writes
// this process's id into it; the lock lasts until the returned file is
// closed or the process ends, however it ends. If another process holds
// it, the error wraps ErrLocked and names that process.
func LockFile(path string) (*os.File, error) {
	return lockFile(path, 0)
}

// LockFileWait is LockFile waiting up to wait for the holder to let go.
func LockFileWait(path string, wait time.Duration) (*os.File, error) {
	return lockFile(path, wait)
}

// lockPoll is how often a waiting lockFile tries again.
const lockPoll = 20 * time.Millisecond

func lockFile(path string, wait time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			holder := "another process"
			if data, err := os.ReadFile(path); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 {
					holder = "process " + strconv.Itoa(pid)
				}
			}
			f.Close()
			return nil, fmt.Errorf("%w: %s holds %s", ErrLocked, holder, path)
		}
		time.Sleep(lockPoll)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// writeAtomic replaces path with data: a reader (or a later process) sees
// the old document or the new one, never half of one. The new document is
// synced before it replaces the old one.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// create makes a job's directory with its spec, state and, for items
// given in the spec, its input. Items are not kept in spec.json.
func (s *store) create(spec Spec, info Info) error {
	dir := s.jobDir(spec.Name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("jobs: %s: %w", spec.Name, err)
	}
	items := spec.Items
	spec.Items = nil
	if len(items) > 0 || spec.Input {
		var b []byte
		for _, it := range items {
			if it.Error != "" {
				b = AppendInvalidItemLine(b, it.Value, it.Error)
			} else {
				b = AppendItemLine(b, it.Value)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, InputFile), b, 0o600); err != nil {
			return fmt.Errorf("jobs: %s: saving input: %w", spec.Name, err)
		}
		if !spec.Input {
			if err := writeInputEnd(dir, InputEnd{Size: int64(len(b))}); err != nil {
				return fmt.Errorf("jobs: %s: saving input: %w", spec.Name, err)
			}
		}
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, SpecFile), data); err != nil {
		return fmt.Errorf("jobs: %s: saving spec: %w", spec.Name, err)
	}
	return saveInfo(dir, info)
}

func writeInputEnd(dir string, end InputEnd) error {
	data, _ := json.Marshal(end)
	return writeAtomic(filepath.Join(dir, InputEndFile), data)
}

func saveInfo(dir string, info Info) error {
	info.DurationMs, info.Rate, info.EtaMs, info.QueuePosition = 0, 0, 0, 0
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, StateFile)
	err = writeAtomic(path, data)
	if errors.Is(err, syscall.ENOSPC) {
		err = overwrite(path, data, err)
	}
	if err != nil {
		return fmt.Errorf("saving the job's state: %w", err)
	}
	return nil
}

// overwrite replaces path's content with data in the space path already
// holds, when a full disk has no room for the copy writeAtomic makes:
// a job's state must still say how it ended (Failed, for want of space),
// not stay Running on file. Not atomic, so only a fallback: a crash
// during the write leaves the file damaged, and the job listed as such.
// It returns full, the error of the atomic write, when data does not fit.
func overwrite(path string, data []byte, full error) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return full
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return full
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int64(len(data)) > st.Blocks*512 {
		return full
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		return err
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		return err
	}
	return f.Sync()
}

func (s *store) remove(name string) error {
	return os.RemoveAll(s.jobDir(name))
}

// load reads every job. A job whose files cannot be read is listed as
// Failed with the reason, never hidden: its name stays taken until it is
// removed.
func (s *store) load() []*job {
	entries, err := os.ReadDir(filepath.Join(s.dir, "jobs"))
	if err != nil {
		return nil
	}
	var out []*job
	for _, e := range entries {
		name := e.Name()
		if !validName(name) {
			continue
		}
		dir := s.jobDir(name)
		var info Info
		damaged := func(what string, err error) {
			info = Info{Name: name, State: Failed, Script: "?", Total: -1,
				Reason: fmt.Sprintf("its files are damaged (%s: %v); remove it with 'rsh job rm %s'", what, err, name)}
			if fi, err := os.Stat(dir); err == nil {
				info.CreatedAt = fi.ModTime()
			}
		}
		var spec Spec
		if err := readJSON(filepath.Join(dir, SpecFile), &spec); err != nil {
			damaged(SpecFile, err)
		} else if err := readJSON(filepath.Join(dir, StateFile), &info); err != nil {
			damaged(StateFile, err)
		} else if info.Name != name {
			damaged(StateFile, fmt.Errorf("it names job %q", info.Name))
		}
		j := newJob(s, name, info)
		j.clampCursors()
		out = append(out, j)
	}
	return out
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
