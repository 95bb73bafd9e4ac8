package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

func writeHeader(b *strings.Builder, c *config, m machine, floor sample) {
	inv := c.invocation
	if inv == "" {
		inv = "bench " + strings.Join(c.argv, " ")
	}
	fmt.Fprintf(b, "# rsh against its peers\n\n")
	fmt.Fprintf(b, "- command: `%s`\n", inv)
	fmt.Fprintf(b, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(b, "- machine: nproc %s; %s; %s RAM; %s\n", m.nproc, m.cpu, m.ram, m.kernel)
	fmt.Fprintf(b, "- %s; node %s\n", m.goVersion, m.nodeVersion)
	fmt.Fprintf(b, "- rsh commit: %s\n", m.commit)
	if c.rshBase != "" {
		fmt.Fprintf(b, "- rows marked (base) run the same command with rsh built from commit %s (`$RSH_BASE`), taking turns with the new one\n", c.baseCommit)
	}
	fmt.Fprintf(b, "- load average at the start (1, 5, 15 min): %s\n", loadAverage())
	fmt.Fprintf(b, "- garbage collector: %s\n", gcSetting(os.Getenv("GOGC")))
	fmt.Fprintf(b, "- peers: %s\n", strings.Join(m.peers, "; "))
	mode := "full"
	if c.quick {
		mode = "quick (smaller inputs)"
	}
	fmt.Fprintf(b, "- mode: %s; %d timed run(s) per tool after one warm-up, the tools taking turns within each round; the median is reported\n", mode, c.runs)
	fmt.Fprintf(b, "- items/s = items ÷ median wall time of the whole command (`bash -c` start to exit); CPU time = user + system time of all its processes (median run), and CPU/item that ÷ items (the figure to compare when the machine is shared); peak RSS = the largest ru_maxrss of any one of its processes over all runs, whose floor here is %s (what `true` measures: bash and the launcher); × rsh = items/s ÷ rsh's items/s\n", mib(floor.maxRSSKiB))
	fmt.Fprintf(b, "- in the commands: `$RSH` = rsh built from the commit above, `$LIMIT` = scripts/bench/limit, `$BENCH` = scripts/bench, `$PISCINA` = scripts/bench/piscina with piscina installed, `$IN`/`$OUT` = generated inputs/outputs\n\n")
}

// gcSetting says which GC setting the Go tools ran with: rsh and limit
// both apply GOGC=400 unless GOGC is set, and the harness passes its own
// environment (GOGC included) to every tool, so they always share it.
func gcSetting(gogc string) string {
	if gogc == "" {
		return "GOGC unset: rsh and limit both run at their default of GOGC=400"
	}
	return "GOGC=" + gogc + " for every tool (rsh and limit follow it)"
}

func writeWorkload(b *strings.Builder, wr *workloadResult) {
	fmt.Fprintf(b, "## %s\n\n", wr.w.title)
	for _, n := range wr.w.notes {
		fmt.Fprintf(b, "- %s\n", n)
	}
	b.WriteString("\n")
	if wr.startup != nil {
		writeStartup(b, wr.startup)
		writeExtra(b, wr)
		return
	}
	ref := wr.tools[0].rate()
	b.WriteString("| tool | items | median wall | min … max | items/s | CPU time | CPU/item | peak RSS | × rsh | notes |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, r := range wr.tools {
		name := r.t.name
		if r.t.selfTimed {
			name += " (process)"
		}
		if !r.ok() {
			why := r.skipped
			switch {
			case r.failed != "":
				why = "FAILED: " + r.failed
			case r.wrong != "":
				why = "WRONG OUTPUT: " + r.wrong
			case why != "":
				why = "skipped: " + why
			}
			fmt.Fprintf(b, "| %s | %s | — | — | — | — | — | — | — | %s |\n", name, commas(float64(r.t.items)), cell(why))
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s … %s | %s | %s | %s | %s | %s | %s |\n", name, commas(float64(r.t.items)),
			dur(median(r.walls)), dur(minDur(r.walls)), dur(maxDur(r.walls)), commas(r.rate()),
			dur(median(r.cpus)), perItem(r.cpuPerItem()), mib(r.maxRSSKiB), ratio(r.rate(), ref), cell(r.t.note))
		if r.t.selfTimed && len(r.selfWalls) > 0 {
			fmt.Fprintf(b, "| %s (timed loop only) | %s | %s | %s … %s | %s | — | — | — | %s | its own clock: items decoded, runtimes made |\n", r.t.name, commas(float64(r.t.items)),
				dur(median(r.selfWalls)), dur(minDur(r.selfWalls)), dur(maxDur(r.selfWalls)), commas(r.selfRate()), ratio(r.selfRate(), ref))
		}
	}
	b.WriteString("\n")
	writeExtra(b, wr)
	b.WriteString("<details><summary>commands</summary>\n\n```sh\n")
	for _, r := range wr.tools {
		fmt.Fprintf(b, "# %s\n%s\n", r.t.name, r.t.script(false, "$OUT/"+wr.w.name+".out"))
	}
	b.WriteString("```\n\n</details>\n\n")
}

// writeExtra writes the lines a workload adds under its table.
func writeExtra(b *strings.Builder, wr *workloadResult) {
	for _, l := range wr.extra {
		fmt.Fprintf(b, "- %s\n", l)
	}
	if len(wr.extra) > 0 {
		b.WriteString("\n")
	}
}

func writeStartup(b *strings.Builder, sr *startupResult) {
	var ref time.Duration
	for _, r := range sr.rows {
		if r.name == "rsh" {
			ref = r.mean
		}
	}
	b.WriteString("| command | runs | mean | median | min … max | σ | × rsh's mean |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range sr.rows {
		if r.failed != "" {
			fmt.Fprintf(b, "| `%s` | — | FAILED: %s | | | | |\n", r.cmd, cell(r.failed))
			continue
		}
		rel := "—"
		if ref > 0 {
			rel = fmt.Sprintf("%.2f", float64(r.mean)/float64(ref))
		}
		fmt.Fprintf(b, "| `%s` | %d | %s | %s | %s … %s | %s | %s |\n", r.cmd, r.runs, ms(r.mean), ms(r.median), ms(r.min), ms(r.max), ms(r.std), rel)
	}
	fmt.Fprintf(b, "\n- timed with %s\n", sr.how)
}

// target is one of the project's goals, checked against one run.
type target struct {
	workload, goal, measured string
	met, known               bool
}

// targets checks the goals that the results at hand can speak to.
func targets(all []*workloadResult) []target {
	var ts []target
	for _, wr := range all {
		name := wr.w.name
		add := func(goal string, known, met bool, measured string) {
			if !known {
				measured = "not measured: " + measured
			}
			ts = append(ts, target{workload: name, goal: goal, measured: measured, met: met, known: known})
		}
		if goal, ok := baseGoals()[name]; ok {
			if rsh, base := wr.tool("rsh"), wr.tool("rsh"+baseSuffix); rsh != nil && base != nil {
				ok := rsh.ok() && base.ok()
				add(fmt.Sprintf("≥ %.1f× the base commit's items/s", goal), ok, ok && rsh.rate() >= goal*base.rate(),
					fmt.Sprintf("%.2f× (%s vs %s items/s); CPU per item %s vs %s", safeDiv(rsh.rate(), base.rate()),
						commas(rsh.rate()), commas(base.rate()), perItem(rsh.cpuPerItem()), perItem(base.cpuPerItem())))
			}
		}
		switch name {
		case "trivial":
			rsh, lim, pis := wr.tool("rsh"), wr.tool("limit"), wr.tool("piscina")
			ok := rsh.rate() > 0 && lim.selfRate() > 0
			add("rsh ≥ 60% of limit's items/s (same GC settings)", ok, ok && rsh.rate() >= 0.6*lim.selfRate(),
				fmt.Sprintf("rsh %s items/s = %.0f%% of limit's timed loop (%s items/s); %.0f%% of limit's whole process (%s items/s)",
					commas(rsh.rate()), pct(rsh.rate(), lim.selfRate()), commas(lim.selfRate()), pct(rsh.rate(), lim.rate()), commas(lim.rate())))
			ok = rsh.rate() > 0 && pis != nil && pis.rate() > 0
			add("rsh ≥ 50× piscina's items/s", ok, ok && rsh.rate() >= 50*pis.rate(),
				fmt.Sprintf("%.1f× (piscina %s items/s)", safeDiv(rsh.rate(), pis.rate()), commas(pis.rate())))
		case "cpu":
			rsh, lim := wr.tool("rsh"), wr.tool("limit")
			ok := rsh.rate() > 0 && lim.selfRate() > 0
			add("rsh within 10% of limit", ok, ok && rsh.rate() >= 0.9*lim.selfRate(),
				fmt.Sprintf("rsh %s items/s = %.0f%% of limit's timed loop (%s items/s); %.0f%% of limit's whole process (%s items/s)",
					commas(rsh.rate()), pct(rsh.rate(), lim.selfRate()), commas(lim.selfRate()), pct(rsh.rate(), lim.rate()), commas(lim.rate())))
			if wr.tool("rsh -t 1") != nil {
				eff, ok := efficiency(wr, "rsh", "rsh -t 1", wr.threads)
				add("rsh's scaling efficiency ≥ 0.9", ok, ok && eff >= 0.9, fmt.Sprintf("%.2f on %d workers", eff, wr.threads))
			} else {
				add("rsh's scaling efficiency ≥ 0.9", false, false, "nproc is 1")
			}
		case "io":
			rsh := wr.tool("rsh")
			ideal := idealIO(rsh.t.items)
			wall := median(rsh.walls).Seconds()
			add(fmt.Sprintf("wall ≤ %.2f s (1.15 × ideal %.2f s)", 1.15*ideal, ideal), rsh.ok(), rsh.ok() && wall <= 1.15*ideal, fmt.Sprintf("%.3f s", wall))
			rss := float64(rsh.maxRSSKiB) / 1024
			add("peak RSS ≤ 300 MiB", rsh.ok(), rsh.ok() && rss <= 300, fmt.Sprintf("%.1f MiB", rss))
		case "json":
			rsh := wr.tool("rsh")
			add("≥ 300,000 items/s", rsh.ok(), rsh.rate() >= 300000, commas(rsh.rate())+" items/s")
		case "scan":
			rsh, nm := wr.tool("rsh"), wr.tool("nmap")
			ok := rsh.ok() && nm.ok()
			same := ok && distinct(rsh.fingerprints)[0] == distinct(nm.fingerprints)[0] && len(distinct(rsh.fingerprints)) == 1 && len(distinct(nm.fingerprints)) == 1
			measured := "rsh or nmap did not finish correctly"
			if ok {
				measured = "rsh " + strings.Join(distinct(rsh.fingerprints), " | ") + "; nmap " + strings.Join(distinct(nm.fingerprints), " | ")
			}
			add("same open ports as nmap", ok, same, measured)
			add("wall ≤ nmap's", ok, ok && median(rsh.walls) <= median(nm.walls),
				fmt.Sprintf("rsh %s, nmap %s", dur(median(rsh.walls)), dur(median(nm.walls))))
		case "startup":
			var rsh, node *startupRow
			for i := range wr.startup.rows {
				switch r := &wr.startup.rows[i]; r.name {
				case "rsh":
					rsh = r
				case "node":
					node = r
				}
			}
			ok := rsh != nil && rsh.failed == ""
			add("≤ 20 ms", ok, ok && rsh.mean <= 20*time.Millisecond, "mean "+msIf(rsh))
			ok = ok && node != nil && node.failed == ""
			add("below node's", ok, ok && rsh.mean < node.mean, "rsh "+msIf(rsh)+", node "+msIf(node))
		}
	}
	return ts
}

func writeTargets(b *strings.Builder, all []*workloadResult) {
	ts := targets(all)
	if len(ts) == 0 {
		return
	}
	b.WriteString("## Targets (from this run)\n\n| workload | target | measured | |\n|---|---|---|---|\n")
	for _, t := range ts {
		verdict := "missed"
		switch {
		case !t.known:
			verdict = "not measured"
		case t.met:
			verdict = "met"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", t.workload, t.goal, cell(t.measured), verdict)
	}
	b.WriteString("\n")
}

func msIf(r *startupRow) string {
	if r == nil || r.failed != "" {
		return "—"
	}
	return ms(r.mean)
}

func pct(a, b float64) float64 { return 100 * safeDiv(a, b) }

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// commas formats v rounded to an integer with thousands separators.
func commas(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func dur(d time.Duration) string {
	if d < time.Second {
		return ms(d)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func mib(kib int64) string {
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

// ratio is v/ref, as "0.42" or, when small, "1/2,400".
func ratio(v, ref float64) string {
	if ref == 0 || v == 0 {
		return "—"
	}
	r := v / ref
	if r >= 0.1 {
		return fmt.Sprintf("%.2f", r)
	}
	return "1/" + commas(1/r)
}

func minDur(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func maxDur(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// cell makes s safe in a markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

// baseGoals are the speed-ups over an older commit that the project set
// for some workloads, checked when -rsh-base is given.
func baseGoals() map[string]float64 {
	return map[string]float64{"json": 1.3}
}

// perItem shows a CPU time per item in the unit that suits it.
func perItem(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Millisecond:
		return fmt.Sprintf("%.2f µs", float64(d)/float64(time.Microsecond))
	default:
		return dur(d)
	}
}

// loadAverage is /proc/loadavg's first three fields, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], ", ")
	}
	return "unknown"
}
