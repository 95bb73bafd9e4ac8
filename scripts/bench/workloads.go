package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// sizes are the item counts of one mode. The process-per-item peers get
// far fewer items than rsh: on the machine this was written on, forking a
// process costs several milliseconds (GNU parallel managed about 25 items/s,
// xargs with sh about 130, xargs with node about 7), and the whole default
// run has to stay near a quarter of an hour. Items/s stays comparable and
// each table says how many items each tool ran.
type sizes struct {
	trivial, trivialParallel, trivialXargs, trivialNode, trivialPiscina int
	cpu, cpuSingle, cpuWarm                                             int
	io, ioParallel                                                      int
	json                                                                int
	startupWarm, startupRuns                                            int
}

func sizesFor(quick bool) sizes {
	if quick {
		return sizes{
			trivial: 100_000, trivialParallel: 20, trivialXargs: 100, trivialNode: 6, trivialPiscina: 20_000,
			cpu: 100, cpuSingle: 50, cpuWarm: 10,
			io: 2_000, ioParallel: 20,
			json:        20_000,
			startupWarm: 1, startupRuns: 5,
		}
	}
	return sizes{
		trivial: 1_000_000, trivialParallel: 150, trivialXargs: 1_000, trivialNode: 30, trivialPiscina: 100_000,
		// The single-worker runs of the scaling measurement get a quarter
		// of the items: at 2,000 they alone would take over 4 minutes of
		// the run. Efficiency is computed from items/s, not wall time.
		cpu: 2_000, cpuSingle: 500, cpuWarm: 50,
		// 1,000 items of parallel -j 1000 took 85 s in one try (ideal 0.1 s).
		// 100 items at -j 100 take about 6 s.
		io: 10_000, ioParallel: 100,
		json:        200_000,
		startupWarm: 3, startupRuns: 30,
	}
}

// ioThrottle is the io workload's concurrency: 1,000 sleeps of 100 ms at
// once, so 10,000 items ideally take 1.0 s.
const ioThrottle = 1000

// ioSleepMs is how long each io item waits.
const ioSleepMs = 100

// scanThrottle is rsh's concurrency in the scan workload: what a scan of
// hosts on a network would use, a few dozen connects in flight without a
// flood of sockets. On loopback a connect's answer is there when connect
// returns, so any throttle from the number of CPUs up keeps every core
// busy (-t 2 and -t 64 measured alike on 2 cores).
const scanThrottle = 64

// scanListeners is how many listeners the harness opens for the scan
// workload to find.
const scanListeners = 5

func (e *env) trivial() (*workload, error) {
	z, n := sizesFor(e.c.quick), e.c.threads
	w := &workload{
		name:  "trivial",
		title: "trivial: (n) => n * n over the numbers 1..N",
		notes: []string{fmt.Sprintf("concurrency %d (nproc) for every tool; output to a file, checked by line count and sum of squares", n)},
	}
	in := func(k int) (string, error) { return e.numbers(k) }
	rshIn, err := in(z.trivial)
	if err != nil {
		return nil, err
	}
	parIn, err := in(z.trivialParallel)
	if err != nil {
		return nil, err
	}
	xIn, err := in(z.trivialXargs)
	if err != nil {
		return nil, err
	}
	nodeIn, err := in(z.trivialNode)
	if err != nil {
		return nil, err
	}
	pIn, err := in(z.trivialPiscina)
	if err != nil {
		return nil, err
	}
	w.tools = []*tool{
		{name: "rsh", items: z.trivial, stdin: rshIn, check: squaresCheck(z.trivial),
			cmd: fmt.Sprintf(`"$RSH" run -e '(n) => n * n' -t %d`, n)},
		// What durability and containment cost on the same items.
		{name: "rsh --joblog", items: z.trivial, stdin: rshIn, check: squaresCheck(z.trivial),
			cmd: fmt.Sprintf(`rm -f "$OUT/joblog"; "$RSH" run -e '(n) => n * n' -t %d --joblog "$OUT/joblog"`, n)},
		{name: "rsh --max-memory", items: z.trivial, stdin: rshIn, check: squaresCheck(z.trivial),
			cmd: fmt.Sprintf(`"$RSH" run -e '(n) => n * n' -t %d --max-memory 512MiB`, n)},
		{name: "limit", items: z.trivial, selfTimed: true,
			cmd: fmt.Sprintf(`"$LIMIT" -script '(n) => n * n' -items %d -workers %d`, z.trivial, n)},
		{name: "GNU parallel", items: z.trivialParallel, stdin: parIn, check: squaresCheck(z.trivialParallel), needs: []string{"parallel"},
			cmd: fmt.Sprintf(`parallel -j %d 'echo $(({}*{}))'`, n)},
		{name: "xargs + sh", items: z.trivialXargs, stdin: xIn, check: squaresCheck(z.trivialXargs),
			cmd: fmt.Sprintf(`xargs -P %d -n 1 sh -c 'echo $(($1*$1))' _`, n)},
		{name: "xargs + node", items: z.trivialNode, stdin: nodeIn, check: squaresCheck(z.trivialNode), needs: []string{"node"},
			cmd: fmt.Sprintf(`xargs -P %d -n 1 node -e 'console.log(process.argv[1] * process.argv[1])'`, n)},
		{name: "piscina", items: z.trivialPiscina, stdin: pIn, check: squaresCheck(z.trivialPiscina), needs: []string{"node"}, needsPiscina: true,
			cmd: fmt.Sprintf(`node "$PISCINA/driver.js" --task square --threads %d`, n)},
	}
	return w, nil
}

