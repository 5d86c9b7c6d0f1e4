package vault

import (
	"context"
	"sync"
)

// userLocks are per-user mutexes that waiting can be given up on (ctx).
// They keep the goroutines of one process from queueing inside the
// database, where each would hold a connection (PostgreSQL) or spin on the
// busy timeout (SQLite).
type userLocks struct {
	mu sync.Mutex
	m  map[string]*userLock
}

type userLock struct {
	ch   chan struct{}
	refs int
}

// lock locks user's mutex, or returns ctx's error if ctx ends first.
func (l *userLocks) lock(ctx context.Context, user string) (unlock func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*userLock)
	}
	e := l.m[user]
	if e == nil {
		e = &userLock{ch: make(chan struct{}, 1)}
		l.m[user] = e
	}
	e.refs++
	l.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
		return func() {
			<-e.ch
			l.release(user, e)
		}, nil
	case <-ctx.Done():
		l.release(user, e)
		return nil, ctx.Err()
	}
}

func (l *userLocks) release(user string, e *userLock) {
	l.mu.Lock()
	e.refs--
	if e.refs == 0 {
		delete(l.m, user)
	}
	l.mu.Unlock()
}
