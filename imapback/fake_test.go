package imapback

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeUpstream is a scriptable IMAP server for behaviours imapmemserver
// cannot show: other servers' FETCH item order and substitutes, truncated
// literals, hangs, odd greetings. It understands just enough IMAP for a
// session: one line per command, no literals.
type fakeUpstream struct {
	t        *testing.T
	ln       net.Listener
	greeting string // default "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake"; "-" sends none
	caps     string // CAPABILITY response and login OK code; default "IMAP4rev1 UIDPLUS"
	login    string // tagged response to LOGIN without the tag; default OK with caps; "-" never answers
	sizes    []int  // snapshot: message i has UID i+1 and this RFC822.SIZE
	// fetch answers UID FETCH of one message; it returns false to hang up.
	fetch    func(w io.Writer, tag, line string) bool
	starttls string      // raw answer to STARTTLS (then hang up)
	tls      *tls.Config // serve implicit TLS

	accepts atomic.Int32
	mu      sync.Mutex
	lines   []string
	conns   []net.Conn
	wg      sync.WaitGroup
}

func startFake(t *testing.T, f *fakeUpstream) *fakeUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if f.tls != nil {
		ln = tls.NewListener(ln, f.tls)
	}
	f.t, f.ln = t, ln
	if f.greeting == "" {
		f.greeting = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake"
	}
	if f.caps == "" {
		f.caps = "IMAP4rev1 UIDPLUS"
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.accepts.Add(1)
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *fakeUpstream) addr() string { return f.ln.Addr().String() }

func (f *fakeUpstream) close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeUpstream) recorded() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.lines, "")
}

func (f *fakeUpstream) serve(c net.Conn) {
	br := bufio.NewReader(c)
	if f.greeting != "-" {
		fmt.Fprintf(c, "%s\r\n", f.greeting)
	}
	silent := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		f.mu.Lock()
		f.lines = append(f.lines, line)
		f.mu.Unlock()
		if silent {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		tag, cmd := fields[0], strings.ToUpper(fields[1])
		if cmd == "UID" && len(fields) > 2 {
			cmd += " " + strings.ToUpper(fields[2])
		}
		switch cmd {
		case "CAPABILITY":
			fmt.Fprintf(c, "* CAPABILITY %s\r\n%s OK done\r\n", f.caps, tag)
		case "LOGIN":
			switch f.login {
			case "-":
				silent = true
			case "":
				fmt.Fprintf(c, "%s OK [CAPABILITY %s] logged in\r\n", tag, f.caps)
			default:
				fmt.Fprintf(c, "%s %s\r\n", tag, f.login)
			}
		case "EXAMINE", "SELECT":
			fmt.Fprintf(c, "* %d EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* FLAGS (\\Seen \\Deleted)\r\n%s OK [READ-ONLY] done\r\n", len(f.sizes), tag)
		case "UID FETCH":
			if strings.HasPrefix(fields[3], "1:*") {
				for i, s := range f.sizes {
					fmt.Fprintf(c, "* %d FETCH (UID %d RFC822.SIZE %d FLAGS ())\r\n", i+1, i+1, s)
				}
				fmt.Fprintf(c, "%s OK done\r\n", tag)
				continue
			}
			if f.fetch == nil || !f.fetch(c, tag, line) {
				return
			}
		case "STARTTLS":
			io.WriteString(c, f.starttls)
			return
		case "AUTHENTICATE":
			fmt.Fprintf(c, "%s OK [CAPABILITY %s] logged in\r\n", tag, f.caps)
		case "NOOP":
			fmt.Fprintf(c, "%s OK done\r\n", tag)
		case "LOGOUT":
			fmt.Fprintf(c, "* BYE bye\r\n%s OK done\r\n", tag)
			return
		default:
			fmt.Fprintf(c, "%s BAD unknown\r\n", tag)
		}
	}
}

func (f *fakeUpstream) backend(t *testing.T, mod ...func(*Config)) *Backend {
	cfg := Config{
		Address:        f.addr(),
		Security:       SecurityNone,
		DialTimeout:    time.Second,
		CommandTimeout: time.Second,
		Logger:         testLogger(t),
	}
	for _, m := range mod {
		m(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
