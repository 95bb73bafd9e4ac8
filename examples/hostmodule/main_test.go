package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/runspaces/rsh/worker"
)

func TestMain(m *testing.M) {
	mods, fns := host()
	worker.Main(worker.WithHost(mods, fns)) // the worker processes are this test binary
	os.Exit(m.Run())
}

// The pricing script calls the host module and function from worker
// processes; a bad order is that order's error; a runaway script is cut
// by the timeout and a memory bomb by the memory limit, and the service
// goes on with the next order.
func TestHostModuleService(t *testing.T) {
	src, err := os.ReadFile("price.js")
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Join([]string{
		`{"user":1,"item":"apple","qty":3}`,
		`{"user":2,"item":"pear","qty":2}`,
		`{"user":1,"item":"kiwi","qty":1}`,
		`{"user":9,"item":"plum","qty":1}`,
	}, "\n")
	var out bytes.Buffer
	if err := run(context.Background(), "price.js", string(src), strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	want := "1: 1.35\n2: 1.5\n3: Exception: NotFound: no item \"kiwi\" in the catalogue\n4: Exception: Error: no user 9\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}

	// The bomb takes 64 MiB a step, so that it passes the memory limit
	// long before the timeout however busy the machine is.
	hostile := `(o) => {
		if (o.bomb) { const a = []; for (;;) a.push(new ArrayBuffer(64 << 20)) }
		if (o.spin) { for (;;) {} }
		return require("catalogue").price("plum")
	}`
	out.Reset()
	in = `{"spin":true}` + "\n" + `{"bomb":true}` + "\n" + `{}`
	if err := run(context.Background(), "hostile.js", hostile, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "1: Timeout") || !strings.HasPrefix(lines[1], "2: MemoryLimit") || lines[2] != "3: 0.3" {
		t.Errorf("hostile script: %q", lines)
	}
}
