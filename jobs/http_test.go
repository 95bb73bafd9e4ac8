package jobs_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/runspaces/rsh/jobs"
)

// Over HTTP with a token: requests without it, or with another, are
// refused; the right one works.
func TestHandlerToken(t *testing.T) {
	m := manager(t, jobs.Options{})
	srv := httptest.NewServer(jobs.Handler(m, "s3cret"))
	defer srv.Close()
	for _, tc := range []struct {
		header string
		want   int
	}{{"", http.StatusUnauthorized}, {"Bearer wrong", http.StatusUnauthorized}, {"s3cret", http.StatusUnauthorized}, {"Bearer s3cret", http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/jobs", nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Authorization %q: %d, want %d", tc.header, resp.StatusCode, tc.want)
		}
	}
}

// The client and handler agree on every call.
func TestClientRoundTrip(t *testing.T) {
	m := manager(t, jobs.Options{})
	srv := httptest.NewServer(jobs.Handler(m, "tok"))
	defer srv.Close()
	c := &jobs.Client{Base: srv.URL, Token: "tok", Where: srv.URL}
	ctx := context.Background()
	name, err := c.Start(ctx, jobs.Spec{Name: "rt", Script: `(n) => n + 1`, Items: numbers(3)})
	if err != nil || name != "rt" {
		t.Fatalf("start: %q %v", name, err)
	}
	info, timedOut, err := c.Wait(ctx, "rt", 10*time.Second)
	if err != nil || timedOut || info.State != jobs.Completed {
		t.Fatalf("wait: %+v %v %v", info, timedOut, err)
	}
	rs, err := c.Receive(ctx, "rt", false)
	if err != nil || len(rs) != 3 || string(rs[2].Output[0]) != "4" {
		t.Fatalf("receive: %+v %v", rs, err)
	}
	if _, err := c.Start(ctx, jobs.Spec{Name: "rt", Script: `(n) => n`}); err == nil {
		t.Error("duplicate name accepted")
	}
	var api *jobs.APIError
	if _, err := c.Get(ctx, "nope"); !errors.As(err, &api) || api.Status != http.StatusNotFound {
		t.Errorf("get unknown: %v", err)
	}
	if err := c.Remove(ctx, "rt"); err != nil {
		t.Fatal(err)
	}
	if list, _ := c.List(ctx); len(list) != 0 {
		t.Errorf("list after remove: %+v", list)
	}
}
