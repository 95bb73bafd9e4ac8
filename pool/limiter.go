package pool

import (
	"context"
	"sync"
)

// Limiter bounds how many items run at once across every Pool that shares
// it, for example the jobs of one job manager. Its size may be changed
// while pools use it (SetSize). It must be made with NewLimiter.
//
// Pools take and give back its slots once per batch of items, not per
// item. A waiter sleeps on a channel that is made only when someone has
// to wait, and closed (waking every waiter to try again) when a slot
// frees or the size grows: the common, uncontended path is a mutex and
// two integers.
type Limiter struct {
	mu   sync.Mutex
	size int
	used int
	wake chan struct{} // nil unless someone waits
}

// NewLimiter returns a Limiter that lets n items run at once (n >= 1).
func NewLimiter(n int) *Limiter {
	if n < 1 {
		panic("pool: NewLimiter: n must be >= 1")
	}
	return &Limiter{size: n}
}

// Size returns the number of items the limiter lets run at once.
func (l *Limiter) Size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// SetSize changes the number of items the limiter lets run at once (n >=
// 1). Growing it lets waiting pools go on at once; shrinking it lets the
// items already running finish, and no new one starts until fewer than n
// run.
func (l *Limiter) SetSize(n int) {
	if n < 1 {
		panic("pool: Limiter.SetSize: n must be >= 1")
	}
	l.mu.Lock()
	l.size = n
	l.wakeLocked()
	l.mu.Unlock()
}

// take takes a slot if one is free; otherwise, if wait, it returns a
// channel that is closed when one may be.
func (l *Limiter) take(wait bool) (bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.used < l.size {
		l.used++
		return true, nil
	}
	if !wait {
		return false, nil
	}
	if l.wake == nil {
		l.wake = make(chan struct{})
	}
	return false, l.wake
}

// acquire takes a slot, waiting for one; it reports false if ctx ended or
// stop closed first. A nil limiter always has room.
func (l *Limiter) acquire(ctx context.Context, stop <-chan struct{}) bool {
	if l == nil {
		return true
	}
	for {
		ok, wake := l.take(true)
		if ok {
			return true
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return false
		case <-stop:
			return false
		}
	}
}

// release gives back n slots.
func (l *Limiter) release(n int) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.used -= n
	l.wakeLocked()
	l.mu.Unlock()
}

// wakeLocked wakes the waiters if there is room for one of them.
func (l *Limiter) wakeLocked() {
	if l.wake != nil && l.used < l.size {
		close(l.wake)
		l.wake = nil
	}
}