func (e *env) cpu() (*workload, error) {
	z, n := sizesFor(e.c.quick), e.c.threads
	w := &workload{
		name:  "cpu",
		title: "cpu: 100,000 steps of arithmetic per item (scripts/bench/cpu.js)",
		notes: []string{
			fmt.Sprintf("concurrency %d (nproc) unless the tool says 1; output checked by line count and the sum of the results, computed in Go", n),
			fmt.Sprintf("warm-up runs use %d items: each run is a new process, so a warm-up only fills caches", z.cpuWarm),
		},
	}
	e.logf("cpu: computing the expected results in Go")
	checks := cpuChecks(z.cpu, z.cpuSingle)
	in, err := e.numbers(z.cpu)
	if err != nil {
		return nil, err
	}
	single, err := e.numbers(z.cpuSingle)
	if err != nil {
		return nil, err
	}
	warm, err := e.numbers(z.cpuWarm)
	if err != nil {
		return nil, err
	}
	rsh := func(t, items int, in string) *tool {
		name := "rsh"
		if t == 1 && n > 1 {
			name = "rsh -t 1"
		}
		return &tool{name: name, items: items, stdin: in, check: checks[items],
			cmd:     fmt.Sprintf(`"$RSH" run "$BENCH/cpu.js" -t %d`, t),
			warmCmd: fmt.Sprintf(`"$RSH" run "$BENCH/cpu.js" -t %d`, t), warmStdin: warm}
	}
	limit := func(workers, items int) *tool {
		name := "limit"
		if workers == 1 && n > 1 {
			name = "limit -workers 1"
		}
		return &tool{name: name, items: items, selfTimed: true,
			cmd:     fmt.Sprintf(`"$LIMIT" -script-file "$BENCH/cpu.js" -items %d -workers %d`, items, workers),
			warmCmd: fmt.Sprintf(`"$LIMIT" -script-file "$BENCH/cpu.js" -items %d -workers %d`, z.cpuWarm, workers)}
	}
	pcmd := fmt.Sprintf(`node "$PISCINA/driver.js" --task cpu --threads %d --cpu-file "$BENCH/cpu.js"`, n)
	w.tools = []*tool{rsh(n, z.cpu, in), limit(n, z.cpu)}
	if n > 1 {
		w.tools = append(w.tools, rsh(1, z.cpuSingle, single), limit(1, z.cpuSingle))
	}
	w.tools = append(w.tools, &tool{name: "piscina", items: z.cpu, stdin: in, check: checks[z.cpu],
		needs: []string{"node"}, needsPiscina: true, cmd: pcmd, warmCmd: pcmd, warmStdin: warm})
	w.after = func(wr *workloadResult) {
		if n == 1 {
			wr.extra = append(wr.extra, "scaling efficiency: not measured, nproc is 1")
			return
		}
		for _, pair := range [][2]string{{"rsh", "rsh -t 1"}, {"limit", "limit -workers 1"}} {
			eff, ok := efficiency(wr, pair[0], pair[1], n)
			if !ok {
				wr.extra = append(wr.extra, fmt.Sprintf("scaling efficiency of %s: not measured", pair[0]))
				continue
			}
			wr.extra = append(wr.extra, fmt.Sprintf("scaling efficiency of %s: %.2f (items/s with %d workers ÷ (%d × items/s with 1), wall times)", pair[0], eff, n, n))
			if pair[0] == "limit" {
				if a, b := wr.tool(pair[0]), wr.tool(pair[1]); a.selfRate() > 0 && b.selfRate() > 0 {
					wr.extra = append(wr.extra, fmt.Sprintf("scaling efficiency of limit's loop alone: %.2f", a.selfRate()/(float64(n)*b.selfRate())))
				}
			}
		}
	}
	return w, nil
}

