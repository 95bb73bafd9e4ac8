package jobs

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/runspaces/rsh/vm"
)

// The HTTP API that `rsh serve` exposes and Client speaks, JSON throughout:
//
//	POST   /v1/jobs                       Spec → {"name": ...}
//	GET    /v1/jobs                       → [Info]
//	GET    /v1/jobs/{name}                → Info
//	POST   /v1/jobs/{name}/wait?timeout=D → {"info": Info, "timedOut": bool}
//	GET    /v1/jobs/{name}/results?keep=1 → [record]   (receive)
//	POST   /v1/jobs/{name}/stop           → Info
//	DELETE /v1/jobs/{name}                → 204
//
// Errors are {"error": "..."} with 400 (bad request), 401 (token), 404
// (unknown job), 409 (name taken) or 500.

// maxSpecBytes bounds a submitted job (script, parameters and items).
const maxSpecBytes = 256 << 20

// Handler returns the HTTP API for m. With a non-empty token, every request
// must carry "Authorization: Bearer TOKEN".
func Handler(m *Manager, token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		var spec Spec
		dec := json.NewDecoder(io.LimitReader(r.Body, maxSpecBytes))
		if err := dec.Decode(&spec); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("bad job: %w", err))
			return
		}
		name, err := m.Start(spec)
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"name": name})
	})
	mux.HandleFunc("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, m.List())
	})
	mux.HandleFunc("GET /v1/jobs/{name}", func(w http.ResponseWriter, r *http.Request) {
		info, err := m.Get(r.PathValue("name"))
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, info)
	})
	mux.HandleFunc("POST /v1/jobs/{name}/wait", func(w http.ResponseWriter, r *http.Request) {
		var timeout time.Duration
		if t := r.URL.Query().Get("timeout"); t != "" {
			d, err := time.ParseDuration(t)
			if err != nil || d < 0 {
				writeError(w, http.StatusBadRequest, fmt.Errorf("timeout %q: want a duration like 30s", t))
				return
			}
			timeout = d
		}
		info, err := m.Wait(r.Context(), r.PathValue("name"), timeout)
		if err != nil && !errors.Is(err, ErrTimeout) {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, waitReply{Info: info, TimedOut: errors.Is(err, ErrTimeout)})
	})
	mux.HandleFunc("GET /v1/jobs/{name}/results", func(w http.ResponseWriter, r *http.Request) {
		keep, _ := strconv.ParseBool(r.URL.Query().Get("keep"))
		rs, err := m.Receive(r.PathValue("name"), keep)
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		if rs == nil {
			rs = []*vm.Result{}
		}
		writeJSON(w, http.StatusOK, rs)
	})
	mux.HandleFunc("POST /v1/jobs/{name}/stop", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := m.Stop(name); err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		info, _ := m.Get(name)
		writeJSON(w, http.StatusOK, info)
	})
	mux.HandleFunc("DELETE /v1/jobs/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Remove(r.PathValue("name")); err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	if token == "" {
		return mux
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong token"))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

type waitReply struct {
	Info     Info `json:"info"`
	TimedOut bool `json:"timedOut"`
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrNameTaken):
		return http.StatusConflict
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	case strings.HasPrefix(err.Error(), "jobs: name"):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
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

// APIError is an error reply from the daemon.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = strings.NewReader(string(data))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("%s: %w", c.Where, ErrNoDaemon)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Start submits a job and returns its name.
func (c *Client) Start(ctx context.Context, spec Spec) (string, error) {
	var reply struct{ Name string }
	err := c.do(ctx, http.MethodPost, "/v1/jobs", spec, &reply)
	return reply.Name, err
}

// List returns every job.
func (c *Client) List(ctx context.Context) ([]Info, error) {
	var out []Info
	return out, c.do(ctx, http.MethodGet, "/v1/jobs", nil, &out)
}

// Get returns one job.
func (c *Client) Get(ctx context.Context, name string) (Info, error) {
	var out Info
	return out, c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(name), nil, &out)
}

// Wait waits for a job, up to timeout (0: no limit); timedOut reports that
// it is still running.
func (c *Client) Wait(ctx context.Context, name string, timeout time.Duration) (info Info, timedOut bool, err error) {
	var reply waitReply
	q := ""
	if timeout > 0 {
		q = "?timeout=" + timeout.String()
	}
	err = c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(name)+"/wait"+q, nil, &reply)
	return reply.Info, reply.TimedOut, err
}

// Receive returns the results not received before (all of them, and
// leaving them unreceived, with keep).
func (c *Client) Receive(ctx context.Context, name string, keep bool) ([]*vm.Result, error) {
	var out []*vm.Result
	return out, c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(name)+"/results?keep="+strconv.FormatBool(keep), nil, &out)
}

// Stop stops a job.
func (c *Client) Stop(ctx context.Context, name string) (Info, error) {
	var out Info
	return out, c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(name)+"/stop", nil, &out)
}

// Remove stops and removes a job.
func (c *Client) Remove(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/jobs/"+url.PathEscape(name), nil, nil)
}
