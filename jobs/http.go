package jobs

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// The HTTP API that `rsh serve` exposes and Client speaks:
//
//	POST   /v1/jobs                        Spec → 201 {"name": ..., "notes": [...]}
//	PUT    /v1/jobs/{name}/input           input lines, streamed → {"bytes": N}
//	GET    /v1/jobs?state=S                → [Info]
//	GET    /v1/jobs/{name}                 → Info
//	POST   /v1/jobs/{name}/wait?timeout=D  → {"info": Info, "timedOut": bool}
//	GET    /v1/jobs/{name}/results?follow=1
//	                                       → records (NDJSON) from the receive
//	                                         cursor, which the Rsh-From header
//	                                         gives; streamed
//	POST   /v1/jobs/{name}/received        {"from": F, "to": T} → Info
//	GET    /v1/jobs/{name}/log?follow=1    → the job's messages; streamed
//	POST   /v1/jobs/{name}/stop            → Info
//	DELETE /v1/jobs/{name}                 → 204
//
// Errors are {"error": "...", "code": "..."}: the code names the error
// (not_found, name_taken, invalid, conflict, input_closed, closed) and
// picks the status (404, 409, 400, 409, 409, 503); 401 is a wrong token,
// 413 a request too large. A streamed reply that ends early says why in
// its Rsh-Error trailer.

// maxRequestBytes bounds every request body but an input stream: a spec
// (script, parameters, variables) or an acknowledgement. Items travel
// in the input stream, so 16 MiB is room for any script and its data.
const maxRequestBytes = 16 << 20

// errorCodes maps the Manager's errors to the API's codes and statuses.
var errorCodes = []struct {
	err    error
	code   string
	status int
}{
	{ErrNotFound, "not_found", http.StatusNotFound},
	{ErrNameTaken, "name_taken", http.StatusConflict},
	{ErrInvalid, "invalid", http.StatusBadRequest},
	{ErrConflict, "conflict", http.StatusConflict},
	{ErrInputClosed, "input_closed", http.StatusConflict},
	{ErrClosed, "closed", http.StatusServiceUnavailable},
}