// efficiency is rate(many) / (n × rate(one)): 1.0 is perfect scaling.
func efficiency(wr *workloadResult, many, one string, n int) (float64, bool) {
	a, b := wr.tool(many), wr.tool(one)
	if a == nil || b == nil || a.rate() == 0 || b.rate() == 0 {
		return 0, false
	}
	return a.rate() / (float64(n) * b.rate()), true
}

func (e *env) io() (*workload, error) {
	z, n := sizesFor(e.c.quick), e.c.threads
	w := &workload{
		name:  "io",
		title: fmt.Sprintf("io: every item waits %d ms, %d at once", ioSleepMs, ioThrottle),
		notes: []string{
			fmt.Sprintf("ideal wall for %d items: %.2f s; output checked by line count and sum", z.io, idealIO(z.io)),
			fmt.Sprintf("GNU parallel gets %d items (ideal %.2f s) and -j %d, which runs them all at once as -j %d would: it starts about 25 processes a second here, 1,000 items at -j 1000 took 85 s in one try, and -j 1000 alone added 30-40 s of start-up to a run of 20 items", z.ioParallel, idealIO(z.ioParallel), min(ioThrottle, z.ioParallel), ioThrottle),
		},
	}
	in, err := e.numbers(z.io)
	if err != nil {
		return nil, err
	}
	parIn, err := e.numbers(z.ioParallel)
	if err != nil {
		return nil, err
	}
	w.tools = []*tool{
		{name: "rsh", items: z.io, stdin: in, check: identityCheck(z.io),
			cmd: fmt.Sprintf(`"$RSH" run -e '(n) => { sleep(%d); return n }' -t %d`, ioSleepMs, ioThrottle)},
		{name: "GNU parallel", items: z.ioParallel, stdin: parIn, check: identityCheck(z.ioParallel), needs: []string{"parallel"},
			cmd: fmt.Sprintf(`parallel -j %d 'sleep %g; echo {}'`, min(ioThrottle, z.ioParallel), float64(ioSleepMs)/1000)},
		{name: "piscina", items: z.io, stdin: in, check: identityCheck(z.io), needs: []string{"node"}, needsPiscina: true,
			cmd: fmt.Sprintf(`node "$PISCINA/driver.js" --task io --threads %d --concurrency %d`, n, ioThrottle)},
	}
	w.after = func(wr *workloadResult) {
		for _, r := range wr.tools {
			if r.ok() {
				wr.extra = append(wr.extra, fmt.Sprintf("%s: median wall %.2f s = %.2f × ideal (%.2f s)",
					r.t.name, median(r.walls).Seconds(), median(r.walls).Seconds()/idealIO(r.t.items), idealIO(r.t.items)))
			}
		}
	}
	return w, nil
}

// idealIO is the wall time of items io items with no overhead.
func idealIO(items int) float64 {
	rounds := (items + ioThrottle - 1) / ioThrottle
	return float64(rounds) * ioSleepMs / 1000
}

func (e *env) json() (*workload, error) {
	z, n := sizesFor(e.c.quick), e.c.threads
	in, mean, err := e.objects(z.json)
	if err != nil {
		return nil, err
	}
	const transform = `(o) => { o.seen = true; delete o.note; return o }`
	w := &workload{
		name:  "json",
		title: "json: add a field and drop one from NDJSON objects",
		notes: []string{fmt.Sprintf("%d objects of %.0f bytes on average; concurrency %d; output checked: line count, every object has seen and no note, ids add up", z.json, mean, n),
			"limit decodes its input before its clock starts (its process wall includes that decoding); it writes nothing"},
	}
	w.tools = []*tool{
		{name: "rsh", items: z.json, stdin: in, check: jsonCheck(z.json),
			cmd: fmt.Sprintf(`"$RSH" run --in json -e '%s' -t %d`, transform, n)},
		{name: "limit", items: z.json, selfTimed: true,
			cmd: fmt.Sprintf(`"$LIMIT" -input "%s" -script '%s' -workers %d`, in, transform, n)},
		{name: "piscina", items: z.json, stdin: in, check: jsonCheck(z.json), needs: []string{"node"}, needsPiscina: true,
			cmd: fmt.Sprintf(`node "$PISCINA/driver.js" --task json --threads %d`, n)},
	}
	return w, nil
}

