package jobs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// job is one job of a Manager: its Info (kept in memory and in state.json)
// and, while it runs, its process.
type job struct {
	store *store
	name  string
	dir   string

	saveMu sync.Mutex // orders the writes of state.json

	mu      sync.Mutex
	info    Info
	changed chan struct{} // closed (and replaced) at every change
	proc    *os.Process   // while the job process runs
	kill    *time.Timer   // kills a stopping job process after the grace
	active  bool          // a supervisor has it
	// stopping: Stop was called; shutdown: the Manager is closing, and
	// the job stays Running on file, to be resumed.
	stopping, shutdown bool
	// runStart and doneAtStart measure the rate of the current run.
	runStart    time.Time
	doneAtStart int
	lastSave    time.Time
	uploading   bool
	inputErr    string // why the input is incomplete, once it ended so
	removed     bool   // its files are gone (or going): nothing more is written
}

func newJob(s *store, name string, info Info) *job {
	return &job{store: s, name: name, dir: s.jobDir(name), info: info, changed: make(chan struct{})}
}

// notifyLocked wakes whoever watches the job. j.mu is held.
func (j *job) notifyLocked() {
	close(j.changed)
	j.changed = make(chan struct{})
}

// watch returns the job's info and a channel closed at its next change.
func (j *job) watch() (Info, <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.snapshotLocked(), j.changed
}

// awaitEnd waits until the job has finished and returns its info, or until
// expired fires (ErrTimeout) or ctx is done, with the info of that moment.
func (j *job) awaitEnd(ctx context.Context, expired <-chan time.Time) (Info, error) {
	for {
		info, changed := j.watch()
		if info.State.Finished() {
			return info, nil
		}
		select {
		case <-changed:
		case <-expired:
			return j.snapshot(), ErrTimeout
		case <-ctx.Done():
			return j.snapshot(), ctx.Err()
		}
	}
}

func (j *job) snapshot() Info {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.snapshotLocked()
}

func (j *job) snapshotLocked() Info {
	info := j.info
	end := info.EndedAt
	if end.IsZero() || !info.State.Finished() {
		end = time.Now()
	}
	if !info.StartedAt.IsZero() {
		info.DurationMs = float64(end.Sub(info.StartedAt).Microseconds()) / 1000
	}
	if info.State == Running && !j.runStart.IsZero() {
		if secs := time.Since(j.runStart).Seconds(); secs > 0 {
			info.Rate = float64(info.Done-j.doneAtStart) / secs
		}
		if info.Total >= 0 && info.Rate > 0 {
			info.EtaMs = float64(info.Total-info.Done) / info.Rate * 1000
		}
	} else if info.State.Finished() && info.DurationMs > 0 {
		info.Rate = float64(info.Done) / (info.DurationMs / 1000)
	}
	return info
}

// update changes the job's info, wakes its watchers and saves it.
func (j *job) update(f func(*Info)) {
	j.mu.Lock()
	f(&j.info)
	j.notifyLocked()
	j.mu.Unlock()
	j.save()
}

// save writes the job's current info to state.json. A failure (a full
// disk) is noted in the job's log, if that can be written, and otherwise
// only costs the file being behind: the next save catches up.
func (j *job) save() error {
	j.saveMu.Lock()
	defer j.saveMu.Unlock()
	j.mu.Lock()
	info := j.info
	j.lastSave = time.Now()
	removed := j.removed
	j.mu.Unlock()
	if removed {
		return nil
	}
	err := saveInfo(j.dir, info)
	if err != nil {
		j.note(err.Error())
	}
	return err
}

