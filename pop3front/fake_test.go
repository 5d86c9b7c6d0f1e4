package pop3front

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing/iotest"
)

// fakeBackend is a one-user store in memory that records every call.
type fakeBackend struct {
	User, Pass string
	Msgs       []string      // message i+1; UIDL "uid<i>"
	LoginErr   error         // returned by Login for the right credentials
	OpenErr    map[int]error // per index
	Truncate   map[int]int   // index: octets delivered before a read error
	CommitErr  error         // returned by Commit
	NoopErr    error         // returned by Noop
	Panic      string        // "login", "open" or "commit": panic there
	OneByte    bool          // streams deliver one octet per Read
	Infos      []MessageInfo // overrides the snapshot Messages returns
	LoginGate  chan struct{} // if set, Login waits for it (or ctx)
	Expire     string        // if set, the maildrop is an Expirer with this value
	mu         sync.Mutex
	calls      []string
	logins     []LoginRequest
	commits    []Outcome
}

func (b *fakeBackend) record(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf(format, args...))
}

func (b *fakeBackend) panicAt(where string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Panic == where
}

func (b *fakeBackend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

func (b *fakeBackend) Commits() []Outcome {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Outcome(nil), b.commits...)
}

func (b *fakeBackend) Login(ctx context.Context, req *LoginRequest) (Maildrop, error) {
	b.record("login %s", req.Username)
	b.mu.Lock()
	b.logins = append(b.logins, *req)
	b.mu.Unlock()
	if b.LoginGate != nil {
		select {
		case <-b.LoginGate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if b.panicAt("login") {
		panic("fake login panic")
	}
	if req.Username != b.User || req.Password != b.Pass {
		return nil, ErrAuthFailed
	}
	if b.LoginErr != nil {
		return nil, b.LoginErr
	}
	if b.Expire != "" {
		return expireDrop{fakeDrop{b}}, nil
	}
	return fakeDrop{b}, nil
}

type fakeDrop struct{ b *fakeBackend }

// expireDrop is a fakeDrop that knows its user's EXPIRE value.
type expireDrop struct{ fakeDrop }

func (d expireDrop) Expire() string { return d.b.Expire }

func (d fakeDrop) Messages() []MessageInfo {
	if d.b.Infos != nil {
		return d.b.Infos
	}
	m := make([]MessageInfo, len(d.b.Msgs))
	for i, body := range d.b.Msgs {
		m[i] = MessageInfo{Size: int64(len(body)), UIDL: fmt.Sprintf("uid%d", i+1)}
	}
	return m
}

func (d fakeDrop) Open(ctx context.Context, i int, sec Section) (io.ReadCloser, error) {
	d.b.record("open %d top=%v/%d", i, sec.Top, sec.BodyLines)
	if d.b.panicAt("open") {
		panic("fake open panic")
	}
	if err := d.b.OpenErr[i]; err != nil {
		return nil, err
	}
	var r io.Reader = strings.NewReader(d.b.Msgs[i])
	if n, ok := d.b.Truncate[i]; ok {
		r = io.MultiReader(io.LimitReader(r, int64(n)), iotest.ErrReader(errors.New("upstream dropped")))
	}
	if d.b.OneByte {
		r = iotest.OneByteReader(r)
	}
	return fakeStream{r, d.b}, nil
}

type fakeStream struct {
	io.Reader
	b *fakeBackend
}

func (s fakeStream) Close() error { s.b.record("stream close"); return nil }

func (d fakeDrop) Noop(ctx context.Context) error { d.b.record("noop"); return d.b.NoopErr }

func (d fakeDrop) Commit(ctx context.Context, out Outcome) error {
	d.b.record("commit d=%v r=%v", out.Deleted, out.Retrieved)
	if d.b.panicAt("commit") {
		panic("fake commit panic")
	}
	d.b.mu.Lock()
	d.b.commits = append(d.b.commits, out)
	d.b.mu.Unlock()
	return d.b.CommitErr
}

func (d fakeDrop) Close() error { d.b.record("close"); return nil }

// newFake returns a backend for alice/secret with three messages.
func newFake() *fakeBackend {
	return &fakeBackend{
		User: "alice",
		Pass: "secret",
		Msgs: []string{
			"Subject: one\r\n\r\nHello\r\n",
			"Subject: two\r\nX: y\r\n\r\nline 1\r\n.dot\r\nline 3\r\n",
			"Subject: three\r\n\r\n.\r\n",
		},
	}
}
