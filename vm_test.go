package main

// End-to-end tests of the rsh command: each testdata/script/*.txtar file
// runs rsh as a real process with its stdin, and checks stdout, stderr and
// the exit code.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/runspaces/rsh/cli"
	"github.com/runspaces/rsh/worker"
)

func TestMain(m *testing.M) {
	// rsh's worker processes (--isolate process) are this test binary
	// re-executed, as they are the rsh binary in real use.
	worker.Main()
	// So are the job processes of rsh serve.
	cli.JobMain()
	testscript.Main(m, map[string]func(){
		"rsh": func() { os.Exit(run()) },
	})
}

func TestScripts(t *testing.T) {
	examples, err := filepath.Abs("examples")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(e *testscript.Env) error {
			e.Setenv("EXAMPLES", examples)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"listen":         cmdListen,
			"sum":            cmdSum,
			"lines":          cmdLines,
			"waitfile":       cmdWaitFile,
			"seq":            cmdSeq,
			"joblogonce":     cmdJoblogOnce,
			"waitlines":      cmdWaitLines,
			"joblogcheck":    cmdJoblogCheck,
			"sameitems":      cmdSameItems,
			"filemode":       cmdFileMode,
			"waitjob":        cmdWaitJob,
			"waitdaemon":     cmdWaitDaemon,
			"waitqueue":      cmdWaitQueue,
			"waitjobrunning": cmdWaitJobRunning,
		},
	})
}

// listen NAME... opens a TCP listener on a free loopback port for each NAME
// and sets $NAME to its port; the listeners accept and hold connections
// until the script ends. "listen -closed NAME" sets $NAME to a port that
// was free a moment ago and is now closed.
func cmdListen(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! listen")
	}
	closed := false
	if len(args) > 0 && args[0] == "-closed" {
		closed, args = true, args[1:]
	}
	for _, name := range args {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		ts.Check(err)
		port := l.Addr().(*net.TCPAddr).Port
		ts.Setenv(name, strconv.Itoa(port))
		if closed {
			l.Close()
			continue
		}
		var mu sync.Mutex
		var conns []net.Conn
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
		ts.Defer(func() {
			l.Close()
			<-done
			for _, c := range conns {
				c.Close()
			}
		})
	}
}