// note appends one of the daemon's own messages to the job's log.
func (j *job) note(msg string) {
	j.mu.Lock()
	removed := j.removed
	j.mu.Unlock()
	if removed {
		return
	}
	f, err := os.OpenFile(filepath.Join(j.dir, LogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = fmt.Fprintf(f, "rsh serve: %s: %s\n", time.Now().Format(time.RFC3339), msg)
}

// clampCursors keeps the counters of a loaded job within its files: a
// results file cut short (by hand, or a disk that lost its end) makes the
// job hand out only what is there.
func (j *job) clampCursors() {
	size := int64(0)
	if fi, err := os.Stat(filepath.Join(j.dir, ResultsFile)); err == nil {
		size = fi.Size()
	}
	j.info.Committed = max(0, min(j.info.Committed, size))
	// A cursor past the results stops at their end; a negative one, which
	// no save writes, at their start: results are handed out again
	// rather than lost. The count follows the cursor.
	at := min(max(j.info.ReceivedBytes, 0), j.info.Committed)
	if at != j.info.ReceivedBytes || j.info.Received < 0 || j.info.Received > j.info.Done {
		j.info.ReceivedBytes = at
		n, _ := countLinesIn(filepath.Join(j.dir, ResultsFile), 0, at)
		j.info.Received = n
	}
	if data, err := os.ReadFile(filepath.Join(j.dir, InputEndFile)); err == nil {
		var end InputEnd
		if json.Unmarshal(data, &end) == nil {
			j.inputErr = end.Error
		}
	}
}

// countLinesIn counts the lines of path in [from, to).
func countLinesIn(path string, from, to int64) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	buf := make([]byte, 64<<10)
	for from < to {
		k, err := f.ReadAt(buf[:min(int64(len(buf)), to-from)], from)
		n += countLines(buf[:k])
		from += int64(k)
		if err != nil && from < to {
			return n, err
		}
	}
	return n, nil
}

// completeSize returns the size of path up to the end of its last whole
// line.
func completeSize(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	buf := make([]byte, 64<<10)
	for end := fi.Size(); end > 0; {
		n := min(int64(len(buf)), end)
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return 0
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				return end - n + i + 1
			}
		}
		end -= n
	}
	return 0
}

// recoverInput ends the input of a loaded job whose upload was cut off
// when the last daemon stopped: the job runs over the whole lines that
// arrived, and fails at its end, saying so.
func (j *job) recoverInput() {
	if !j.info.InputOpen {
		return
	}
	j.endInput(0, errors.New("the daemon stopped while the input was arriving"), false)
}

// beginInput marks an upload begun; only one at a time, and only while
// the input is open.
func (j *job) beginInput() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case !j.info.InputOpen:
		return fmt.Errorf("%w: %s", ErrInputClosed, j.name)
	case j.uploading:
		return fmt.Errorf("%w: the input of %s is already being sent", ErrConflict, j.name)
	}
	j.uploading = true
	return nil
}

// inputOpen reports whether the input may still grow.
func (j *job) inputOpen() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.info.InputOpen
}

// endInput closes the job's input at size bytes, or, with cause set, at
// the end of its last whole line, saying why it is incomplete. With idle,
// it does nothing while an upload is in progress.
func (j *job) endInput(size int64, cause error, idle bool) {
	j.mu.Lock()
	if !j.info.InputOpen || idle && j.uploading {
		j.mu.Unlock()
		return
	}
	j.info.InputOpen = false
	j.mu.Unlock()
	path := filepath.Join(j.dir, InputFile)
	end := InputEnd{Size: size}
	if cause != nil {
		end.Size = completeSize(path)
		_ = os.Truncate(path, end.Size)
		lines, _ := countLinesIn(path, 0, end.Size)
		end.Error = fmt.Sprintf("%v; the job ran over the %d items that had arrived", cause, lines)
		j.note("input: " + end.Error)
	}
	if err := writeInputEnd(j.dir, end); err != nil {
		j.note("saving the end of the input: " + err.Error())
	}
	j.mu.Lock()
	j.inputErr = end.Error
	j.notifyLocked()
	j.mu.Unlock()
	j.save()
}

// inputChunk is the buffer an upload is copied through.
const inputChunk = 256 << 10

