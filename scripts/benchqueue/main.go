// Command benchqueue is the Go half of scripts/bench-queue.sh: it starts
// and measures the processes of one benchmark point, so that the script
// needs nothing installed. Subcommands:
//
//	benchqueue port
//	benchqueue point -url URL -results NAME -n N -workers K -server PID [-timeout D] [-logs DIR] -- CMD [ARG...]
//	benchqueue run [-repeat R] [-out FILE] -- CMD [ARG...]
//	benchqueue drop -url URL NAME...
//
// port prints a TCP port on 127.0.0.1 that was free a moment ago, for
// `rsh queue serve --listen`.
//
// point starts K copies of CMD at once (the workers: stdout to /dev/null,
// stderr to DIR/worker-I.err), and asks the NATS server at URL every
// pollEvery how many messages the stream NAME (the results) holds: the
// count `rsh queue stat` reports as done. It prints one line,
//
//	DONE_S EXIT_S WORKER_CPU_S SERVER_CPU_S OTHER_CPU_S MAXRSS_KIB DONE FAILED
//
// DONE_S is the time from starting the workers until NAME held N
// messages (or all workers exited, whichever came first), EXIT_S until the
// last worker exited; WORKER_CPU_S is the workers' user + system time
// (from their rusage), SERVER_CPU_S the user + system time the process PID
// (the server) used from just before the workers started until they had
// all exited (from /proc/PID/stat); OTHER_CPU_S the CPU time the rest of
// the machine used meanwhile (the busy time in /proc/stat less the
// workers', the server's and this program's own); MAXRSS_KIB the largest ru_maxrss of
// any one worker; DONE is the last count seen; FAILED the number of
// workers that exited other than with 0. A point that runs
// past D is ended: its workers are killed and it exits 1.
//
// run runs CMD R times one after the other, its stdout to FILE (-out,
// default /dev/null; each run overwrites it), and prints
// "WALL_S CPU_S MAXRSS_KIB" of the run with the median wall time.
//
// drop deletes the named streams of the server at URL; a missing one is
// not an error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// pollEvery is how often point asks for the results' count: often enough
// that the time it reports is within 1% of a point that lasts a few
// seconds, rarely enough that the requests cost the server nothing next
// to the workers' thousands of messages a second.
const pollEvery = 20 * time.Millisecond

// requestTimeout bounds one request to the server.
const requestTimeout = 5 * time.Second

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, which
// Linux fixes at 100 for user space on every architecture.
const userHZ = 100

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchqueue port | point ... -- CMD [ARG...] | run ... -- CMD [ARG...] | drop -url URL NAME...")
		os.Exit(2)
	}
	var code int
	switch os.Args[1] {
	case "port":
		code = portCommand()
	case "point":
		code = pointCommand(os.Args[2:])
	case "run":
		code = runCommand(os.Args[2:])
	case "drop":
		code = dropCommand(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "benchqueue: unknown command %q\n", os.Args[1])
		code = 2
	}
	os.Exit(code)
}

// portCommand is `benchqueue port`.
func portCommand() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchqueue: port:", err)
		return 1
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return 0
}

// pointOptions are the flags of `benchqueue point`.
type pointOptions struct {
	url, results, logs string
	n, workers, server int
	timeout            time.Duration
	cmd                []string
}

func parsePoint(args []string) (pointOptions, error) {
	var o pointOptions
	fs := flag.NewFlagSet("benchqueue point", flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "", "the NATS server, nats://HOST:PORT")
	fs.StringVar(&o.results, "results", "", "the results stream to count")
	fs.StringVar(&o.logs, "logs", os.TempDir(), "where the workers' stderr goes")
	fs.IntVar(&o.n, "n", 0, "the items of the point")
	fs.IntVar(&o.workers, "workers", 1, "copies of CMD to start")
	fs.IntVar(&o.server, "server", 0, "the server's process id")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "when to give up")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.cmd = fs.Args()
	switch {
	case o.url == "" || o.results == "":
		return o, errors.New("-url and -results are required")
	case o.n < 1 || o.workers < 1 || o.server < 1:
		return o, errors.New("-n, -workers and -server must be at least 1")
	case len(o.cmd) == 0:
		return o, errors.New("no worker command")
	}
	return o, nil
}

