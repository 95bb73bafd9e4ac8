package jobs_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runspaces/rsh/jobs"
)

// serve serves m's API on a Unix socket for the test, and returns a client
// of it with token.
func serve(t *testing.T, m *jobs.Manager, token string) *jobs.Client {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: jobs.Handler(m, token, 0)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	c := jobs.UnixClient(socket)
	c.Token = token
	t.Cleanup(func() {
		c.HTTP.CloseIdleConnections()
		srv.Close()
		<-done
	})
	return c
}

// With a token set, a request without it or with another is refused (401),
// the right one served.
func TestHTTPToken(t *testing.T) {
	m := newManager(t, jobs.Options{})
	c := serve(t, m, "s3cret")
	ctx := context.Background()
	for _, token := range []string{"", "wrong", "s3cre"} {
		other := *c
		other.Token = token
		_, err := other.List(ctx, "")
		var api *jobs.APIError
		if !errors.As(err, &api) || api.Status != http.StatusUnauthorized {
			t.Errorf("token %q: %v, want a 401", token, err)
		}
	}
	if _, err := c.List(ctx, ""); err != nil {
		t.Fatalf("the right token: %v", err)
	}
}

// The Manager's errors survive the client: errors.Is works on them as on
// the Manager's own.
func TestHTTPErrors(t *testing.T) {
	m := newManager(t, jobs.Options{})
	c := serve(t, m, "")
	ctx := context.Background()
	if _, err := c.Get(ctx, "nope"); !errors.Is(err, jobs.ErrNotFound) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("get unknown: %v, want ErrNotFound", err)
	}
	name, _, err := c.Start(ctx, jobs.Spec{Name: "x", Script: `(n) => n`, Items: numbers(2)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Start(ctx, jobs.Spec{Name: "x", Script: `(n) => n`}); !errors.Is(err, jobs.ErrNameTaken) {
		t.Errorf("duplicate name: %v, want ErrNameTaken", err)
	}
	if _, _, err := c.Start(ctx, jobs.Spec{Script: " "}); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("empty script: %v, want ErrInvalid", err)
	}
	if err := c.Input(ctx, name, strings.NewReader("v1\n")); !errors.Is(err, jobs.ErrInputClosed) {
		t.Errorf("input to a job with its items: %v, want ErrInputClosed", err)
	}
	if _, _, err := c.Wait(ctx, name, deadline); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ack(ctx, name, 5, 10); !errors.Is(err, jobs.ErrConflict) {
		t.Errorf("ack away from the cursor: %v, want ErrConflict", err)
	}
	if _, err := c.Ack(ctx, name, 0, 1<<40); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("ack past the results: %v, want ErrInvalid", err)
	}
	if _, err := c.List(ctx, "Sleeping"); !errors.Is(err, jobs.ErrInvalid) {
		t.Errorf("list of an unknown state: %v, want ErrInvalid", err)
	}
}

// A spec larger than the limit is refused with 413, and the daemon goes
// on serving.
func TestHTTPSpecTooLarge(t *testing.T) {
	m := newManager(t, jobs.Options{})
	c := serve(t, m, "")
	ctx := context.Background()
	huge := "(n) => n // " + strings.Repeat("x", 17<<20)
	_, _, err := c.Start(ctx, jobs.Spec{Name: "huge", Script: huge})
	var api *jobs.APIError
	if !errors.As(err, &api) || api.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 17 MiB spec: %v, want a 413", err)
	}
	if _, err := c.Get(ctx, "huge"); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("the refused job: %v", err)
	}
	if _, _, err := c.Start(ctx, jobs.Spec{Name: "small", Script: `(n) => n`}); err != nil {
		t.Fatalf("a job after the refused one: %v", err)
	}
}

