package pop3front

import (
	"strings"
	"testing"
)

// TestWriterToStreamSameBytes: a stream written with WriteTo (a message
// in memory) gives the client exactly what the Read path gives: RETR
// dot-stuffed with its terminator, TOP cut at its lines.
func TestWriterToStreamSameBytes(t *testing.T) {
	script := "USER alice\r\nPASS secret\r\nRETR 1\r\nRETR 2\r\nTOP 2 1\r\nTOP 2 0\r\nQUIT\r\n"
	var got [2]string
	for i, wt := range []bool{false, true} {
		be, addr := startFake(t, nil)
		be.WriterTo = wt
		got[i] = pipelined(t, addr, script, 0)
	}
	if got[0] != got[1] {
		t.Errorf("WriteTo path:\n%q\nwant the Read path's:\n%q", got[1], got[0])
	}
	want := "+OK 44 octets\r\nSubject: two\r\nX: y\r\n\r\nline 1\r\n..dot\r\nline 3\r\n.\r\n" +
		"+OK\r\nSubject: two\r\nX: y\r\n\r\nline 1\r\n.\r\n"
	if !strings.Contains(got[1], want) {
		t.Errorf("WriteTo path:\n%q\nlacks\n%q", got[1], want)
	}
}
