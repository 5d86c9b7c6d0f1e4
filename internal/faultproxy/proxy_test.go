package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// target is a loopback server that sends payload on every connection and
// records what it reads.
type target struct {
	ln      net.Listener
	payload []byte
	mu      sync.Mutex
	got     [][]byte
	wg      sync.WaitGroup
}

func startTarget(t *testing.T, payload []byte) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &target{ln: ln, payload: payload}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				go c.Write(s.payload)
				b, _ := io.ReadAll(c)
				s.mu.Lock()
				s.got = append(s.got, b)
				s.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *target) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.got...)
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

func startProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func TestFaithful(t *testing.T) {
	pl := payload(100 << 10)
	s := startTarget(t, pl)
	p := startProxy(t, s.ln.Addr().String())
	c := dial(t, p.Addr())
	sent := payload(5000)
	if _, err := c.Write(sent); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(pl))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, pl) {
		t.Fatal("payload differs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitBytes(ctx, Up, int64(len(sent))); err != nil {
		t.Fatal(err)
	}
	if p.Bytes(Down) != int64(len(pl)) || p.Conn(0).Bytes(Down) != int64(len(pl)) {
		t.Fatalf("down bytes %d", p.Bytes(Down))
	}
	c.Close()
	if err := p.WaitActive(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if p.Fired() != 0 {
		t.Fatal("fired without faults")
	}
}

func TestCutDownAtEveryOffset(t *testing.T) {
	pl := payload(3000)
	s := startTarget(t, pl)
	p := startProxy(t, s.ln.Addr().String())
	for _, n := range []int64{0, 1, 1500, 2999, 3000} {
		p.SetPlan(Plan{Faults: []Fault{{Dir: Down, Action: Cut, After: n}}})
		c := dial(t, p.Addr())
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("cut at %d: %v", n, err)
		}
		if !bytes.Equal(got, pl[:n]) {
			t.Fatalf("cut at %d: got %d bytes", n, len(got))
		}
	}
}

func TestResetDown(t *testing.T) {
	pl := payload(3000)
	s := startTarget(t, pl)
	p := startProxy(t, s.ln.Addr().String())
	p.SetPlan(Plan{Faults: []Fault{{Dir: Down, Action: Reset, After: 100}}})
	c, err := net.Dial("tcp", p.Addr())
	if errors.Is(err, syscall.ECONNRESET) {
		return // the reset beat connect's return: fine
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("err = %v, want ECONNRESET", err)
	}
	if len(got) > 100 {
		t.Fatalf("got %d bytes, want at most 100", len(got))
	}
}

func TestCutUpAfterMatch(t *testing.T) {
	s := startTarget(t, nil)
	p := startProxy(t, s.ln.Addr().String())
	p.SetPlan(Plan{Faults: []Fault{{Dir: Up, Action: Cut, Match: []byte("UID EXPUNGE"), After: 0}}})
	c := dial(t, p.Addr())
	c.Write([]byte("a1 UID STORE 1 +FLAGS (\\Deleted)\r\n"))
	time.Sleep(50 * time.Millisecond)
	c.Write([]byte("a2 UID EXPUNGE 1\r\n"))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitActive(ctx, 0); err != nil {
		t.Fatal(err)
	}
	p.Close()
	for i := 0; i < 200 && len(s.received()) == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	got := s.received()
	if len(got) != 1 || string(got[0]) != "a1 UID STORE 1 +FLAGS (\\Deleted)\r\na2 " {
		t.Fatalf("upstream got %q", got)
	}
	if !p.Conn(0).Fired(Up) || p.Fired() != 1 {
		t.Fatal("fault not counted")
	}
}