// sum FILE N checks that the numbers on the lines of FILE (stdout, stderr
// or a file) add up to N.
func cmdSum(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: sum FILE N")
	}
	var total float64
	sc := bufio.NewScanner(strings.NewReader(readFile(ts, args[0])))
	for sc.Scan() {
		f, err := strconv.ParseFloat(strings.TrimSpace(sc.Text()), 64)
		if err != nil {
			ts.Fatalf("sum: line %q is not a number", sc.Text())
		}
		total += f
	}
	want, err := strconv.ParseFloat(args[1], 64)
	ts.Check(err)
	if (total == want) == neg {
		ts.Fatalf("sum of %s is %v, want %s%v", args[0], total, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// lines FILE N checks that FILE has N lines.
func cmdLines(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: lines FILE N")
	}
	got := strings.Count(readFile(ts, args[0]), "\n")
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	if (got == want) == neg {
		ts.Fatalf("%s has %d lines, want %d", args[0], got, want)
	}
}

func readFile(ts *testscript.TestScript, name string) string {
	switch name {
	case "stdout", "stderr":
		return ts.ReadFile(name)
	}
	data, err := os.ReadFile(ts.MkAbs(name))
	ts.Check(err)
	return string(data)
}

// waitfile FILE... waits (up to a minute) until every FILE exists.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: waitfile FILE...")
	}
	deadline := time.Now().Add(time.Minute)
	for _, name := range args {
		for {
			if _, err := os.Stat(ts.MkAbs(name)); err == nil {
				break
			}
			if time.Now().After(deadline) {
				ts.Fatalf("waitfile: %s did not appear", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// seq N FILE writes the numbers 1..N to FILE, one per line.
func cmdSeq(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: seq N FILE")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(b.String()), 0o644))
}

// joblogonce LOG N checks that each of the inputs 1..N has exactly one
// Success line in the job log LOG, and that nothing else succeeded.
func cmdJoblogOnce(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: joblogonce LOG N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	want := map[string]int{}
	for i := 1; i <= n; i++ {
		sum := sha256.Sum256([]byte(strconv.Itoa(i)))
		want[hex.EncodeToString(sum[:16])] = i
	}
	successes := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(readFile(ts, args[0])), "\n") {
		var e struct{ Hash, Status string }
		ts.Check(json.Unmarshal([]byte(line), &e))
		if e.Status == "Success" {
			successes[e.Hash]++
		}
	}
	for h, i := range want {
		if successes[h] != 1 {
			ts.Fatalf("input %d succeeded %d times in the job log, want exactly once", i, successes[h])
		}
	}
	if len(successes) != n {
		ts.Fatalf("%d inputs succeeded, want %d", len(successes), n)
	}
}

// filemode FILE MODE checks FILE's permission bits (octal).
func cmdFileMode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: filemode FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fi.Mode().Perm(); uint64(got) != want {
		ts.Fatalf("%s has mode %#o, want %#o", args[0], got, want)
	}
}

// waitjob NAME N waits (up to a minute) until the daemon's job NAME has at least N
// results, asking with rsh job get.
func cmdWaitJob(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitjob NAME N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if err := ts.Exec("rsh", "job", "get", "--json", args[0]); err == nil {
			var info struct{ Done int }
			if json.Unmarshal([]byte(ts.ReadFile("stdout")), &info) == nil && info.Done >= want {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("job %s never had %s results", args[0], args[1])
}

// waitdaemon [ARGS...] waits (up to a minute) until rsh job ls ARGS...
// succeeds: the daemon is up.
func cmdWaitDaemon(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: waitdaemon [rsh job ls flags]")
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if ts.Exec("rsh", append([]string{"job", "ls"}, args...)...) == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("the daemon did not come up")
}

// runningOne is the line of rsh job get for a job with one item running.
var runningOne = regexp.MustCompile(`(?m)^running: +1 items`)

// waitjobrunning NAME waits (up to a minute) until rsh job get NAME says
// that the job has an item running, from its process's pool metrics.
func cmdWaitJobRunning(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitjobrunning NAME")
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if ts.Exec("rsh", "job", "get", args[0]) == nil && runningOne.MatchString(ts.ReadFile("stdout")) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("job %s never showed an item running", args[0])
}

// waitqueue URL [FLAGS] waits (up to a minute) until rsh queue stat URL
// FLAGS succeeds:
// the NATS server is up.
func cmdWaitQueue(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: waitqueue URL [rsh queue stat flags]")
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if ts.Exec("rsh", append([]string{"queue", "stat"}, args...)...) == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("the queue at %s did not come up", args[0])
}

// waitlines FILE N waits (up to a minute) until FILE has at least N lines.
func cmdWaitLines(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitlines FILE N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	deadline := time.Now().Add(time.Minute)
	for {
		data, _ := os.ReadFile(ts.MkAbs(args[0]))
		if strings.Count(string(data), "\n") >= want {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitlines: %s never had %d lines", args[0], want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// joblogcheck LOG OUT INPUT [BATCH] checks a job log against the input
// file it was made from (in --in auto, in batches of BATCH lines if given)
// and the output file of the runs, for a script whose output lines are its
// input lines (single words, such as numbers): each log line's seq is the position of the input (or batch)
// that its hash names; no seq succeeded twice; and every item the log says
// succeeded has its output in OUT (the log never claims lost output).
func cmdJoblogCheck(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 || len(args) > 4 {
		ts.Fatalf("usage: joblogcheck LOG OUT INPUT [BATCH]")
	}
	size := 1
	if len(args) == 4 {
		var err error
		size, err = strconv.Atoi(args[3])
		ts.Check(err)
	}
	type group struct {
		hash  string
		lines []string
	}
	bySeq := map[int64]group{}
	in := strings.Fields(readFile(ts, args[2]))
	for i := 0; i < len(in); i += size {
		lines := in[i:min(i+size, len(in))]
		var raws []string
		for _, l := range lines {
			raw, err := json.Marshal(l)
			ts.Check(err)
			if json.Valid([]byte(l)) {
				raw = []byte(l)
			}
			raws = append(raws, string(raw))
		}
		input := raws[0]
		if size > 1 {
			input = "[" + strings.Join(raws, ",") + "]"
		}
		sum := sha256.Sum256([]byte(input))
		bySeq[int64(i+1)] = group{hex.EncodeToString(sum[:16]), lines}
	}
	out := map[string]int{}
	for _, l := range strings.Fields(readFile(ts, args[1])) {
		out[l]++
	}
	claimed := map[string]int{}
	succeeded := map[int64]bool{}
	for _, line := range strings.Split(strings.TrimSpace(readFile(ts, args[0])), "\n") {
		if strings.HasPrefix(line, `{"outputEnd":`) {
			continue // where the claimed output ends, not an item
		}
		var e struct {
			Seq          int64
			Hash, Status string
		}
		ts.Check(json.Unmarshal([]byte(line), &e))
		g, ok := bySeq[e.Seq]
		if !ok || g.hash != e.Hash {
			ts.Fatalf("job log line %s: seq %d is not the position of that input", line, e.Seq)
		}
		if e.Status != "Success" {
			continue
		}
		if succeeded[e.Seq] {
			ts.Fatalf("seq %d succeeded twice in the job log", e.Seq)
		}
		succeeded[e.Seq] = true
		for _, l := range g.lines {
			claimed[l]++
		}
	}
	for l, n := range claimed {
		if out[l] < n {
			ts.Fatalf("the job log claims %d success(es) of %s, but %s has %d output(s) of it", n, l, args[1], out[l])
		}
	}
}

// sameitems OUT INPUT checks that the lines of OUT are those of INPUT, each
// as many times, in any order (lines are single words, such as numbers).
func cmdSameItems(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sameitems OUT INPUT")
	}
	count := map[string]int{}
	for _, l := range strings.Fields(readFile(ts, args[0])) {
		count[l]++
	}
	for _, l := range strings.Fields(readFile(ts, args[1])) {
		count[l]--
	}
	for l, n := range count {
		if n != 0 {
			ts.Fatalf("%s has %s %d time(s) more than %s", args[0], l, n, args[1])
		}
	}
}
