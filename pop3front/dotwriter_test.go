package pop3front

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net/textproto"
	"strings"
	"testing"
)

// encode runs in through a dotWriter in chunks of size chunk (0: one
// write) and returns the wire bytes.
func encode(t testing.TB, in string, chunk int, top bool, lines int) string {
	t.Helper()
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, minDotBuffer)
	var d dotWriter
	d.reset(bw, top, lines)
	for p := []byte(in); len(p) > 0; {
		n := len(p)
		if chunk > 0 {
			n = min(chunk, n)
		}
		m, err := d.Write(p[:n])
		if err == errTopDone {
			break
		}
		if err != nil || m != n {
			t.Fatalf("Write = %d, %v", m, err)
		}
		if d.Done() {
			break
		}
		p = p[n:]
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

var dotCases = []struct {
	name, in, want string
}{
	{"empty message", "", ".\r\n"},
	{"one line", "a\r\n", "a\r\n.\r\n"},
	{"no final CRLF", "a\r\nb", "a\r\nb\r\n.\r\n"},
	{"line that is a dot", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
	{"leading dots", ".a\r\n..b\r\n", "..a\r\n...b\r\n.\r\n"},
	{"dot first line no CRLF", ".", "..\r\n.\r\n"},
	{"dot not at line start", "a.b\r\n a.\r\n", "a.b\r\n a.\r\n.\r\n"},
	{"bare LF", "a\nb\n", "a\r\nb\r\n.\r\n"},
	{"bare LF dot", "a\n.\n", "a\r\n..\r\n.\r\n"},
	{"bare CR", "a\rb\r", "a\rb\r\r\n.\r\n"},
	{"bare CR then dot", "a\r.b\r\n", "a\r.b\r\n.\r\n"},
	{"CR CR LF", "a\r\r\nb\r\n", "a\r\r\nb\r\n.\r\n"},
	{"LF CR", "a\n\rb", "a\r\n\rb\r\n.\r\n"},
	{"CR LF split", "a\r", "a\r\r\n.\r\n"},
	{"empty lines", "\r\n\n\r\n", "\r\n\r\n\r\n.\r\n"},
	{"terminator-like body", "\r\n.\r\n", "\r\n..\r\n.\r\n"},
	{"long line", strings.Repeat("x", 300) + "\r\n", strings.Repeat("x", 300) + "\r\n.\r\n"},
	{"NUL kept", "a\x00b\r\n", "a\x00b\r\n.\r\n"},
}

func TestDotWriterExact(t *testing.T) {
	for _, c := range dotCases {
		t.Run(c.name, func(t *testing.T) {
			for _, chunk := range []int{0, 1, 2, 3, 5} {
				if got := encode(t, c.in, chunk, false, 0); got != c.want {
					t.Errorf("chunk %d: got %q, want %q", chunk, got, c.want)
				}
			}
		})
	}
}

// TestDotWriterBareCR: a CR not followed by LF is data, passed through
// as Dovecot's POP3 does, so a RETR carries exactly the octets LIST
// counted; it neither ends a line (TOP) nor starts one (no dot-stuffing
// after it).
func TestDotWriterBareCR(t *testing.T) {
	msg := "A: 1\r\nB: x\ry\r\n\r\nl1 ->\r<-\r\n.\rl2\r\nl3\r\n"
	for _, chunk := range []int{0, 1, 2, 3, 7} {
		got := encode(t, msg, chunk, false, 0)
		want := "A: 1\r\nB: x\ry\r\n\r\nl1 ->\r<-\r\n..\rl2\r\nl3\r\n.\r\n"
		if got != want {
			t.Errorf("RETR, chunk %d: got %q, want %q", chunk, got, want)
		}
		// Without the stuffing and the terminator: the message itself.
		if body := strings.TrimSuffix(strings.Replace(got, "\n..", "\n.", 1), ".\r\n"); len(body) != len(msg) {
			t.Errorf("RETR, chunk %d: %d octets sent, message is %d", chunk, len(body), len(msg))
		}
		got = encode(t, msg, chunk, true, 1)
		if want := "A: 1\r\nB: x\ry\r\n\r\nl1 ->\r<-\r\n.\r\n"; got != want {
			t.Errorf("TOP 1, chunk %d: got %q, want %q", chunk, got, want)
		}
	}
}

func TestDotWriterTop(t *testing.T) {
	msg := "A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n"
	cases := []struct {
		in    string
		lines int
		want  string
	}{
		{msg, 0, "A: 1\r\nB: 2\r\n\r\n.\r\n"},
		{msg, 1, "A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n"},
		{msg, 2, "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\n.\r\n"},
		{msg, 3, "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n"},
		{msg, 1000, "A: 1\r\nB: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n"},
		{"A: 1\nB: 2\n\nl1\nl2\n", 1, "A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n"},
		{"A: 1\r\n", 0, "A: 1\r\n.\r\n"},                              // no body, no blank line
		{"A: 1", 0, "A: 1\r\n.\r\n"},                                  // not even a line end
		{"\r\nbody\r\n", 0, "\r\n.\r\n"},                              // empty header
		{"A: 1\r\n\r\nl1", 5, "A: 1\r\n\r\nl1\r\n.\r\n"},              // body without CRLF
		{"A: 1\r\n\r\n\r\n\r\nx\r\n", 2, "A: 1\r\n\r\n\r\n\r\n.\r\n"}, // empty body lines count
	}
	for _, c := range cases {
		for _, chunk := range []int{0, 1, 4} {
			if got := encode(t, c.in, chunk, true, c.lines); got != c.want {
				t.Errorf("TOP %d of %q (chunk %d): got %q, want %q", c.lines, c.in, chunk, got, c.want)
			}
		}
	}
}

// normalise is the reference for what a client reads back, as Dovecot's
// POP3 sends it: a bare LF becomes CRLF, a bare CR stays as it is, and a
// message not ending in a line end gets CRLF.
func normalise(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' && (i == 0 || s[i-1] != '\r') {
			b.WriteByte('\r')
		}
		b.WriteByte(s[i])
	}
	if s != "" && !strings.HasSuffix(s, "\n") {
		b.WriteString("\r\n")
	}
	return b.String()
}