func TestStallAndRelease(t *testing.T) {
	pl := payload(2000)
	s := startTarget(t, pl)
	p := startProxy(t, s.ln.Addr().String())
	p.SetPlanner(Only(0, Plan{Faults: []Fault{{Dir: Down, Action: Stall, Match: []byte("klm"), After: 3}}}))
	c := dial(t, p.Addr())
	got := make([]byte, 13)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	if n, err := c.Read(make([]byte, 10)); n != 0 || err == nil {
		t.Fatalf("read %d bytes during the stall (%v)", n, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	p.Conn(0).Release()
	rest := make([]byte, len(pl)-13)
	if _, err := io.ReadFull(c, rest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(got, rest...), pl) {
		t.Fatal("payload differs after release")
	}
	// The next connection is faithful.
	c2 := dial(t, p.Addr())
	if _, err := io.ReadFull(c2, make([]byte, len(pl))); err != nil {
		t.Fatal(err)
	}
}

func TestStallEndsWithOtherSide(t *testing.T) {
	s := startTarget(t, payload(100))
	p := startProxy(t, s.ln.Addr().String())
	p.SetPlan(Plan{Faults: []Fault{{Dir: Down, Action: Stall, After: 10}}})
	c := dial(t, p.Addr())
	io.ReadFull(c, make([]byte, 10))
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitActive(ctx, 0); err != nil {
		t.Fatal("stalled connection outlived its client")
	}
}

func TestThrottle(t *testing.T) {
	pl := payload(1000)
	s := startTarget(t, pl)
	p := startProxy(t, s.ln.Addr().String())
	p.SetPlan(Plan{BytesPerSecond: 4000})
	c := dial(t, p.Addr())
	start := time.Now()
	if _, err := io.ReadFull(c, make([]byte, len(pl))); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("1000 bytes at 4000 B/s took %v", d)
	}
}

func TestRefuseAndResetAll(t *testing.T) {
	s := startTarget(t, nil)
	p := startProxy(t, s.ln.Addr().String())
	var cs []net.Conn
	for range 3 {
		cs = append(cs, dial(t, p.Addr()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitActive(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if n := p.ResetAll(); n != 3 {
		t.Fatalf("ResetAll ended %d, want %d", n, 3)
	}
	for _, c := range cs {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read succeeded after ResetAll")
		}
	}
	p.Refuse(true)
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("refused connection readable")
		}
		c.Close()
	}
	p.Refuse(false)
	if p.Accepted() != 4 || p.Fired() != 3 {
		t.Fatalf("accepted %d fired %d", p.Accepted(), p.Fired())
	}
}

func TestLoopbackOnly(t *testing.T) {
	if _, err := Start("192.0.2.1:143"); err == nil {
		t.Fatal("non-loopback target accepted")
	}
}

// TestStallUpEndsWhenClientCloses: a stalled client-to-upstream direction
// still notices the client closing (the upstream may wait forever).
func TestStallUpEndsWhenClientCloses(t *testing.T) {
	s := startTarget(t, nil)
	p := startProxy(t, s.ln.Addr().String())
	p.SetPlan(Plan{Faults: []Fault{{Dir: Up, Action: Stall, Match: []byte("STALL")}}})
	c := dial(t, p.Addr())
	c.Write([]byte("a1 NOOP\r\na2 STALL\r\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitBytes(ctx, Up, int64(len("a1 NOOP\r\na2 "))); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := p.WaitActive(ctx, 0); err != nil {
		t.Fatal("stalled connection outlived its client")
	}
}

// TestStallUpRelease: what a stalled direction read meanwhile is
// forwarded on release.
func TestStallUpRelease(t *testing.T) {
	s := startTarget(t, nil)
	p := startProxy(t, s.ln.Addr().String())
	p.SetPlan(Plan{Faults: []Fault{{Dir: Up, Action: Stall, After: 3}}})
	c := dial(t, p.Addr())
	c.Write([]byte("abcdef"))
	time.Sleep(50 * time.Millisecond)
	c.Write([]byte("ghi"))
	time.Sleep(50 * time.Millisecond)
	p.Conn(0).Release()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitBytes(ctx, Up, 9); err != nil {
		t.Fatal(err)
	}
	c.Close()
	p.WaitActive(ctx, 0)
	p.Close()
	for i := 0; i < 200 && len(s.received()) == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.received(); len(got) != 1 || string(got[0]) != "abcdefghi" {
		t.Fatalf("upstream got %q", got)
	}
}