// Over a Unix socket: input streamed, results followed as they arrive,
// acknowledged and not handed out again, the log, stop and remove.
func TestHTTPRoundTrip(t *testing.T) {
	m := newManager(t, jobs.Options{})
	c := serve(t, m, "tok")
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	name, _, err := c.Start(ctx, jobs.Spec{Name: "rt", Script: `console.log("ready"); (n) => n + 1`, Input: true})
	if err != nil || name != "rt" {
		t.Fatalf("start: %q %v", name, err)
	}
	s, err := c.Results(ctx, name, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.From != 0 {
		t.Errorf("results from %d, want 0", s.From)
	}
	pr, pw := io.Pipe()
	inputDone := make(chan error, 1)
	go func() { inputDone <- c.Input(ctx, name, pr) }()
	const n = 5
	writePieces(t, pw, inputLines(1, 2), 3)
	// The first result arrives while the input is still open.
	rd := bufio.NewReader(s)
	first, err := rd.ReadBytes('\n')
	if err != nil {
		t.Fatalf("the first followed result: %v", err)
	}
	if info, _ := c.Get(ctx, name); !info.InputOpen || info.State != jobs.Running {
		t.Errorf("after the first result: %+v, want Running with its input open", info)
	}
	writePieces(t, pw, inputLines(3, n), 3)
	pw.Close()
	if err := <-inputDone; err != nil {
		t.Fatalf("input: %v", err)
	}
	rest, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("the followed results: %v", err)
	}
	all := append(first, rest...)
	rs := parseRecords(t, all)
	checkOnce(t, rs, n)
	if got := string(rs[n-1].Output[0]); got != "6" {
		t.Errorf("last output %s, want 6", got)
	}
	info, err := c.Ack(ctx, name, s.From, s.From+int64(len(all)))
	if err != nil || info.Received != n || info.State != jobs.Completed {
		t.Fatalf("ack: %+v %v", info, err)
	}
	again, err := c.Results(ctx, name, false)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(again)
	again.Close()
	if err != nil || len(data) != 0 || again.From != int64(len(all)) {
		t.Errorf("results after the ack: %d bytes from %d, %v", len(data), again.From, err)
	}

	lg, err := c.Log(ctx, name, true)
	if err != nil {
		t.Fatal(err)
	}
	logData, err := io.ReadAll(lg)
	lg.Close()
	if err != nil || !bytes.Contains(logData, []byte("ready")) {
		t.Errorf("log: %q %v", logData, err)
	}

	spin, _, err := c.Start(ctx, jobs.Spec{Name: "spin", Script: `() => { while (true) {} }`})
	if err != nil {
		t.Fatal(err)
	}
	waitInfo(t, m, spin, "running", func(i jobs.Info) bool { return i.State == jobs.Running })
	if info, err := c.Stop(ctx, spin); err != nil || info.State != jobs.Stopped {
		t.Fatalf("stop: %+v %v", info, err)
	}
	if list, err := c.List(ctx, jobs.Stopped); err != nil || len(list) != 1 || list[0].Name != spin {
		t.Errorf("list of the stopped: %+v %v", list, err)
	}
	for _, j := range []string{name, spin} {
		if err := c.Remove(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if list, err := c.List(ctx, ""); err != nil || len(list) != 0 {
		t.Errorf("list after remove: %+v %v", list, err)
	}
}

// GET /metrics gives the jobs' counts as Prometheus text, behind the
// token like every other request.
func TestHTTPMetrics(t *testing.T) {
	m := newManager(t, jobs.Options{})
	c := serve(t, m, "tok")
	name := start(t, m, jobs.Spec{Name: "m1", Script: `(n) => { if (n == 2) throw new Error("two"); return n }`, Items: numbers(3)})
	waitJob(t, m, name)
	get := func(token string) (int, string) {
		req, err := http.NewRequest("GET", c.Base+jobs.MetricsPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	code, body := get("tok")
	if code != http.StatusOK {
		t.Fatalf("%d: %s", code, body)
	}
	for _, want := range []string{
		"# TYPE rsh_jobs gauge\n",
		`rsh_jobs{state="CompletedWithErrors"} 1` + "\n",
		`rsh_jobs{state="Running"} 0` + "\n",
		`rsh_job_items_done{job="m1",state="CompletedWithErrors"} 3` + "\n",
		`rsh_job_items_failed{job="m1",state="CompletedWithErrors"} 1` + "\n",
		`rsh_job_items_running{job="m1",state="CompletedWithErrors"} 0` + "\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// Label values are escaped as the text format wants.
func TestWriteMetricsEscapes(t *testing.T) {
	var b strings.Builder
	if err := jobs.WriteMetrics(&b, []jobs.Info{{Name: "a\"b\\c\nd", State: jobs.Failed, Done: 2}}); err != nil {
		t.Fatal(err)
	}
	if want := `rsh_job_items_done{job="a\"b\\c\nd",state="Failed"} 2`; !strings.Contains(b.String(), want) {
		t.Errorf("got:\n%s\nwant a line %s", b.String(), want)
	}
}
