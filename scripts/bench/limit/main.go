// Command limit is the ceiling rsh is measured against: N goroutines, one
// goja runtime each, calling one compiled function on items decoded before
// the clock starts, with no I/O. Whatever rsh adds on top (reading,
// decoding, dispatch, encoding, writing) shows as the gap to this.
//
// It sets the garbage collector as rsh does (GOGC=400 unless GOGC is set;
// see gcPercent), so that the two are compared with the same GC settings:
// with Go's default of 100 here and 400 in rsh, part of any gap would be
// the setting, not the work. The settings match, the heaps do not: limit's
// live heap holds every item it decoded up front, so at the same GOGC its
// collector runs far less often than rsh's, whose heap stays small while
// it streams.
//
//	limit -script '(n) => n * n' -items 1000000 -workers 2
//	limit -script-file cpu.js -items 2000 -workers 2
//	limit -script-file json.js -input data.ndjson -workers 2
//
// It prints "N items in D: X items/s; loop CPU C µs/item", timed from
// after the set-up to the end of the loop, with the process's user and
// system time over the loop.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/dop251/goja"
)

// gcPercent is rsh's garbage-collector target (main.go's gcPercent),
// applied by the same rule: unless GOGC is set.
const gcPercent = 400

func main() {
	setGC(os.Getenv("GOGC"))
	src := flag.String("script", "", "the function's source")
	srcFile := flag.String("script-file", "", "a file holding the function's source")
	items := flag.Int("items", 0, "run on the numbers 1..N")
	input := flag.String("input", "", "run on the JSON lines of this file (decoded into each runtime before timing)")
	workers := flag.Int("workers", runtime.NumCPU(), "goroutines, one runtime each")
	flag.Parse()
	if *srcFile != "" {
		b, err := os.ReadFile(*srcFile)
		if err != nil {
			fail(err)
		}
		*src = string(b)
	}
	prog, err := goja.Compile("limit.js", *src, false)
	if err != nil {
		fail(err)
	}
	var lines []string
	if *input != "" {
		f, err := os.Open(*input)
		if err != nil {
			fail(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		f.Close()
	}
	n := *items
	if lines != nil {
		n = len(lines)
	}
	type worker struct {
		rt    *goja.Runtime
		fn    goja.Callable
		items []goja.Value
	}
	ws := make([]*worker, *workers)
	for i := range ws {
		rt := goja.New()
		v, err := rt.RunProgram(prog)
		if err != nil {
			fail(err)
		}
		if m := rt.Get("module"); m != nil {
			if e := m.ToObject(rt).Get("exports"); e != nil {
				v = e
			}
		}
		fn, ok := goja.AssertFunction(v)
		if !ok {
			fail(fmt.Errorf("the script does not produce a function"))
		}
		w := &worker{rt: rt, fn: fn}
		// Pre-decode this worker's share of the items, round robin.
		for j := i; j < n; j += *workers {
			if lines != nil {
				var x any
				if err := json.Unmarshal([]byte(lines[j]), &x); err != nil {
					fail(err)
				}
				parse, _ := goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("parse"))
				val, err := parse(goja.Undefined(), rt.ToValue(lines[j]))
				if err != nil {
					fail(err)
				}
				w.items = append(w.items, val)
			} else {
				w.items = append(w.items, rt.ToValue(j+1))
			}
		}
		ws[i] = w
	}
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, it := range w.items {
				if _, err := w.fn(goja.Undefined(), it); err != nil {
					fail(err)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	fmt.Printf("%d items in %s: %.0f items/s; loop CPU %.3f µs/item\n", n, el, float64(n)/el.Seconds(),
		float64(cpu.Nanoseconds())/1000/float64(max(n, 1)))
}

// cpuTime is the user and system time the process has used, its garbage
// collector's included: the loop's CPU time per item survives a busy
// machine where its wall time does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// setGC applies gcPercent unless gogc (the GOGC variable) is set, as
// rsh's main does, and returns the setting in force.
func setGC(gogc string) string {
	if gogc != "" {
		return gogc
	}
	debug.SetGCPercent(gcPercent)
	return fmt.Sprint(gcPercent)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "limit:", err)
	os.Exit(1)
}
