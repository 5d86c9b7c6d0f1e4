package imapback

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestSnapFilter: whatever the split of the input into reads, the filter
// consumes exactly the snapshot lines it understands and passes every
// other byte to go-imap, in order; literals pass raw, and after the
// tagged line everything passes.
func TestSnapFilter(t *testing.T) {
	in := "ining line go-imap had begun\r\n" +
		"* 1 FETCH (UID 10 RFC822.SIZE 100 FLAGS (\\Seen))\r\n" +
		"* 2 FETCH (FLAGS (\\Deleted) UID 11 RFC822.SIZE 5)\r\n" +
		"* 3 EXISTS\r\n" +
		"* 3 FETCH (RFC822.SIZE 7 UID 12 FLAGS ($POP3Deleted \\Answered))\r\n" +
		"* 4 fetch (uid 13 rfc822.size 8 flags ())\r\n" +
		"* 5 FETCH (UID 14 RFC822.SIZE 9 MODSEQ (3) FLAGS ())\r\n" +
		"* 6 FETCH (UID 15 RFC822.SIZE 9 BODY[] {12}\r\n* 7 FETCH (U)\r\n" +
		"* 8 FETCH (UID 16 RFC822.SIZE 10 FLAGS (\"q\"))\r\n" +
		"* 9 FETCH (UID 17)\r\n" +
		"* 10 FETCH (UID 18 RFC822.SIZE 1 FLAGS ())\r\n" +
		"A7 OK done\r\n" +
		"* 11 FETCH (UID 19 RFC822.SIZE 1 FLAGS ())\r\n"
	wantOut := "ining line go-imap had begun\r\n" +
		"* 3 EXISTS\r\n" +
		"* 5 FETCH (UID 14 RFC822.SIZE 9 MODSEQ (3) FLAGS ())\r\n" +
		"* 6 FETCH (UID 15 RFC822.SIZE 9 BODY[] {12}\r\n* 7 FETCH (U)\r\n" +
		"* 8 FETCH (UID 16 RFC822.SIZE 10 FLAGS (\"q\"))\r\n" +
		"* 9 FETCH (UID 17)\r\n" +
		"A7 OK done\r\n" +
		"* 11 FETCH (UID 19 RFC822.SIZE 1 FLAGS ())\r\n"
	m := &maildrop{policy: Policy{Delete: DeleteKeyword, Keyword: "$POP3Deleted"}}
	wantEntries := []entry{{uid: 10, size: 100}, {uid: 13, size: 8}, {uid: 18, size: 1}}
	for _, chunk := range []int{1, 2, 3, 7, 64, len(in)} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			f := newSnapFilter(m.hiddenRaw, 0)
			var out bytes.Buffer
			for off := 0; off < len(in); off += chunk {
				data := []byte(in[off:min(off+chunk, len(in))])
				if len(f.partial) > 0 {
					data = append(f.partial, data...)
				}
				f.partial = append([]byte(nil), f.process(data)...)
				out.Write(f.out)
				f.out = f.out[:0]
			}
			out.Write(f.partial)
			if out.String() != wantOut {
				t.Errorf("passed through:\n%s\nwant:\n%s", out.String(), wantOut)
			}
			if !slices.Equal(f.entries, wantEntries) {
				t.Errorf("entries %v, want %v", f.entries, wantEntries)
			}
		})
	}
}

// TestSnapFilterLongLine: a line longer than the filter's limit makes it
// give up and pass everything through.
func TestSnapFilterLongLine(t *testing.T) {
	f := newSnapFilter(func([]byte) bool { return false }, 0)
	f.sync = false
	long := "* 1 FETCH (UID 1 RFC822.SIZE 1 FLAGS (" + strings.Repeat("$k ", maxFilterLine/3+10) + "))\r\n"
	rest := f.process([]byte(long[:maxFilterLine+5]))
	rest = f.process(append(rest, long[maxFilterLine+5:]+"* 2 FETCH (UID 2 RFC822.SIZE 1 FLAGS ())\r\n"...))
	if len(rest) != 0 || len(f.entries) != 0 || !strings.HasSuffix(string(f.out), "* 2 FETCH (UID 2 RFC822.SIZE 1 FLAGS ())\r\n") {
		t.Errorf("rest %d entries %v out %d", len(rest), f.entries, len(f.out))
	}
}
