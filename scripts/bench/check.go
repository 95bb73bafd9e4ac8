package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// lines splits out into its non-empty lines.
func lines(out []byte) [][]byte {
	var ls [][]byte
	for l := range bytes.SplitSeq(out, []byte("\n")) {
		if len(l) > 0 {
			ls = append(ls, l)
		}
	}
	return ls
}

// sumCheck returns a check that out has n lines of integers adding up to
// want. With sums rather than a sorted comparison the order of the lines
// does not matter, as none of the tools keeps input order here.
func sumCheck(n int, want uint64) func([]byte) (string, error) {
	return func(out []byte) (string, error) {
		ls := lines(out)
		if len(ls) != n {
			return "", fmt.Errorf("%w: %d lines, want %d", errWrongOutput, len(ls), n)
		}
		var sum uint64
		for _, l := range ls {
			v, err := strconv.ParseUint(string(bytes.TrimSpace(l)), 10, 64)
			if err != nil {
				return "", fmt.Errorf("%w: line %q is not a number", errWrongOutput, truncate(l))
			}
			sum += v
		}
		if sum != want {
			return "", fmt.Errorf("%w: lines add up to %d, want %d", errWrongOutput, sum, want)
		}
		return "", nil
	}
}

// squaresCheck checks the squares of 1..n.
func squaresCheck(n int) func([]byte) (string, error) {
	var want uint64
	for i := uint64(1); i <= uint64(n); i++ {
		want += i * i
	}
	return sumCheck(n, want)
}

// identityCheck checks the numbers 1..n.
func identityCheck(n int) func([]byte) (string, error) {
	return sumCheck(n, uint64(n)*uint64(n+1)/2)
}

// cpuSteps and cpuModulus are cpu.js's loop: keep them in step with it.
const (
	cpuSteps   = 100000
	cpuModulus = 2147483647
)

// cpuValue is cpu.js's function, in Go.
func cpuValue(n int) uint64 {
	x := uint64(n) % cpuModulus
	if x == 0 {
		x = 1
	}
	for i := uint64(0); i < cpuSteps; i++ {
		x = (x*48271 + i) % cpuModulus
	}
	return x
}

// cpuChecks returns checks for cpu.js over 1..n for each n in ns.
func cpuChecks(ns ...int) map[int]func([]byte) (string, error) {
	top := slices.Max(ns)
	prefix := make([]uint64, top+1)
	for i := 1; i <= top; i++ {
		prefix[i] = prefix[i-1] + cpuValue(i)
	}
	checks := make(map[int]func([]byte) (string, error), len(ns))
	for _, n := range ns {
		checks[n] = sumCheck(n, prefix[n])
	}
	return checks
}

// jsonCheck checks the json workload's output: n objects, each with seen
// true and no note, whose ids are 1..n.
func jsonCheck(n int) func([]byte) (string, error) {
	return func(out []byte) (string, error) {
		ls := lines(out)
		if len(ls) != n {
			return "", fmt.Errorf("%w: %d lines, want %d", errWrongOutput, len(ls), n)
		}
		var sum uint64
		for _, l := range ls {
			var o struct {
				ID   uint64  `json:"id"`
				Seen *bool   `json:"seen"`
				Note *string `json:"note"`
				Name string  `json:"name"`
			}
			if err := json.Unmarshal(l, &o); err != nil {
				return "", fmt.Errorf("%w: line %q: %v", errWrongOutput, truncate(l), err)
			}
			if o.Seen == nil || !*o.Seen || o.Note != nil || o.Name == "" {
				return "", fmt.Errorf("%w: line %q is not transformed", errWrongOutput, truncate(l))
			}
			sum += o.ID
		}
		if want := uint64(n) * uint64(n+1) / 2; sum != want {
			return "", fmt.Errorf("%w: ids add up to %d, want %d", errWrongOutput, sum, want)
		}
		return "", nil
	}
}

// scanLinesCheck checks scan.js's output, "STATUS PORT" per port, and
// returns the open ports.
func scanLinesCheck(n int) func([]byte) (string, error) {
	return func(out []byte) (string, error) {
		ls := lines(out)
		if len(ls) != n {
			return "", fmt.Errorf("%w: %d lines, want %d", errWrongOutput, len(ls), n)
		}
		var open []int
		for _, l := range ls {
			status, port, ok := strings.Cut(string(l), " ")
			p, err := strconv.Atoi(port)
			if !ok || err != nil {
				return "", fmt.Errorf("%w: line %q", errWrongOutput, truncate(l))
			}
			if status == "open" {
				open = append(open, p)
			}
		}
		return portSet(open), nil
	}
}