// TestDotWriterRoundTrip is a property test: for random messages built
// from the awkward bytes and random chunkings, decoding the output with
// net/textproto's DotReader gives back the normalised message, the
// output is a valid dot-stuffed body, and chunking never matters.
func TestDotWriterRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{".", "\r", "\n", "\r\n", "a", "..", " ", "\x00", "é"}
	for i := 0; i < 2000; i++ {
		var b strings.Builder
		for n := rng.IntN(40); n > 0; n-- {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		in := b.String()
		whole := encode(t, in, 0, false, 0)
		if got := encode(t, in, 1+rng.IntN(7), false, 0); got != whole {
			t.Fatalf("%q: chunked %q != whole %q", in, got, whole)
		}
		checkDotBody(t, whole)
		dec, err := io.ReadAll(textproto.NewReader(bufio.NewReader(strings.NewReader(whole))).DotReader())
		if err != nil {
			t.Fatalf("%q: decode: %v", in, err)
		}
		// DotReader turns CRLF into LF.
		if want := strings.ReplaceAll(normalise(in), "\r\n", "\n"); string(dec) != want {
			t.Fatalf("%q: round trip %q, want %q", in, dec, want)
		}
	}
}

// checkDotBody asserts the wire form: lines end in CRLF, no LF elsewhere
// (a bare CR is data), every line starting with "." is stuffed, and the
// only terminator is the last line.
func checkDotBody(t testing.TB, out string) {
	t.Helper()
	if !strings.HasSuffix(out, ".\r\n") {
		t.Fatalf("%q: no terminator, want suffix %q", out, ".\r\n")
	}
	lines := strings.Split(strings.TrimSuffix(out, ".\r\n"), "\r\n")
	lines = lines[:len(lines)-1] // after the final CRLF
	for _, l := range lines {
		if strings.Contains(l, "\n") {
			t.Fatalf("%q: bare LF in line %q", out, l)
		}
		if strings.HasPrefix(l, ".") && !strings.HasPrefix(l, "..") {
			t.Fatalf("%q: unstuffed line %q", out, l)
		}
	}
}

// writeRecorder records every Write it gets (one per flush).
type writeRecorder struct{ writes []string }

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// TestDotWriterTerminatorNotAlone: whatever the buffer fill, the
// terminator goes out in the same write as the last body octets.
func TestDotWriterTerminatorNotAlone(t *testing.T) {
	for size := 1; size < 300; size++ {
		for _, bufSize := range []int{64, 100} {
			rec := &writeRecorder{}
			bw := bufio.NewWriterSize(rec, bufSize)
			bw.WriteString("+OK x octets\r\n")
			var d dotWriter
			d.reset(bw, false, 0)
			body := strings.Repeat("y", size-1) + "\n"
			io.Copy(&d, strings.NewReader(body))
			d.Close()
			bw.Flush()
			last := rec.writes[len(rec.writes)-1]
			if !strings.HasSuffix(last, "\r\n.\r\n") {
				t.Fatalf("size %d buf %d: last write %q, want suffix %q", size, bufSize, last, "\r\n.\r\n")
			}
			if got := strings.Join(rec.writes, ""); got != "+OK x octets\r\n"+strings.Repeat("y", size-1)+"\r\n.\r\n" {
				t.Fatalf("size %d: %q", size, got)
			}
		}
	}
}

func TestDotWriterWriteError(t *testing.T) {
	bw := bufio.NewWriterSize(failWriter{}, 64)
	var d dotWriter
	d.reset(bw, false, 0)
	_, err := d.Write(bytes.Repeat([]byte("z\r\n"), 100))
	if err == nil {
		t.Fatal("no error from a failing writer")
	}
	if d.Close() == nil {
		t.Fatal("Close after a write error succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, io.ErrClosedPipe }

func TestDotWriterAllocs(t *testing.T) {
	msg := []byte(strings.Repeat("Line of text\r\n.dot line\n\rcr\r\n", 100))
	bw := bufio.NewWriterSize(io.Discard, 32<<10)
	var d dotWriter
	allocs := testing.AllocsPerRun(100, func() {
		d.reset(bw, false, 0)
		d.Write(msg)
		d.Close()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per message, want 0", allocs)
	}
}

// BenchmarkDotWriter streams a 1 MiB message with a dot line, a bare LF
// and ordinary 76-octet lines through the copy path the session uses.
func BenchmarkDotWriter(b *testing.B) {
	var msg []byte
	for len(msg) < 1<<20 {
		msg = append(msg, strings.Repeat("x", 74)+"\r\n"...)
		msg = append(msg, ".leading dot\r\nbare lf\n"...)
	}
	bw := bufio.NewWriterSize(io.Discard, transWriteBuffer)
	buf := make([]byte, copyBufferSize)
	var d dotWriter
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	r := bytes.NewReader(msg)
	var src io.Reader = struct{ io.Reader }{r} // hide WriterTo: use buf
	for b.Loop() {
		r.Reset(msg)
		d.reset(bw, false, 0)
		io.CopyBuffer(&d, src, buf)
		d.Close()
		bw.Flush()
	}
}