// receiveInput appends r to the job's input until r ends; see
// Manager.Input.
func (j *job) receiveInput(r io.Reader) (int64, error) {
	if err := j.beginInput(); err != nil {
		return 0, err
	}
	defer func() {
		j.mu.Lock()
		j.uploading = false
		j.mu.Unlock()
	}()
	path := filepath.Join(j.dir, InputFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		j.endInput(0, fmt.Errorf("opening the input: %w", err), false)
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, inputChunk)
	var n int64
	last := byte('\n')
	for {
		k, rerr := r.Read(buf)
		if k > 0 {
			if !j.inputOpen() {
				return n, fmt.Errorf("%w: %s was stopped", ErrInputClosed, j.name)
			}
			if _, err := f.Write(buf[:k]); err != nil {
				err = fmt.Errorf("saving the input: %w", err)
				j.endInput(0, err, false)
				return n, err
			}
			n += int64(k)
			last = buf[k-1]
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			err := fmt.Errorf("the input stopped arriving: %w", rerr)
			j.endInput(0, err, false)
			return n, err
		}
	}
	if last != '\n' {
		if _, err := f.Write([]byte{'\n'}); err != nil {
			j.endInput(0, fmt.Errorf("saving the input: %w", err), false)
			return n, err
		}
	}
	if err := f.Sync(); err != nil {
		j.endInput(0, fmt.Errorf("saving the input: %w", err), false)
		return n, err
	}
	fi, err := f.Stat()
	if err != nil {
		j.endInput(0, err, false)
		return n, err
	}
	j.endInput(fi.Size(), nil, false)
	return n, nil
}

// progressSave is how often a running job's progress is written to
// state.json: often enough that a restarted daemon lists it nearly as it
// was, rarely enough to cost nothing.
const progressSave = time.Second

// supervise runs the job's process and records how it ends.
func (j *job) supervise(m *Manager) {
	// The job process gets SIGKILL when the thread that started it ends
	// (Pdeathsig): this goroutine keeps its thread until the process has
	// ended, and the thread ends with it (it is never unlocked), or with
	// the daemon.
	runtime.LockOSThread()

	j.mu.Lock()
	if j.stopping || j.shutdown {
		stopped := j.stopping
		j.mu.Unlock()
		if stopped {
			j.update(func(i *Info) { i.State, i.Reason, i.EndedAt = Stopped, "stopped before it started", time.Now() })
		}
		return
	}
	j.active = true
	j.info.State, j.info.Reason, j.info.EndedAt = Running, "", time.Time{}
	if j.info.StartedAt.IsZero() {
		j.info.StartedAt = time.Now()
	}
	j.runStart, j.doneAtStart = time.Now(), j.info.Done
	j.notifyLocked()
	j.mu.Unlock()
	j.save()

	last, waitErr, err := j.runProcess(m)
	j.mu.Lock()
	j.proc = nil
	j.active = false
	stopping, shutdown, inputErr := j.stopping, j.shutdown, j.inputErr
	j.mu.Unlock()
	var exit *exec.ExitError
	code := 0
	if errors.As(waitErr, &exit) {
		code = exit.ExitCode()
	}
	j.update(func(i *Info) {
		i.EndedAt = time.Now()
		switch {
		case err != nil:
			i.State, i.Reason = Failed, err.Error()
		case shutdown && !stopping:
			// Left Running: the next daemon resumes it.
			i.EndedAt = time.Time{}
		case stopping:
			i.State, i.Reason = Stopped, "stopped"
		case last.Final && last.Error != "":
			i.State, i.Reason = Failed, last.Error
		case !last.Final || code < 0:
			i.State, i.Reason = Failed, fmt.Sprintf("the job process died (%v) before the job ended; its messages: rsh job log %s", waitErr, j.name)
		case inputErr != "":
			i.State, i.Reason = Failed, "its input is incomplete: "+inputErr
		case code == 0 && i.Failed == 0:
			i.State = Completed
		case code == 0:
			// A resumed job's process counts only the items it ran in its
			// exit status; items that failed before count too.
			i.State = CompletedWithErrors
		case code == 1:
			i.State = CompletedWithErrors
		default:
			i.State, i.Reason = Failed, fmt.Sprintf("the job process exited with status %d; its messages: rsh job log %s", code, j.name)
		}
		if i.State == Completed || i.State == CompletedWithErrors {
			i.Total = i.Done
		}
		i.Running, i.Queued = 0, 0
	})
}