// portscanCheck checks examples/portscan.js's output: one
// {host,port,status,rttMs} per port, a host summary whose open list
// agrees, and the scan's summary last, whose counts agree; it returns the
// open ports.
func portscanCheck(n int) func([]byte) (string, error) {
	return func(out []byte) (string, error) {
		var open, summarised []int
		ports := 0
		var scan *struct{ HostsScanned, TotalHosts, OpenPorts, ClosedPorts, FilteredPorts, Errors int }
		for _, l := range lines(out) {
			if scan != nil {
				return "", fmt.Errorf("%w: line %q after the scan's summary", errWrongOutput, truncate(l))
			}
			var r struct {
				Port         *int   `json:"port"`
				Status       string `json:"status"`
				Open         []int  `json:"open"`
				HostsScanned *int   `json:"HostsScanned"`
			}
			if err := json.Unmarshal(l, &r); err != nil {
				return "", fmt.Errorf("%w: line %q: %v", errWrongOutput, truncate(l), err)
			}
			switch {
			case r.HostsScanned != nil:
				scan = &struct{ HostsScanned, TotalHosts, OpenPorts, ClosedPorts, FilteredPorts, Errors int }{}
				if err := json.Unmarshal(l, scan); err != nil {
					return "", fmt.Errorf("%w: line %q: %v", errWrongOutput, truncate(l), err)
				}
				continue
			case r.Port == nil:
				summarised = append(summarised, r.Open...)
				continue
			}
			ports++
			if r.Status == "open" {
				open = append(open, *r.Port)
			}
		}
		if ports != n {
			return "", fmt.Errorf("%w: %d ports reported, want %d", errWrongOutput, ports, n)
		}
		if portSet(open) != portSet(summarised) {
			return "", fmt.Errorf("%w: open ports %s, but the summaries say %s", errWrongOutput, portSet(open), portSet(summarised))
		}
		switch {
		case scan == nil:
			return "", fmt.Errorf("%w: no scan summary", errWrongOutput)
		case scan.HostsScanned != 1 || scan.TotalHosts != 1 || scan.OpenPorts != len(open) ||
			scan.OpenPorts+scan.ClosedPorts+scan.FilteredPorts+scan.Errors != n:
			return "", fmt.Errorf("%w: the scan's summary %+v does not add up to 1 host, %d ports, %d open", errWrongOutput, *scan, n, len(open))
		}
		return portSet(open), nil
	}
}

// nmapCheck reads nmap's grepable output (-oG -) and returns the open
// ports, checking that every one of n ports is accounted for.
func nmapCheck(n int) func([]byte) (string, error) {
	return func(out []byte) (string, error) {
		for _, l := range lines(out) {
			s := string(l)
			_, ports, ok := strings.Cut(s, "\tPorts: ")
			if !ok {
				continue
			}
			counted := 0
			if rest, ignored, ok := strings.Cut(ports, "\tIgnored State: "); ok {
				ports = rest
				// "closed (65530)"
				if _, num, ok := strings.Cut(ignored, "("); ok {
					k, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(num), ")"))
					if err != nil {
						return "", fmt.Errorf("%w: nmap's ignored state %q", errWrongOutput, ignored)
					}
					counted += k
				}
			}
			var open []int
			for e := range strings.SplitSeq(ports, ", ") {
				f := strings.Split(strings.TrimSpace(e), "/")
				if len(f) < 2 {
					continue
				}
				p, err := strconv.Atoi(f[0])
				if err != nil {
					return "", fmt.Errorf("%w: nmap port entry %q", errWrongOutput, e)
				}
				counted++
				if f[1] == "open" {
					open = append(open, p)
				}
			}
			if counted != n {
				return "", fmt.Errorf("%w: nmap accounts for %d ports, want %d", errWrongOutput, counted, n)
			}
			return portSet(open), nil
		}
		return "", fmt.Errorf("%w: no Ports: line in nmap's output", errWrongOutput)
	}
}

// portSet is ports sorted, as "p1,p2,...".
func portSet(ports []int) string {
	s := slices.Clone(ports)
	slices.Sort(s)
	s = slices.Compact(s)
	parts := make([]string, len(s))
	for i, p := range s {
		parts[i] = strconv.Itoa(p)
	}
	return strings.Join(parts, ",")
}

func truncate(b []byte) string {
	const keep = 80
	if len(b) > keep {
		return string(b[:keep]) + "..."
	}
	return string(b)
}
