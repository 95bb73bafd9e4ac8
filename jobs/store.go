package jobs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/runspaces/rsh/vm"
)

// store keeps jobs in plain files under dir/jobs/NAME/:
//
//	spec.json      the job as submitted, written once
//	state.json     its Info, replaced atomically at each change
//	results.ndjson one record per finished item, appended as it finishes
//
// Plain files rather than an embedded database: the data is append-mostly,
// a job's documents are small, atomic rename gives crash safety for them,
// and an operator can read (or back up, or delete) a job with ordinary
// tools. A line written with one write survives the process being killed;
// only a crash of the machine itself can lose the last results.
type store struct {
	dir string
}

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "jobs"), 0o700); err != nil {
		return nil, fmt.Errorf("jobs: state directory: %w", err)
	}
	return &store{dir: dir}, nil
}

func (s *store) jobDir(name string) string { return filepath.Join(s.dir, "jobs", name) }

// writeAtomic replaces path with data: a reader (or a later process) sees
// the old document or the new one, never half of one.
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

func (s *store) create(spec Spec, info Info) error {
	dir := s.jobDir(spec.Name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("jobs: %s: %w", spec.Name, err)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, "spec.json"), data); err != nil {
		return fmt.Errorf("jobs: %s: saving spec: %w", spec.Name, err)
	}
	return s.saveInfo(info)
}

func (s *store) saveInfo(info Info) error {
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(s.jobDir(info.Name), "state.json"), data); err != nil {
		return fmt.Errorf("jobs: %s: saving state: %w", info.Name, err)
	}
	return nil
}

// resultsFile is a job's results.ndjson, open for appending while the job
// runs; only the job's goroutine writes it.
type resultsFile struct {
	f   *os.File
	buf []byte
}

func (s *store) openResults(name string) (*resultsFile, error) {
	f, err := os.OpenFile(filepath.Join(s.jobDir(name), "results.ndjson"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &resultsFile{f: f}, nil
}

// append writes one record with a single write.
func (rf *resultsFile) append(r *vm.Result) error {
	rf.buf = append(r.AppendJSON(rf.buf[:0]), '\n')
	_, err := rf.f.Write(rf.buf)
	return err
}

func (rf *resultsFile) close() error { return rf.f.Close() }

func (s *store) remove(name string) error {
	return os.RemoveAll(s.jobDir(name))
}

// loaded is a job read back from disk.
type loaded struct {
	spec    Spec
	info    Info
	results []*vm.Result
}

// load reads every job. A job directory without a readable spec or state
// (a crash while creating it) is skipped; a results file cut short by a
// crash loses only its last, partial line.
func (s *store) load() ([]loaded, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "jobs"))
	if err != nil {
		return nil, fmt.Errorf("jobs: state directory: %w", err)
	}
	var out []loaded
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(s.dir, "jobs", e.Name())
		var l loaded
		if readJSON(filepath.Join(dir, "spec.json"), &l.spec) != nil || readJSON(filepath.Join(dir, "state.json"), &l.info) != nil {
			continue
		}
		results, err := readResults(filepath.Join(dir, "results.ndjson"))
		if err != nil {
			return nil, err
		}
		l.results = results
		out = append(out, l)
	}
	return out, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func readResults(path string) ([]*vm.Result, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*vm.Result
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			r := &vm.Result{}
			if json.Unmarshal(line, r) == nil {
				out = append(out, r)
			}
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