// pointCommand is `benchqueue point`.
func pointCommand(args []string) int {
	o, err := parsePoint(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchqueue: point:", err)
		return 2
	}
	nc, err := nats.Connect(o.url, nats.Name("benchqueue"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchqueue: point:", err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchqueue: point:", err)
		return 1
	}
	m, err := measurePoint(o, func() (uint64, error) { return streamMsgs(js, o.results) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchqueue: point:", err)
		return 1
	}
	fmt.Printf("%.3f %.3f %.3f %.2f %.2f %d %d %d\n", m.done.Seconds(), m.exit.Seconds(), m.workerCPU.Seconds(), m.serverCPU.Seconds(), m.otherCPU.Seconds(), m.maxRSS, m.count, m.failed)
	return 0
}

// point is what measurePoint measured.
type point struct {
	done, exit           time.Duration // from the start until N results, until the last exit
	workerCPU, serverCPU time.Duration
	otherCPU             time.Duration // the rest of the machine's
	maxRSS               int64         // KiB, the largest of any one worker
	count                uint64        // results seen last
	failed               int           // workers that did not exit 0
}

// measurePoint starts the workers of o, polls count until it reaches o.n
// or every worker has exited, and waits for the workers.
func measurePoint(o pointOptions, count func() (uint64, error)) (point, error) {
	var p point
	cpu0, err := procCPU(o.server)
	if err != nil {
		return p, err
	}
	busy0, err := machineBusy()
	if err != nil {
		return p, err
	}
	self0 := selfCPU()
	start := time.Now()
	cmds := make([]*exec.Cmd, o.workers)
	exited := make(chan int, o.workers)
	for i := range cmds {
		cmd := exec.Command(o.cmd[0], o.cmd[1:]...)
		errFile, err := os.Create(filepath.Join(o.logs, fmt.Sprintf("worker-%d.err", i+1)))
		if err != nil {
			killAll(cmds)
			return p, err
		}
		cmd.Stderr = errFile
		if err := cmd.Start(); err != nil {
			errFile.Close()
			killAll(cmds)
			return p, fmt.Errorf("start worker %d: %w", i+1, err)
		}
		errFile.Close() // the child has its own copy
		cmds[i] = cmd
		go func() {
			_ = cmd.Wait() // its status is read from ProcessState below
			exited <- i
		}()
	}
	deadline := time.NewTimer(o.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	running := o.workers
	for p.done == 0 {
		select {
		case <-exited:
			if running--; running == 0 {
				p.done = time.Since(start)
			}
			continue
		case <-deadline.C:
			killAll(cmds)
			return p, fmt.Errorf("not done after %v", o.timeout)
		case <-tick.C:
		}
		n, err := count()
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchqueue: point: counting results:", err)
			continue
		}
		p.count = n
		if n >= uint64(o.n) {
			p.done = time.Since(start)
		}
	}
	for ; running > 0; running-- {
		select {
		case <-exited:
		case <-deadline.C:
			killAll(cmds)
			return p, fmt.Errorf("the workers had not exited after %v", o.timeout)
		}
	}
	p.exit = time.Since(start)
	cpu1, err := procCPU(o.server)
	if err != nil {
		return p, err
	}
	p.serverCPU = cpu1 - cpu0
	busy1, err := machineBusy()
	if err != nil {
		return p, err
	}
	self := selfCPU() - self0
	for _, cmd := range cmds {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			p.workerCPU += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			p.maxRSS = max(p.maxRSS, ru.Maxrss)
		}
		if cmd.ProcessState.ExitCode() != 0 {
			p.failed++
		}
	}
	p.otherCPU = busy1 - busy0 - p.workerCPU - p.serverCPU - self
	if n, err := count(); err == nil {
		p.count = n
	}
	return p, nil
}

// killAll kills the workers started so far.
func killAll(cmds []*exec.Cmd) {
	for _, cmd := range cmds {
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	}
}

