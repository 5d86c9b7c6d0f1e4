package pop3front

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

// benchMessage is a realistic message: a short text part with a few
// lines to stuff, then base64 in 76-column CRLF lines.
func benchMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nSubject: bench\r\n\r\nSee attached.\r\n.\r\n..\r\n")
	raw := make([]byte, size*3/4)
	rand.NewChaCha8([32]byte{1}).Read(raw)
	enc := base64.StdEncoding.EncodeToString(raw)
	for len(enc) > 0 && b.Len() < size {
		n := min(76, len(enc))
		b.WriteString(enc[:n] + "\r\n")
		enc = enc[n:]
	}
	return b.Bytes()
}

// benchText is plain text: 60-75 column CRLF lines, every 23rd starting
// with a dot.
func benchText(size int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		if i%23 == 7 {
			b.WriteString(".")
		}
		b.WriteString(strings.Repeat("lorem ipsum ", 5+i%2) + "\r\n")
	}
	return b.Bytes()
}

func benchDotWriter(b *testing.B, msg []byte) {
	bw := bufio.NewWriterSize(io.Discard, transWriteBuffer)
	buf := make([]byte, copyBufferSize)
	var d dotWriter
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	r := bytes.NewReader(msg)
	var src io.Reader = struct{ io.Reader }{r}
	for b.Loop() {
		r.Reset(msg)
		d.reset(bw, false, 0)
		io.CopyBuffer(&d, src, buf)
		d.Close()
		bw.Flush()
	}
}

// BenchmarkDotWriterBase64: the bulk of real mail octets (attachments).
func BenchmarkDotWriterBase64(b *testing.B) { benchDotWriter(b, benchMessage(1<<20)) }

// BenchmarkDotWriterText: text with dot-stuffed lines.
func BenchmarkDotWriterText(b *testing.B) { benchDotWriter(b, benchText(1<<20)) }

// benchDrop serves one message for every index, from memory.
type benchDrop struct {
	msgs []MessageInfo
	body []byte
}

func (d *benchDrop) Login(context.Context, *LoginRequest) (Maildrop, error) { return d, nil }
func (d *benchDrop) Messages() []MessageInfo                                { return d.msgs }
func (d *benchDrop) Open(context.Context, int, Section) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(d.body)), nil
}
func (d *benchDrop) Noop(context.Context) error            { return nil }
func (d *benchDrop) Commit(context.Context, Outcome) error { return nil }
func (d *benchDrop) Close() error                          { return nil }

// benchRETR streams RETR through a whole session over loopback: command
// parsing, Open, the copy loop, dot-stuffing, flushing. The client only
// counts lines.
func benchRETR(b *testing.B, size, depth int) {
	body := benchMessage(size)
	d := &benchDrop{body: body}
	for i := range 64 {
		d.msgs = append(d.msgs, MessageInfo{Size: int64(len(body)), UIDL: fmt.Sprintf("uid%d", i)})
	}
	addr := testServer(b, &Server{Backend: d})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Hour))
	br := bufio.NewReaderSize(c, 64<<10)
	io.WriteString(c, "USER u\r\nPASS p\r\n")
	for range 3 {
		l, err := br.ReadSlice('\n')
		if err != nil || l[0] != '+' {
			b.Fatalf("login: %q %v", l, err)
		}
	}
	var cmds []byte
	for i := range depth {
		cmds = append(cmds, "RETR "+string(rune('1'+i%9))+"\r\n"...)
	}
	b.SetBytes(int64(len(body) * depth))
	b.ReportAllocs()
	for b.Loop() {
		c.Write(cmds)
		for range depth {
			for {
				l, err := br.ReadSlice('\n')
				if err != nil {
					b.Fatal(err)
				}
				if len(l) == 3 && l[0] == '.' {
					break
				}
			}
		}
	}
}

// BenchmarkRETRSession1M: one 1 MB RETR at a time.
func BenchmarkRETRSession1M(b *testing.B) { benchRETR(b, 1<<20, 1) }

// BenchmarkRETRSession4K16: 4 KB messages, 16 RETRs pipelined.
func BenchmarkRETRSession4K16(b *testing.B) { benchRETR(b, 4<<10, 16) }
