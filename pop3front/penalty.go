package pop3front

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"sync"
	"time"
)

// Failed-login penalty (docs/design.md, "Limits"; Dovecot's auth_penalty is
// the prior art): after a failed login from a client address (IPv6: its
// /64), every further login attempt from it waits before the Backend is
// called: AuthPenaltyInitial after one failure, doubling with each
// failure up to AuthPenaltyMax. The wait comes before the outcome is
// known, so unknown user and wrong password are delayed alike.
//
// A client retrying the same wrong password (a device with a stale saved
// password, polling) does not escalate: each entry remembers short keyed
// hashes of the credentials that failed, never the credentials. A
// successful login does not clear the entry: otherwise an attacker with
// one valid account could reset the penalty between guesses. Entries
// expire penaltyTTL after their last failure, and the table holds at
// most penaltyCap of them (least recently failed evicted first), so its
// memory is bounded whatever the attacker does.
const (
	penaltyTTL    = 15 * time.Minute
	penaltyCap    = 100_000
	penaltyHashes = 8 // distinct failed credentials remembered per address
)

type penaltyTable struct {
	initial, max time.Duration
	cap          int              // most entries held
	now          func() time.Time // for tests
	key          [32]byte         // HMAC key, random per process

	mu      sync.Mutex
	lru     *list.List // of *penaltyEntry, most recent failure first
	entries map[netip.Prefix]*list.Element
}

type penaltyEntry struct {
	key    netip.Prefix
	fails  int // distinct failed credentials, saturating
	last   time.Time
	hashes [penaltyHashes]uint64
	next   int // ring position in hashes
}

func newPenaltyTable(initial, max time.Duration) *penaltyTable {
	t := &penaltyTable{
		initial: initial,
		max:     max,
		cap:     penaltyCap,
		now:     time.Now,
		lru:     list.New(),
		entries: make(map[netip.Prefix]*list.Element),
	}
	rand.Read(t.key[:])
	return t
}

// setDurations changes the first and the longest delay (a reload).
func (t *penaltyTable) setDurations(initial, max time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.initial, t.max = initial, max
}

// delay is how long a login attempt from ip must wait now; 0 for an
// address without recent failures (or without an IP: pipes, sockets).
func (t *penaltyTable) delay(ip netip.Addr) time.Duration {
	if t == nil || !ip.IsValid() {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.initial < 0 {
		return 0
	}
	e := t.lookup(ipKey(ip))
	if e == nil || e.fails == 0 {
		return 0
	}
	d := t.initial
	for i := 1; i < e.fails && d < t.max; i++ {
		d *= 2
	}
	return min(d, t.max)
}

// fail records a failed login of user with pass from ip.
func (t *penaltyTable) fail(ip netip.Addr, user, pass string) {
	if t == nil || !ip.IsValid() {
		return
	}
	h := t.hash(user, pass)
	k := ipKey(ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.initial < 0 {
		return
	}
	e := t.lookup(k)
	if e == nil {
		for len(t.entries) >= t.cap {
			t.evict(t.lru.Back())
		}
		e = &penaltyEntry{key: k}
		t.entries[k] = t.lru.PushFront(e)
	} else {
		t.lru.MoveToFront(t.entries[k])
	}
	e.last = t.now()
	for _, old := range e.hashes[:min(e.fails, penaltyHashes)] {
		if old == h {
			return // the same wrong credentials again: no escalation
		}
	}
	e.hashes[e.next] = h
	e.next = (e.next + 1) % penaltyHashes
	if e.fails < 64 {
		e.fails++
	}
}

// lookup returns the live entry for k, dropping it (and any older
// expired ones) when expired. t.mu is held.
func (t *penaltyTable) lookup(k netip.Prefix) *penaltyEntry {
	t.expire()
	el := t.entries[k]
	if el == nil {
		return nil
	}
	return el.Value.(*penaltyEntry)
}

// expire drops expired entries from the cold end; the list is ordered by
// last failure, so it stops at the first live one. t.mu is held.
func (t *penaltyTable) expire() {
	now := t.now()
	for el := t.lru.Back(); el != nil; el = t.lru.Back() {
		if now.Sub(el.Value.(*penaltyEntry).last) < penaltyTTL {
			return
		}
		t.evict(el)
	}
}

func (t *penaltyTable) evict(el *list.Element) {
	delete(t.entries, el.Value.(*penaltyEntry).key)
	t.lru.Remove(el)
}

func (t *penaltyTable) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// hash is a truncated HMAC-SHA256 of the credentials under the
// per-process key: enough to tell a repeat from a new guess, useless to
// recover or test a password offline.
func (t *penaltyTable) hash(user, pass string) uint64 {
	m := hmac.New(sha256.New, t.key[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(user)))
	m.Write(n[:]) // length prefix: ("a", "bc") and ("ab", "c") differ
	m.Write([]byte(user))
	m.Write([]byte(pass))
	return binary.BigEndian.Uint64(m.Sum(nil))
}