// streamMsgs returns how many messages the stream name holds: 0 if it
// does not exist yet (the first worker creates it).
func streamMsgs(js jetstream.JetStream, name string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", name, err)
	}
	return s.CachedInfo().State.Msgs, nil
}

// procCPU returns the user + system time process pid has used.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("read the server's stat: %w", err)
	}
	ticks, err := parseCPUTicks(string(data))
	if err != nil {
		return 0, err
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// parseCPUTicks returns utime + stime from a /proc/PID/stat line,
// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
// fields count from the last ')'.
func parseCPUTicks(s string) (int64, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat %q: no ')'", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 of proc(5) (state); utime and stime are 14 and 15.
	const utime, stime = 11, 12
	if len(f) <= stime {
		return 0, fmt.Errorf("parse stat %q: %d fields", s, len(f))
	}
	var sum int64
	for _, k := range []int{utime, stime} {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse stat field %d: %w", k+3, err)
		}
		sum += v
	}
	return sum, nil
}

// machineBusy returns the CPU time all the machine's CPUs have spent other
// than idle or waiting for I/O, from the first line of /proc/stat.
func machineBusy() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	ticks, err := parseBusyTicks(line)
	if err != nil {
		return 0, err
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// parseBusyTicks returns the busy ticks of the "cpu" line of /proc/stat:
// user, nice, system, irq, softirq and steal (guest time is counted in
// user already; idle and iowait are not busy).
func parseBusyTicks(line string) (int64, error) {
	f := strings.Fields(line)
	// f[0] is "cpu"; then user nice system idle iowait irq softirq steal.
	const user, nice, system, irq, softirq, steal = 1, 2, 3, 6, 7, 8
	if len(f) <= steal || f[0] != "cpu" {
		return 0, fmt.Errorf("parse /proc/stat %q: want a cpu line of at least %d fields", line, steal+1)
	}
	var sum int64
	for _, k := range []int{user, nice, system, irq, softirq, steal} {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/stat field %d: %w", k, err)
		}
		sum += v
	}
	return sum, nil
}

// selfCPU returns the user + system time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runCommand is `benchqueue run`.
func runCommand(args []string) int {
	fs := flag.NewFlagSet("benchqueue run", flag.ContinueOnError)
	repeat := fs.Int("repeat", 1, "runs, one after the other")
	out := fs.String("out", os.DevNull, "where the command's stdout goes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cmdArgs := fs.Args()
	if len(cmdArgs) == 0 || *repeat < 1 {
		fmt.Fprintln(os.Stderr, "usage: benchqueue run -repeat R -- CMD [ARG...]")
		return 2
	}
	type run struct {
		wall, cpu time.Duration
		maxRSS    int64
	}
	runs := make([]run, 0, *repeat)
	for range *repeat {
		cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
		cmd.Stderr = os.Stderr
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchqueue: run:", err)
			return 1
		}
		cmd.Stdout = f
		start := time.Now()
		err = cmd.Run()
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchqueue: run:", err)
			return 1
		}
		r := run{wall: time.Since(start)}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			r.maxRSS = ru.Maxrss
		}
		runs = append(runs, r)
	}
	slices.SortFunc(runs, func(a, b run) int { return int(a.wall - b.wall) })
	m := runs[len(runs)/2]
	fmt.Printf("%.3f %.3f %d\n", m.wall.Seconds(), m.cpu.Seconds(), m.maxRSS)
	return 0
}

// dropCommand is `benchqueue drop`.
func dropCommand(args []string) int {
	fs := flag.NewFlagSet("benchqueue drop", flag.ContinueOnError)
	url := fs.String("url", "", "the NATS server, nats://HOST:PORT")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *url == "" {
		fmt.Fprintln(os.Stderr, "usage: benchqueue drop -url URL NAME...")
		return 2
	}
	nc, err := nats.Connect(*url, nats.Name("benchqueue"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchqueue: drop:", err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchqueue: drop:", err)
		return 1
	}
	code := 0
	for _, name := range fs.Args() {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		err := js.DeleteStream(ctx, name)
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			fmt.Fprintf(os.Stderr, "benchqueue: drop %s: %v\n", name, err)
			code = 1
		}
	}
	return code
}