func (e *env) scan(ctx context.Context) (*workload, error) {
	const nports = 65535
	ports := make([]int, nports)
	for i := range ports {
		ports[i] = i + 1
	}
	in, err := e.scanTargets(ports)
	if err != nil {
		return nil, err
	}
	ls, err := startListeners(ctx, scanListeners)
	if err != nil {
		return nil, err
	}
	w := &workload{
		name:  "scan",
		title: "scan: TCP connect scan of every port 1-65535 on 127.0.0.1",
		notes: []string{
			fmt.Sprintf("the harness listens on %s during the scan; the tools must find those and agree with each other on the rest", portSet(ls.ports)),
			"examples/portscan.js scans a host's ports one after the other; it takes all 65,535 in one params file (--params)",
		},
		teardown: ls.close,
	}
	w.tools = []*tool{
		{name: "rsh", items: nports, stdin: in, check: scanLinesCheck(nports),
			cmd: fmt.Sprintf(`"$RSH" run "$BENCH/scan.js" --allow-net=127.0.0.1 -t %d`, scanThrottle)},
		{name: "nmap", items: nports, check: nmapCheck(nports), needs: []string{"nmap"},
			cmd: `nmap -sT -p- -n -Pn 127.0.0.1 -oG -`},
		{name: "rsh portscan.js", items: nports, stdin: "$IN/scan-host.txt", check: portscanCheck(nports),
			cmd: `"$RSH" run "$REPO/examples/portscan.js" --allow-net=127.0.0.1 --params "$IN/ports.json"`},
	}
	w.after = func(wr *workloadResult) {
		sets := map[string]string{}
		for _, r := range wr.tools {
			if !r.ok() {
				continue
			}
			fps := distinct(r.fingerprints)
			if len(fps) > 1 {
				wr.extra = append(wr.extra, fmt.Sprintf("%s: the open ports changed between runs: %s", r.t.name, strings.Join(fps, " | ")))
			}
			sets[r.t.name] = fps[len(fps)-1]
			for _, p := range ls.ports {
				if !strings.Contains(","+sets[r.t.name]+",", fmt.Sprintf(",%d,", p)) {
					r.wrong = fmt.Sprintf("the harness's listener on port %d is not reported open", p)
				}
			}
			wr.extra = append(wr.extra, fmt.Sprintf("open ports found by %s: %s", r.t.name, sets[r.t.name]))
		}
		if a, b := sets["rsh"], sets["nmap"]; a != "" && b != "" {
			verdict := "the same"
			if a != b {
				verdict = "DIFFERENT"
			}
			wr.extra = append(wr.extra, "rsh and nmap found "+verdict+" open ports")
		}
	}
	return w, nil
}

// distinct is ss with runs of equal neighbours cut to one: the
// fingerprints of successive runs, each change kept.
func distinct(ss []string) []string {
	var out []string
	for _, s := range ss {
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// acceptRetry is the pause after a failed Accept that is not the end of
// the listener.
const acceptRetry = 10 * time.Millisecond

// listeners are the scan workload's open ports: each accepts connections
// and closes them at once, until close.
type listeners struct {
	ports []int
	ls    []net.Listener
	wg    sync.WaitGroup
}

func startListeners(ctx context.Context, k int) (*listeners, error) {
	l := &listeners{}
	var lc net.ListenConfig
	for range k {
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			l.close()
			return nil, fmt.Errorf("listen on 127.0.0.1: %w", err)
		}
		l.ls = append(l.ls, ln)
		l.ports = append(l.ports, ln.Addr().(*net.TCPAddr).Port)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					// A transient error (out of file descriptors):
					// pause rather than spin.
					time.Sleep(acceptRetry)
					continue
				}
				c.Close()
			}
		}()
	}
	return l, nil
}

// close stops every listener and waits for their accept loops to end.
func (l *listeners) close() {
	for _, ln := range l.ls {
		ln.Close()
	}
	l.wg.Wait()
}
