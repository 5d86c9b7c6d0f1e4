package imapback

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popbridge/popbridge/pop3front"
)

// cannedUpstream answers a POP3 session's IMAP commands from prepared
// bytes as fast as it can write them, so that a benchmark measures the
// client side (go-imap's decoder, the snapshot, the stream) rather than
// a server. It knows LOGIN, EXAMINE, UID FETCH 1:* (the snapshot), UID
// FETCH of one message (BODY[] of body) and LOGOUT.
type cannedUpstream struct {
	ln       net.Listener
	snapshot []byte // the untagged part of UID FETCH 1:*
	n        int
	body     []byte
	wg       sync.WaitGroup
}

func startCanned(tb testing.TB, n int, body []byte) *cannedUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c := &cannedUpstream{ln: ln, n: n, body: body}
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "* %d FETCH (UID %d RFC822.SIZE %d FLAGS (\\Seen))\r\n", i, i, len(body))
	}
	c.snapshot = b.Bytes()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.wg.Add(1)
			go func() { defer c.wg.Done(); c.serve(conn) }()
		}
	}()
	tb.Cleanup(func() { ln.Close(); c.wg.Wait() })
	return c
}

func (c *cannedUpstream) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	bw := bufio.NewWriterSize(conn, 64<<10)
	bw.WriteString("* OK [CAPABILITY IMAP4rev1 UIDPLUS LITERAL+] canned\r\n")
	bw.Flush()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		tag, cmd := f[0], strings.ToUpper(f[1])
		switch {
		case cmd == "LOGIN":
			fmt.Fprintf(bw, "%s OK [CAPABILITY IMAP4rev1 UIDPLUS LITERAL+] in\r\n", tag)
		case cmd == "EXAMINE" || cmd == "SELECT":
			fmt.Fprintf(bw, "* %d EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n%s OK [READ-ONLY] done\r\n", c.n, tag)
		case cmd == "UID" && len(f) > 3 && f[3] == "1:*":
			bw.Write(c.snapshot)
			fmt.Fprintf(bw, "%s OK done\r\n", tag)
		case cmd == "UID":
			// One UID, or a set of them (prefetch batches): "3", "3:5,7".
			for _, r := range strings.Split(f[3], ",") {
				var lo, hi int
				if n, _ := fmt.Sscanf(r, "%d:%d", &lo, &hi); n < 2 {
					hi = lo
				}
				for uid := lo; uid <= hi; uid++ {
					fmt.Fprintf(bw, "* %d FETCH (UID %d RFC822.SIZE %d BODY[] {%d}\r\n", uid, uid, len(c.body), len(c.body))
					bw.Write(c.body)
					bw.WriteString(")\r\n")
				}
			}
			fmt.Fprintf(bw, "%s OK done\r\n", tag)
		case cmd == "LOGOUT":
			fmt.Fprintf(bw, "* BYE\r\n%s OK bye\r\n", tag)
			bw.Flush()
			return
		default:
			fmt.Fprintf(bw, "%s OK\r\n", tag)
		}
		bw.Flush()
	}
}

func cannedBackend(tb testing.TB, c *cannedUpstream) *Backend {
	b, err := New(Config{Address: c.ln.Addr().String(), Security: SecurityNone,
		Logger: slog.New(slog.DiscardHandler), CommandTimeout: 30 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkSnapshot: login, EXAMINE and the one-round-trip snapshot of a
// 100,000-message mailbox, from a canned response.
func BenchmarkSnapshot100k(b *testing.B) {
	c := startCanned(b, 100000, []byte("x\r\n"))
	be := cannedBackend(b, c)
	b.ReportAllocs()
	for b.Loop() {
		md, err := be.Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p"})
		if err != nil {
			b.Fatal(err)
		}
		if n := len(md.Messages()); n != 100000 {
			b.Fatalf("%d messages, want %d", n, 100000)
		}
		md.Close()
	}
}

// BenchmarkStream: RETR of a 1 MB message through imapback (UID FETCH,
// literal streamed, checked), one at a time, from a canned response.
func BenchmarkStream1M(b *testing.B) {
	body := bytes.Repeat([]byte(strings.Repeat("s", 76)+"\r\n"), (1<<20)/78)
	c := startCanned(b, 4, body)
	md, err := cannedBackend(b, c).Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p"})
	if err != nil {
		b.Fatal(err)
	}
	defer md.Close()
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Not sequential (0, 2, 0, 2 ...): no read-ahead, every message is
		// streamed from its own fetch.
		r, err := md.Open(context.Background(), (i%2)*2, pop3front.Section{})
		i++
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil || n != int64(len(body)) {
			b.Fatal(n, err)
		}
		r.Close()
	}
}

// BenchmarkReadAhead50K: RETR of consecutive 50 KB messages through
// imapback, one at a time, the way a client that does not pipeline
// downloads a mailbox: after the first two, every message comes from
// sequential read-ahead (prefetch.go). Per op: one message.
func BenchmarkReadAhead50K(b *testing.B) {
	body := bytes.Repeat([]byte(strings.Repeat("r", 76)+"\r\n"), (50<<10)/78)
	const n = 1000
	c := startCanned(b, n, body)
	be := cannedBackend(b, c)
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var md pop3front.Maildrop
	i := n
	for b.Loop() {
		if i == n {
			if md != nil {
				md.Close()
			}
			var err error
			md, err = be.Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p"})
			if err != nil {
				b.Fatal(err)
			}
			i = 0
		}
		r, err := md.Open(context.Background(), i, pop3front.Section{})
		i++
		if err != nil {
			b.Fatal(err)
		}
		if k, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil || k != int64(len(body)) {
			b.Fatal(k, err)
		}
		r.Close()
	}
	md.Close()
}