// Handler returns the HTTP API for m. With a non-empty token, every
// request must carry "Authorization: Bearer TOKEN". idle, when positive,
// fails an input upload that sends nothing for that long.
func Handler(m *Manager, token string, idle time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		var spec Spec
		body := http.MaxBytesReader(w, r.Body, maxRequestBytes)
		if err := json.NewDecoder(body).Decode(&spec); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, fmt.Errorf("the job is larger than %d MiB: send its items as input, not in the spec", maxRequestBytes>>20), http.StatusRequestEntityTooLarge)
				return
			}
			writeError(w, invalidf("%v", err), 0)
			return
		}
		name, notes, err := m.Start(r.Context(), spec)
		if err != nil {
			writeError(w, err, 0)
			return
		}
		writeJSON(w, http.StatusCreated, startReply{Name: name, Notes: notes})
	})
	mux.HandleFunc("PUT /v1/jobs/{name}/input", func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if idle > 0 {
			body = IdleBody(http.NewResponseController(w), r.Body, idle)
		}
		n, err := m.Input(r.Context(), r.PathValue("name"), body)
		if err != nil {
			writeError(w, err, 0)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int64{"bytes": n})
	})
	mux.HandleFunc("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		list := m.List()
		if s := r.URL.Query().Get("state"); s != "" {
			st, err := ParseState(s)
			if err != nil {
				writeError(w, invalidf("%v", err), 0)
				return
			}
			kept := list[:0]
			for _, i := range list {
				if i.State == st {
					kept = append(kept, i)
				}
			}
			list = kept
		}
		writeJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("GET "+MetricsPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = WriteMetrics(w, m.List())
	})
	mux.HandleFunc("GET /v1/jobs/{name}", func(w http.ResponseWriter, r *http.Request) {
		info, err := m.Get(r.PathValue("name"))
		if err != nil {
			writeError(w, err, 0)
			return
		}
		writeJSON(w, http.StatusOK, info)
	})
	mux.HandleFunc("POST /v1/jobs/{name}/wait", func(w http.ResponseWriter, r *http.Request) {
		var timeout time.Duration
		if t := r.URL.Query().Get("timeout"); t != "" {
			d, err := time.ParseDuration(t)
			if err != nil || d < 0 {
				writeError(w, invalidf("timeout %q: want a duration like 30s", t), 0)
				return
			}
			timeout = d
		}
		info, err := m.Wait(r.Context(), r.PathValue("name"), timeout)
		if err != nil && !errors.Is(err, ErrTimeout) {
			writeError(w, err, 0)
			return
		}
		writeJSON(w, http.StatusOK, waitReply{Info: info, TimedOut: errors.Is(err, ErrTimeout)})
	})
	mux.HandleFunc("GET /v1/jobs/{name}/results", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		info, err := m.Get(name)
		if err != nil {
			writeError(w, err, 0)
			return
		}
		follow, _ := strconv.ParseBool(r.URL.Query().Get("follow"))
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Rsh-From", strconv.FormatInt(info.ReceivedBytes, 10))
		w.Header().Set("Trailer", "Rsh-Error")
		w.WriteHeader(http.StatusOK)
		flusher{w}.Flush() // the client has its reply before the first result
		_, err = m.Results(r.Context(), name, info.ReceivedBytes, follow, flusher{w})
		if err != nil {
			w.Header().Set("Rsh-Error", err.Error())
		}
	})
	mux.HandleFunc("POST /v1/jobs/{name}/received", func(w http.ResponseWriter, r *http.Request) {
		var ack struct{ From, To int64 }
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(&ack); err != nil {
			writeError(w, invalidf("%v", err), 0)
			return
		}
		info, err := m.Ack(r.PathValue("name"), ack.From, ack.To)
		if err != nil {
			writeError(w, err, 0)
			return
		}
		writeJSON(w, http.StatusOK, info)
	})
	mux.HandleFunc("GET /v1/jobs/{name}/log", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if _, err := m.Get(name); err != nil {
			writeError(w, err, 0)
			return
		}
		follow, _ := strconv.ParseBool(r.URL.Query().Get("follow"))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Trailer", "Rsh-Error")
		w.WriteHeader(http.StatusOK)
		flusher{w}.Flush() // the client has its reply before the first line
		if err := m.Log(r.Context(), name, follow, flusher{w}); err != nil {
			w.Header().Set("Rsh-Error", err.Error())
		}
	})
	mux.HandleFunc("POST /v1/jobs/{name}/stop", func(w http.ResponseWriter, r *http.Request) {
		info, err := m.Stop(r.Context(), r.PathValue("name"))
		if err != nil {
			writeError(w, err, 0)
			return
		}
		writeJSON(w, http.StatusOK, info)
	})
	mux.HandleFunc("DELETE /v1/jobs/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Remove(r.Context(), r.PathValue("name")); err != nil {
			writeError(w, err, 0)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	var h http.Handler = mux
	if token != "" {
		want := []byte("Bearer " + token)
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got := []byte(r.Header.Get("Authorization"))
			if subtle.ConstantTimeCompare(got, want) != 1 {
				writeError(w, errors.New("missing or wrong token"), http.StatusUnauthorized)
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
	return recoverer(h)
}

// recoverer turns a panic in a handler into a 500 reply: no request can
// take the daemon down (net/http would only log it and drop the
// connection, but a panic while a lock is held would leave it held; the
// Manager takes its locks with defer where it can panic).
func recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				writeError(w, fmt.Errorf("internal error: %v", v), http.StatusInternalServerError)
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// flusher flushes every write of a streamed reply.
type flusher struct{ w http.ResponseWriter }

func (f flusher) Write(p []byte) (int, error) { return f.w.Write(p) }
func (f flusher) Flush()                      { _ = http.NewResponseController(f.w).Flush() }

// IdleBody returns a reader of r, a request's body, that fails when
// nothing arrives for idle: before each Read it moves the connection's
// read deadline (through rc, the handler's ResponseController) to idle
// from now. An upload that keeps flowing, however slowly and for however
// long, never fails; one that stalls fails with an error that wraps
// os.ErrDeadlineExceeded (a timeout), and the connection is then closed.
//
// The deadline is cleared whenever r returns EOF or an error. After the
// body's end net/http reads the connection in the background, to notice a
// client that goes away, and cancels the request's context if that read
// fails: a deadline left set (by a Read after the end, as a decoder
// checking for trailing data makes) would end the context of a handler
// that works on after its upload. A handler that stops reading before the
// end should clear the deadline itself, rc.SetReadDeadline(time.Time{}).
// Where rc cannot set deadlines (an httptest.ResponseRecorder), the body
// is read without a limit.
func IdleBody(rc *http.ResponseController, r io.Reader, idle time.Duration) io.Reader {
	return &idleReader{rc: rc, r: r, idle: idle}
}

// idleReader is the reader of IdleBody.
type idleReader struct {
	rc          *http.ResponseController
	r           io.Reader
	idle        time.Duration
	unsupported bool
}

func (ir *idleReader) Read(p []byte) (int, error) {
	if !ir.unsupported {
		if err := ir.rc.SetReadDeadline(time.Now().Add(ir.idle)); errors.Is(err, http.ErrNotSupported) {
			ir.unsupported = true
		} else if err != nil {
			return 0, fmt.Errorf("setting the upload's idle limit: %w", err)
		}
	}
	n, err := ir.r.Read(p)
	if err != nil && !ir.unsupported {
		_ = ir.rc.SetReadDeadline(time.Time{})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("upload stalled: nothing received for %v: %w", ir.idle, err)
		}
	}
	return n, err
}

type startReply struct {
	Name  string   `json:"name"`
	Notes []string `json:"notes,omitempty"`
}

type waitReply struct {
	Info     Info `json:"info"`
	TimedOut bool `json:"timedOut"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError replies with err; status 0 takes it from the error's
// identity.
func writeError(w http.ResponseWriter, err error, status int) {
	code := ""
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			code = c.code
			if status == 0 {
				status = c.status
			}
			break
		}
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, apiErrorBody{Error: err.Error(), Code: code})
}

type apiErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

// Client speaks the HTTP API of a daemon.
type Client struct {
	// Base is the URL prefix, e.g. "http://127.0.0.1:7070" or, over a
	// Unix socket, "http://unix".
	Base  string
	Token string
	HTTP  *http.Client
	// Where names the daemon in error messages (a socket path or address).
	Where string
}

// UnixClient returns a Client for a daemon listening on a Unix socket.
func UnixClient(socket string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &Client{Base: "http://unix", HTTP: &http.Client{Transport: tr}, Where: socket}
}

// ErrNoDaemon is returned when nothing answers at the client's address.
var ErrNoDaemon = errors.New("no daemon is running there")

// APIError is an error reply from the daemon. It matches (errors.Is) the
// Manager's error it stands for, such as ErrNotFound.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Unwrap returns the Manager's error that e stands for, if any.
func (e *APIError) Unwrap() error {
	for _, c := range errorCodes {
		if c.code == e.Code {
			return c.err
		}
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, dialError(c.Where, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e apiErrorBody
		_ = json.NewDecoder(io.LimitReader(resp.Body, maxRequestBytes)).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return nil, &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Error}
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	ct := ""
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd, ct = bytes.NewReader(data), "application/json"
	}
	resp, err := c.send(ctx, method, path, rd, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func jobPath(name string) string { return "/v1/jobs/" + url.PathEscape(name) }

// Start submits a job and returns its name, and notes on what the job
// will not get.
func (c *Client) Start(ctx context.Context, spec Spec) (string, []string, error) {
	var reply startReply
	err := c.do(ctx, http.MethodPost, "/v1/jobs", spec, &reply)
	return reply.Name, reply.Notes, err
}

// Input streams r (input lines, see AppendItemLine) to the job, started
// with Spec.Input, until r ends.
func (c *Client) Input(ctx context.Context, name string, r io.Reader) error {
	resp, err := c.send(ctx, http.MethodPut, jobPath(name)+"/input", r, "application/octet-stream")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// List returns the jobs, every one or those in state (non-empty).
func (c *Client) List(ctx context.Context, state State) ([]Info, error) {
	var out []Info
	q := ""
	if state != "" {
		q = "?state=" + url.QueryEscape(string(state))
	}
	return out, c.do(ctx, http.MethodGet, "/v1/jobs"+q, nil, &out)
}

// Get returns one job.
func (c *Client) Get(ctx context.Context, name string) (Info, error) {
	var out Info
	return out, c.do(ctx, http.MethodGet, jobPath(name), nil, &out)
}

// Wait waits for a job, up to timeout (0: no limit); timedOut reports that
// it is still running.
func (c *Client) Wait(ctx context.Context, name string, timeout time.Duration) (info Info, timedOut bool, err error) {
	var reply waitReply
	q := ""
	if timeout > 0 {
		q = "?timeout=" + timeout.String()
	}
	err = c.do(ctx, http.MethodPost, jobPath(name)+"/wait"+q, nil, &reply)
	return reply.Info, reply.TimedOut, err
}

// Stream is a streamed reply: results or a log.
type Stream struct {
	// From is where the results start in the job's results file.
	From int64
	resp *http.Response
}

// Read reads the stream. At its end it returns io.EOF if the daemon sent
// everything, or the daemon's error if it stopped early.
func (s *Stream) Read(p []byte) (int, error) {
	n, err := s.resp.Body.Read(p)
	if errors.Is(err, io.EOF) {
		if msg := s.resp.Trailer.Get("Rsh-Error"); msg != "" {
			return n, errors.New(msg)
		}
	}
	return n, err
}

// Close ends the stream.
func (s *Stream) Close() error { return s.resp.Body.Close() }

// Results streams the job's results not received before: records, one per
// line. With follow it goes on until the job has finished. Confirm what
// was written with Ack, or the results stay unreceived.
func (c *Client) Results(ctx context.Context, name string, follow bool) (*Stream, error) {
	resp, err := c.send(ctx, http.MethodGet, jobPath(name)+"/results?follow="+strconv.FormatBool(follow), nil, "")
	if err != nil {
		return nil, err
	}
	from, err := strconv.ParseInt(resp.Header.Get("Rsh-From"), 10, 64)
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: the daemon did not say where the results start", c.Where)
	}
	return &Stream{From: from, resp: resp}, nil
}

// Ack confirms that the results in [from, to) of the job's results file
// reached their reader: they count as received.
func (c *Client) Ack(ctx context.Context, name string, from, to int64) (Info, error) {
	var out Info
	return out, c.do(ctx, http.MethodPost, jobPath(name)+"/received", map[string]int64{"from": from, "to": to}, &out)
}

// Log streams the job's messages; with follow, until the job has finished.
func (c *Client) Log(ctx context.Context, name string, follow bool) (*Stream, error) {
	resp, err := c.send(ctx, http.MethodGet, jobPath(name)+"/log?follow="+strconv.FormatBool(follow), nil, "")
	if err != nil {
		return nil, err
	}
	return &Stream{resp: resp}, nil
}

// Stop stops a job.
func (c *Client) Stop(ctx context.Context, name string) (Info, error) {
	var out Info
	return out, c.do(ctx, http.MethodPost, jobPath(name)+"/stop", nil, &out)
}

// Remove stops and removes a job.
func (c *Client) Remove(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, jobPath(name), nil, nil)
}
