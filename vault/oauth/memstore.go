package oauth

import (
	"context"
	"sync"
	"time"
)

// MemoryGrants is a GrantStore in memory, for tests and the demo mode. Its
// lock excludes only this process.
type MemoryGrants struct {
	mu     sync.Mutex
	grants map[string]*memGrant
}

type memGrant struct {
	mu       sync.Mutex // held during Refresh's fn
	tokens   Tokens
	reenrol  string // reason, if marked
	lastErr  error
	lastTime time.Time
	refreshs int // RecordRefresh calls
}

// GrantStatus is what MemoryGrants knows of one user's grant.
type GrantStatus struct {
	Tokens          Tokens
	NeedsReenroll   string // reason; empty if not marked
	LastRefreshErr  error
	RecordedRefresh int
}

// NewMemoryGrants returns an empty store.
func NewMemoryGrants() *MemoryGrants { return &MemoryGrants{grants: map[string]*memGrant{}} }

// get returns user's grant if it exists and is not marked for
// re-enrolment.
func (m *MemoryGrants) get(user string) *memGrant {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g := m.grants[user]; g != nil && g.reenrol == "" {
		return g
	}
	return nil
}

// Refresh implements GrantStore.
func (m *MemoryGrants) Refresh(ctx context.Context, user string, fn func(cur Tokens) (Tokens, error)) (Tokens, error) {
	g := m.get(user)
	if g == nil {
		return Tokens{}, ErrNoGrant
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	m.mu.Lock()
	cur := g.tokens
	m.mu.Unlock()
	t, err := fn(cur)
	if err != nil {
		return Tokens{}, err
	}
	if t != cur {
		m.mu.Lock()
		g.tokens = t
		m.mu.Unlock()
	}
	return t, nil
}

// PutGrant implements GrantStore.
func (m *MemoryGrants) PutGrant(ctx context.Context, user string, t Tokens) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grants[user] = &memGrant{tokens: t}
	return nil
}

// RecordRefresh implements GrantStore.
func (m *MemoryGrants) RecordRefresh(ctx context.Context, user string, err error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g := m.grants[user]; g != nil {
		g.lastErr, g.lastTime = err, time.Now()
		g.refreshs++
	}
	return nil
}

// MarkNeedsReenrollment implements GrantStore: the grant is kept but no
// longer used until PutGrant replaces it.
func (m *MemoryGrants) MarkNeedsReenrollment(ctx context.Context, user string, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g := m.grants[user]; g != nil {
		g.reenrol = reason
	}
	return nil
}

// Status returns what the store holds for user; ok is false without a
// grant.
func (m *MemoryGrants) Status(user string) (st GrantStatus, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.grants[user]
	if g == nil {
		return GrantStatus{}, false
	}
	return GrantStatus{Tokens: g.tokens, NeedsReenroll: g.reenrol, LastRefreshErr: g.lastErr, RecordedRefresh: g.refreshs}, true
}

var _ GrantStore = (*MemoryGrants)(nil)
