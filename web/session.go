package web

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// Bounds of the in-memory stores, so unauthenticated requests cannot
// grow them without limit.
const (
	maxSessions     = 10000
	maxPending      = 10000
	pendingLifetime = 10 * time.Minute
)

// session is a signed-in browser. Its id is issued at sign-in and never
// taken from the client, so a planted cookie cannot become a session
// (session fixation).
type session struct {
	id       string
	user     string
	admin    bool
	csrf     string
	created  time.Time
	lastSeen time.Time
	flash    string // shown once on the next page
}

// pending is a started sign-in, waiting for the provider's redirect.
type pending struct {
	state, nonce, verifier string
	next                   string // local path to return to
	expires                time.Time
}

type sessionStore struct {
	lifetime, idle time.Duration
	now            func() time.Time

	mu       sync.Mutex
	sessions map[string]*session
	pending  map[string]*pending
}

func newSessionStore(lifetime, idle time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{lifetime: lifetime, idle: idle, now: now,
		sessions: map[string]*session{}, pending: map[string]*pending{}}
}

// randomID returns 256 random bits, URL-safe.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessionStore) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.created) >= s.lifetime || now.Sub(ss.lastSeen) >= s.idle
}

// sweep drops expired entries; called with mu held when a store is full.
func (s *sessionStore) sweep(now time.Time) {
	for id, ss := range s.sessions {
		if s.expired(ss, now) {
			delete(s.sessions, id)
		}
	}
	for id, p := range s.pending {
		if now.After(p.expires) {
			delete(s.pending, id)
		}
	}
}

// create starts a session for user under a fresh id; ok is false when
// the store is full.
func (s *sessionStore) create(user string, admin bool) (ss *session, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.sessions) >= maxSessions {
		s.sweep(now)
		if len(s.sessions) >= maxSessions {
			return nil, false
		}
	}
	ss = &session{id: randomID(), user: user, admin: admin, csrf: randomID(), created: now, lastSeen: now}
	s.sessions[ss.id] = ss
	return ss, true
}

// get returns a copy of the live session id and notes the activity.
func (s *sessionStore) get(id string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok {
		return session{}, false
	}
	now := s.now()
	if s.expired(ss, now) {
		delete(s.sessions, id)
		return session{}, false
	}
	ss.lastSeen = now
	return *ss, true
}

// takeFlash returns and clears the session's one-time message.
func (s *sessionStore) takeFlash(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok {
		return ""
	}
	f := ss.flash
	ss.flash = ""
	return f
}

func (s *sessionStore) setFlash(id, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss, ok := s.sessions[id]; ok {
		ss.flash = msg
	}
}

func (s *sessionStore) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
}

// deleteUser ends every session of user (after the admin removed them).
func (s *sessionStore) deleteUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ss := range s.sessions {
		if ss.user == user {
			delete(s.sessions, id)
		}
	}
}

// addPending stores a started sign-in under a fresh id.
func (s *sessionStore) addPending(p *pending) (id string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.pending) >= maxPending {
		s.sweep(now)
		if len(s.pending) >= maxPending {
			return "", false
		}
	}
	p.expires = now.Add(pendingLifetime)
	id = randomID()
	s.pending[id] = p
	return id, true
}

// takePending removes and returns a started sign-in: each is used once.
func (s *sessionStore) takePending(id string) (*pending, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pending[id]
	if !ok {
		return nil, false
	}
	delete(s.pending, id)
	if s.now().After(p.expires) {
		return nil, false
	}
	return p, true
}
