package imapback

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/pop3front"
)

// prefetchMsgs returns n CRLF messages of different sizes, with lines that
// need dot-stuffing.
func prefetchMsgs(n int) [][]byte {
	var out [][]byte
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Appendf(nil, "From: a@example.org\r\nSubject: m%d\r\n\r\n.\r\n..x\r\n%s\r\nend %d\r\n",
			i, strings.Repeat("y", 100*i), i))
	}
	return out
}

// batchFetches returns the UID FETCH commands for more than one message.
func batchFetches(w *wire) []string {
	var out []string
	for _, l := range w.lines(`(?i)^\S+ UID FETCH [0-9]+[:,]`) {
		if !strings.Contains(l, "1:*") { // the snapshot
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// openAll opens every index in order, hinting the next hint messages
// first, and returns the bodies (nil for ErrExpunged).
func openAll(t *testing.T, md pop3front.Maildrop, idx []int, hint int, sec pop3front.Section) ([][]byte, []error) {
	t.Helper()
	p, ok := md.(pop3front.Prefetcher)
	if !ok {
		t.Fatal("maildrop is not a Prefetcher")
	}
	bodies := make([][]byte, len(idx))
	errs := make([]error, len(idx))
	for k, i := range idx {
		for _, j := range idx[k+1 : min(len(idx), k+1+hint)] {
			p.Prefetch(j, sec)
		}
		r, err := md.Open(context.Background(), i, sec)
		if err != nil {
			errs[k] = err
			continue
		}
		bodies[k], errs[k] = io.ReadAll(r)
		r.Close()
	}
	return bodies, errs
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestPrefetchPipelined: RETRs announced as pipelined are fetched ahead in
// batches and delivered byte-exact, in order; nothing changes upstream.
func TestPrefetchPipelined(t *testing.T) {
	for _, prof := range profiles {
		t.Run(string(prof), func(t *testing.T) {
			msgs := prefetchMsgs(40)
			e := newEnv(t, prof, msgs, nil)
			before := e.state("INBOX")
			md := e.login(e.backend(Policy{}))
			bodies, errs := openAll(t, md, seq(len(msgs)), 16, pop3front.Section{})
			for i := range msgs {
				if errs[i] != nil || !bytes.Equal(bodies[i], msgs[i]) {
					t.Fatalf("message %d: %v, %d octets, want %d", i+1, errs[i], len(bodies[i]), len(msgs[i]))
				}
			}
			if b := batchFetches(e.wire); len(b) == 0 {
				t.Errorf("no batch fetch sent")
			}
			if l := e.wire.lines(`(?i)BODY\[\]`); len(l) > 0 {
				t.Errorf("fetch without PEEK: %q", l)
			}
			md.Close()
			if after := e.state("INBOX"); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("upstream changed:\n%v\n%v", before, after)
			}
		})
	}
}

// TestReadAhead: one RETR (or TOP n 0) at a time, in order, without
// hints: after two in a row the next ones are read ahead, within
// readAheadCap, and everything is byte-exact.
func TestReadAhead(t *testing.T) {
	msgs := prefetchMsgs(60)
	e := newEnv(t, memupstream.ProfileFull, msgs, nil)
	md := e.login(e.backend(Policy{}))
	bodies, errs := openAll(t, md, seq(len(msgs)), 0, pop3front.Section{})
	for i := range msgs {
		if errs[i] != nil || !bytes.Equal(bodies[i], msgs[i]) {
			t.Fatalf("message %d: %v", i+1, errs[i])
		}
	}
	b := batchFetches(e.wire)
	if len(b) == 0 {
		t.Fatal("no read-ahead")
	}
	nbody := len(e.wire.lines(`(?i)^\S+ UID FETCH .*BODY\.PEEK\[\]`))
	if nbody >= len(msgs)/2 {
		t.Errorf("%d fetches for %d messages", nbody, len(msgs))
	}

	// TOP n 0: the header and its blank line, from header batches.
	tops, errs := openAll(t, md, seq(len(msgs)), 0, pop3front.Section{Top: true})
	for i, m := range msgs {
		hdr := m[:bytes.Index(m, []byte("\r\n\r\n"))+4]
		if errs[i] != nil || !bytes.Equal(tops[i], hdr) {
			t.Fatalf("TOP %d 0: %v %q", i+1, errs[i], tops[i])
		}
	}
	if l := e.wire.lines(`(?i)^\S+ UID FETCH [0-9]+[:,].*BODY\.PEEK\[HEADER\]`); len(l) == 0 {
		t.Error("no header read-ahead")
	}
}

// TestPrefetchExpunged: a message another device expunged before the
// batch went out is not delivered from the batch: RETR says expunged, the
// others are byte-exact, and QUIT's DELE of it is a no-op.
func TestPrefetchExpunged(t *testing.T) {
	for _, prof := range profiles {
		t.Run(string(prof), func(t *testing.T) {
			msgs := prefetchMsgs(10)
			e := newEnv(t, prof, msgs, nil)
			md := e.login(e.backend(Policy{Delete: DeleteFlag}))
			e.imapDo(func(c *imapclient.Client) error {
				if _, err := c.Select("INBOX", nil).Wait(); err != nil {
					return err
				}
				if err := c.Store(imap.UIDSetNum(4), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
					return err
				}
				return c.Expunge().Close()
			})
			bodies, errs := openAll(t, md, seq(len(msgs)), 16, pop3front.Section{})
			for i := range msgs {
				if i == 3 {
					if !errors.Is(errs[i], pop3front.ErrExpunged) {
						t.Fatalf("RETR 4: %v, %q", errs[i], bodies[i])
					}
					continue
				}
				if errs[i] != nil || !bytes.Equal(bodies[i], msgs[i]) {
					t.Fatalf("message %d: %v", i+1, errs[i])
				}
			}
			if b := batchFetches(e.wire); len(b) == 0 {
				t.Errorf("no batch fetch sent")
			}
			if err := md.Commit(context.Background(), pop3front.Outcome{Deleted: []int{3, 5}}); err != nil {
				t.Fatal(err)
			}
			st := e.state("INBOX")
			if len(st) != 9 || !st[6].has(imap.FlagDeleted) || st[5].has(imap.FlagDeleted) {
				t.Errorf("inbox %v", st)
			}
		})
	}
}

// TestPrefetchLargerThanCap: a message larger than the prefetch budget is
// never fetched ahead (never held whole): it is streamed by its own
// fetch, and the messages around it still come from batches.
func TestPrefetchLargerThanCap(t *testing.T) {
	msgs := prefetchMsgs(6)
	big := []byte("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("b", 98)+"\r\n", prefetchCap/100+100))
	msgs[2] = big
	e := newEnv(t, memupstream.ProfileFull, msgs, nil)
	md := e.login(e.backend(Policy{}))
	bodies, errs := openAll(t, md, seq(len(msgs)), 16, pop3front.Section{})
	for i := range msgs {
		if errs[i] != nil || !bytes.Equal(bodies[i], msgs[i]) {
			t.Fatalf("message %d: %v", i+1, errs[i])
		}
	}
	for _, l := range batchFetches(e.wire) {
		set := strings.Fields(l)[3]
		if uidSetHas(t, set, 3) {
			t.Errorf("the large message was fetched ahead: %s", l)
		}
	}
	if l := e.wire.lines(`(?i)^\S+ UID FETCH 3 `); len(l) != 1 {
		t.Errorf("large message fetches: %q", l)
	}
}

func uidSetHas(t *testing.T, set string, uid imap.UID) bool {
	t.Helper()
	for _, r := range strings.Split(set, ",") {
		lo, hi, _ := strings.Cut(r, ":")
		a, err := strconv.Atoi(lo)
		if err != nil {
			t.Fatalf("set %q", set)
		}
		b := a
		if hi != "" {
			if b, err = strconv.Atoi(hi); err != nil {
				t.Fatalf("set %q", set)
			}
		}
		if int(uid) >= min(a, b) && int(uid) <= max(a, b) {
			return true
		}
	}
	return false
}

// TestPrefetchMismatch: in a batch, one message comes back as Dovecot
// answers an expunged UID (BODY[] NIL), one as a substitute of another
// size (Courier, UW): neither is delivered from the batch; Open fetches
// them again and answers ErrExpunged, and the others are byte-exact.
func TestPrefetchMismatch(t *testing.T) {
	body := func(uid int) string {
		return fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", uid, strings.Repeat("z", 20+uid))
	}
	sizes := make([]int, 8)
	for i := range sizes {
		sizes[i] = len(body(i + 1))
	}
	answer := func(w io.Writer, uid int) {
		switch uid {
		case 4:
			fmt.Fprintf(w, "* 4 FETCH (UID 4 RFC822.SIZE 0 BODY[] NIL)\r\n")
		case 6:
			sub := strings.Repeat("s", 129)
			fmt.Fprintf(w, "* 6 FETCH (UID 6 RFC822.SIZE 129 BODY[] {129}\r\n%s)\r\n", sub)
		default:
			b := body(uid)
			fmt.Fprintf(w, "* %d FETCH (UID %d RFC822.SIZE %d BODY[] {%d}\r\n%s)\r\n", uid, uid, len(b), len(b), b)
		}
	}
	f := startFake(t, &fakeUpstream{sizes: sizes, fetch: func(w io.Writer, tag, line string) bool {
		set := strings.Fields(line)[3]
		for uid := 1; uid <= len(sizes); uid++ {
			if uidSetHas(t, set, imap.UID(uid)) {
				answer(w, uid)
			}
		}
		fmt.Fprintf(w, "%s OK done\r\n", tag)
		return true
	}})
	md := fakeLogin(t, f)
	bodies, errs := openAll(t, md, seq(len(sizes)), 16, pop3front.Section{})
	for i := range sizes {
		if i == 3 || i == 5 {
			if !errors.Is(errs[i], pop3front.ErrExpunged) {
				t.Errorf("RETR %d: %v %q", i+1, errs[i], bodies[i])
			}
			continue
		}
		if errs[i] != nil || string(bodies[i]) != body(i+1) {
			t.Errorf("RETR %d: %v %q", i+1, errs[i], bodies[i])
		}
	}
	rec := f.recorded()
	if !strings.Contains(rec, "UID FETCH 2:8 ") && !strings.Contains(rec, "UID FETCH 2,") {
		t.Errorf("no batch: %s", rec)
	}
	if err := md.Noop(context.Background()); err != nil {
		t.Errorf("connection unusable: %v", err)
	}
}

// TestPrefetchCloseInFlight: Close (or a stream closed early) with
// batches in flight returns promptly and leaves no goroutine behind
// (TestMain checks leaks).
func TestPrefetchCloseInFlight(t *testing.T) {
	msgs := prefetchMsgs(30)
	e := newEnv(t, memupstream.ProfileFull, msgs, nil)
	md := e.login(e.backend(Policy{}))
	p := md.(pop3front.Prefetcher)
	for i := 1; i < 20; i++ {
		p.Prefetch(i, pop3front.Section{})
	}
	r, err := md.Open(context.Background(), 0, pop3front.Section{})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	closeMidStream(t, md, r, 10*time.Second) // with prefetches in flight
}

// TestPipelinedRETRThroughSession: a POP3 client pipelines every RETR in
// one write; through pop3front and imapback against the in-memory
// upstream every message arrives byte-exact (after dot-unstuffing), each
// with its terminator.
func TestPipelinedRETRThroughSession(t *testing.T) {
	msgs := prefetchMsgs(25)
	e := newEnv(t, memupstream.ProfileFull, msgs, nil)
	srv := &pop3front.Server{Backend: e.backend(Policy{}), Logger: slog.New(slog.DiscardHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { srv.Serve(ln); close(served) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	var script strings.Builder
	fmt.Fprintf(&script, "USER %s\r\nPASS %s\r\n", testUser, testPass)
	for i := range msgs {
		fmt.Fprintf(&script, "RETR %d\r\n", i+1)
	}
	script.WriteString("QUIT\r\n")
	if _, err := io.WriteString(c, script.String()); err != nil {
		t.Fatal(err)
	}
	status := func() string {
		l, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, "+OK") {
			t.Fatalf("status %q %v", l, err)
		}
		return l
	}
	status() // greeting
	status() // USER
	status() // PASS
	for i, m := range msgs {
		status()
		var got bytes.Buffer
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("RETR %d: %v", i+1, err)
			}
			if l == ".\r\n" {
				break
			}
			got.WriteString(strings.TrimPrefix(l, "."))
		}
		if !bytes.Equal(got.Bytes(), m) {
			t.Fatalf("RETR %d: %q, want %q", i+1, got.Bytes(), m)
		}
	}
	status() // QUIT
	if b := batchFetches(e.wire); len(b) == 0 {
		t.Errorf("pipelined RETRs were not fetched ahead")
	}
}

// TestReadAheadWriteTo: read-ahead messages written with WriteTo (as
// pop3front does for a stream that has it) are byte-exact, also when
// their buffers are recycled ones, and a stream written out reads as
// ended.
func TestReadAheadWriteTo(t *testing.T) {
	msgs := prefetchMsgs(60)
	e := newEnv(t, memupstream.ProfileFull, msgs, nil)
	md := e.login(e.backend(Policy{}))
	viaWriteTo := 0
	for round := range 2 { // the second round reuses the first one's buffers
		for i, want := range msgs {
			r, err := md.Open(context.Background(), i, pop3front.Section{})
			if err != nil {
				t.Fatalf("round %d, message %d: %v", round, i+1, err)
			}
			var got bytes.Buffer
			if wt, ok := r.(io.WriterTo); ok {
				viaWriteTo++
				if _, err := wt.WriteTo(&got); err != nil {
					t.Fatalf("round %d, message %d: WriteTo: %v", round, i+1, err)
				}
				if n, err := r.Read(make([]byte, 8)); n != 0 || err != io.EOF {
					t.Fatalf("round %d, message %d: Read after WriteTo = %d, %v; want 0, io.EOF", round, i+1, n, err)
				}
			} else if _, err := got.ReadFrom(r); err != nil {
				t.Fatalf("round %d, message %d: %v", round, i+1, err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("round %d, message %d: got %d octets %.40q, want %d octets %.40q", round, i+1, got.Len(), got.Bytes(), len(want), want)
			}
			r.Close()
		}
	}
	if viaWriteTo < len(msgs) {
		t.Errorf("%d of %d messages were served from read-ahead (io.WriterTo), want most", viaWriteTo, 2*len(msgs))
	}
}