// runProcess starts the job process, follows its reports until it ends,
// and returns the last report and how the process ended; err is set when
// it could not start.
func (j *job) runProcess(m *Manager) (last Report, waitErr, err error) {
	j.mu.Lock()
	dir := j.info.Dir
	j.mu.Unlock()
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return last, nil, fmt.Errorf("the job's directory %s is not there any more", dir)
	}
	open := func(name string) (*os.File, error) {
		return os.OpenFile(filepath.Join(j.dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	}
	results, err := open(ResultsFile)
	if err != nil {
		return last, nil, fmt.Errorf("storing results: %w", err)
	}
	defer results.Close()
	logf, err := open(LogFile)
	if err != nil {
		return last, nil, fmt.Errorf("opening the job's log: %w", err)
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return last, nil, err
	}
	defer pr.Close()
	args := append(append([]string(nil), m.opts.Command[1:]...), ProcessArg, j.dir)
	cmd := exec.Command(m.opts.Command[0], args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = results, logf
	cmd.ExtraFiles = []*os.File{pw}
	// Its own process group: a Ctrl-C at the daemon's terminal is the
	// daemon's to handle, not every job's.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return last, nil, fmt.Errorf("starting the job process: %w", err)
	}
	j.mu.Lock()
	j.proc = cmd.Process
	stopNow := j.stopping || j.shutdown
	j.mu.Unlock()
	if stopNow {
		j.signal(m)
	}

	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		var r Report
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		last = r
		j.progress(r)
	}
	waitErr = cmd.Wait()
	j.stopKill()
	return last, waitErr, nil
}

// progress records a report of the job process.
func (j *job) progress(r Report) {
	j.mu.Lock()
	j.info.Done, j.info.Failed, j.info.Succeeded = r.Done, r.Failed, r.Done-r.Failed
	if r.Total >= 0 {
		j.info.Total = r.Total
	}
	j.info.Committed = max(j.info.Committed, r.Committed)
	j.info.Running, j.info.Queued, j.info.Retried, j.info.P50Ms, j.info.P99Ms = r.Running, r.Queued, r.Retried, r.P50Ms, r.P99Ms
	j.notifyLocked()
	due := time.Since(j.lastSave) >= progressSave
	j.mu.Unlock()
	if due {
		j.save()
	}
}

// stop tells the job's process to stop (see job.stopping and shutdown).
func (j *job) stop(m *Manager, shutdown bool) {
	j.mu.Lock()
	if shutdown {
		j.shutdown = true
	} else {
		j.stopping = true
	}
	idle := !j.active && j.info.State == NotStarted && !shutdown
	j.mu.Unlock()
	if idle {
		j.endInput(0, errors.New("the job was stopped"), true)
		j.update(func(i *Info) {
			if !i.State.Finished() {
				i.State, i.Reason, i.EndedAt = Stopped, "stopped before it started", time.Now()
			}
		})
		return
	}
	j.signal(m)
}

// signal sends SIGTERM to the job process, and SIGKILL to its process
// group if it has not ended after the grace. When the Manager is closing
// (and the job is not being stopped), the process group gets SIGKILL at
// once: the job is to be resumed, and a process told to stop would record
// its interrupted items as Stopped, results the resumed job would keep.
// Its job log makes it resumable from any point, as after kill -9.
func (j *job) signal(m *Manager) {
	j.mu.Lock()
	defer j.mu.Unlock()
	p := j.proc
	if p == nil {
		return
	}
	if j.shutdown && !j.stopping {
		_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	grace := DefaultStopGrace
	if m != nil {
		grace = m.opts.StopGrace
	}
	if j.kill != nil {
		j.kill.Stop()
	}
	j.kill = time.AfterFunc(grace, func() { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) })
}

func (j *job) stopKill() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.kill != nil {
		j.kill.Stop()
		j.kill = nil
	}
}

// remove deletes the job's files, once no save is under way: an upload in
// progress ends, and nothing is written for the job afterwards.
func (j *job) remove() error {
	j.saveMu.Lock()
	defer j.saveMu.Unlock()
	j.mu.Lock()
	j.info.InputOpen = false
	j.removed = true
	j.notifyLocked()
	j.mu.Unlock()
	return os.RemoveAll(j.dir)
}
