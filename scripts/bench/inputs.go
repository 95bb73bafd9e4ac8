package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// numbers writes the lines 1..n to $IN/numbers-n.txt once and returns the
// path as the commands spell it.
func (e *env) numbers(n int) (string, error) {
	name := fmt.Sprintf("numbers-%d.txt", n)
	return "$IN/" + name, e.writeInput(name, func(w *bufio.Writer) error {
		for i := 1; i <= n; i++ {
			w.WriteString(strconv.Itoa(i))
			w.WriteByte('\n')
		}
		return nil
	})
}

// writeInput creates $IN/name with fill unless it exists.
func (e *env) writeInput(name string, fill func(*bufio.Writer) error) error {
	path := filepath.Join(e.inDir, name)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create input: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	err = fill(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write input %s: %w", name, err)
	}
	return nil
}

// address and object are the records of the json workload.
type address struct {
	Street string `json:"street"`
	City   string `json:"city"`
	Zip    string `json:"zip"`
}

type object struct {
	ID      int      `json:"id"`
	Name    string   `json:"name"`
	Email   string   `json:"email"`
	Active  bool     `json:"active"`
	Score   float64  `json:"score"`
	Tags    []string `json:"tags"`
	Address address  `json:"address"`
	Note    string   `json:"note"`
}

// makeObject is record i of the json workload: deterministic, about 200
// bytes of JSON, with strings, numbers, a boolean, an array and a nested
// object.
func makeObject(i int) object {
	first := [...]string{"ada", "brian", "carol", "dennis", "edsger", "frances", "grace", "ken"}
	cities := [...]string{"Springfield", "Riverton", "Lakeside", "Fairview", "Greenville"}
	tags := [...]string{"alpha", "beta", "gamma", "delta", "omega"}
	name := fmt.Sprintf("%s-%06d", first[i%len(first)], i)
	return object{
		ID:     i,
		Name:   name,
		Email:  name + "@example.com",
		Active: i%3 != 0,
		Score:  float64((i*7919)%10000) / 100,
		Tags:   []string{tags[i%len(tags)], tags[(i/5)%len(tags)]},
		Address: address{
			Street: fmt.Sprintf("%d Main St", i%997+1),
			City:   cities[i%len(cities)],
			Zip:    fmt.Sprintf("%05d", (i*31)%100000),
		},
		Note: "note " + strconv.Itoa(i) + ": seen twice",
	}
}

// objects writes n records to $IN/objects-n.ndjson once and returns the
// path as the commands spell it and the mean line length.
func (e *env) objects(n int) (string, float64, error) {
	name := fmt.Sprintf("objects-%d.ndjson", n)
	total := 0
	err := e.writeInput(name, func(w *bufio.Writer) error {
		for i := 1; i <= n; i++ {
			b, err := json.Marshal(makeObject(i))
			if err != nil {
				return err
			}
			total += len(b) + 1
			w.Write(b)
			w.WriteByte('\n')
		}
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	if total == 0 { // written by an earlier call
		st, err := os.Stat(filepath.Join(e.inDir, name))
		if err != nil {
			return "", 0, fmt.Errorf("stat input: %w", err)
		}
		total = int(st.Size())
	}
	return "$IN/" + name, float64(total) / float64(n), nil
}

// scanTargets writes "127.0.0.1:PORT" for every port to $IN/scan-targets.txt,
// and, for examples/portscan.js, the host to $IN/scan-host.txt and the
// ports as a params file, $IN/ports.json ({"ports": [...]}),
// (--params): one command-line argument of all
// 65535 ports would be over Linux's 128 KiB limit (MAX_ARG_STRLEN).
func (e *env) scanTargets(ports []int) (string, error) {
	err := e.writeInput("scan-targets.txt", func(w *bufio.Writer) error {
		for _, p := range ports {
			fmt.Fprintf(w, "127.0.0.1:%d\n", p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	err = e.writeInput("scan-host.txt", func(w *bufio.Writer) error {
		_, err := w.WriteString("127.0.0.1\n")
		return err
	})
	if err != nil {
		return "", err
	}
	err = e.writeInput("ports.json", func(w *bufio.Writer) error {
		_, err := w.WriteString(`{"ports": [` + strings.Join(s, ",") + "]}")
		return err
	})
	if err != nil {
		return "", err
	}
	return "$IN/scan-targets.txt", nil
}
