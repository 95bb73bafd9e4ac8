// Package testutil holds helpers shared by rsh's tests: running JavaScript
// and checking what it throws, and a loopback server that measures how many
// connections are open at once (the tests' honest way to count items
// running concurrently, since scripts cannot report to Go directly).
package testutil

import (
	"net"
	"sync"
	"testing"

	"github.com/dop251/goja"
)

// Run runs src in rt and fails the test if it throws.
func Run(t testing.TB, rt *goja.Runtime, src string) goja.Value {
	t.Helper()
	v, err := rt.RunString(src)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	return v
}

// Throws runs src, which must throw, and returns the error's name and
// message.
func Throws(t testing.TB, rt *goja.Runtime, src string) (name, message string) {
	t.Helper()
	v, err := rt.RunString(src)
	ex, ok := err.(*goja.Exception)
	if !ok {
		t.Fatalf("%s = %v, %v; want an exception", src, v, err)
	}
	o := ex.Value().ToObject(rt)
	return o.Get("name").String(), o.Get("message").String()
}

// HoldScript is an item function that holds a connection to the
// Concurrency server at params.port for 30 ms, then tells the server it is
// done and waits for the reply, so the server's count drops before the
// item ends: the peak never overcounts.
const HoldScript = `const tcp = require("tcp");
module.exports = (n, p) => {
	const c = tcp.dial("127.0.0.1", p.port, {timeout: 2000});
	sleep(30);
	c.write("x");
	if (c.read({timeout: 2000}) !== "k") throw new Error("no reply");
	c.close();
	return n;
}`

// Concurrency is a loopback server that counts connections open at once.
type Concurrency struct {
	l        net.Listener
	mu       sync.Mutex
	cur, max int
	wg       sync.WaitGroup
}

// NewConcurrency starts a server on 127.0.0.1, stopped when the test ends.
func NewConcurrency(t testing.TB) *Concurrency {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &Concurrency{l: l}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.cur++
			c.max = max(c.max, c.cur)
			c.mu.Unlock()
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				_, _ = conn.Read(make([]byte, 1))
				c.mu.Lock()
				c.cur--
				c.mu.Unlock()
				_, _ = conn.Write([]byte("k"))
				conn.Close()
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); c.wg.Wait() })
	return c
}

// Port is the server's port.
func (c *Concurrency) Port() int { return c.l.Addr().(*net.TCPAddr).Port }

// Peak is the most connections that were open at once.
func (c *Concurrency) Peak() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max
}
