package oracle

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"go.uber.org/goleak"

	"github.com/popbridge/popbridge/internal/memupstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func msg(uid uint32, sha string, flags ...string) Msg {
	return Msg{UID: uid, Size: 10, SHA256: sha, Flags: flags}
}

func TestCheck(t *testing.T) {
	before := []Msg{msg(1, "a"), msg(2, "b", `\Flagged`), msg(3, "c")}
	cases := []struct {
		name  string
		after []Msg
		r     Rules
		want  string // substring of the error; "" for none
	}{
		{"unchanged", before, Rules{Policy: "expunge"}, ""},
		{"expunged deleted", []Msg{msg(1, "a"), msg(2, "b", `\Flagged`)}, Rules{Policy: "expunge", Deleted: []uint32{3}}, ""},
		{"partial expunge", []Msg{msg(1, "a"), msg(2, "b", `\Flagged`), msg(3, "c", `\Deleted`)}, Rules{Policy: "expunge", Deleted: []uint32{2, 3}}, ""},
		{"expunged other", []Msg{msg(1, "a"), msg(3, "c")}, Rules{Policy: "expunge", Deleted: []uint32{3}}, "removed without a DELE"},
		{"flag policy never removes", []Msg{msg(1, "a"), msg(2, "b", `\Flagged`)}, Rules{Policy: "flag", Deleted: []uint32{3}}, "removed"},
		{"seen on retrieved", []Msg{msg(1, "a", `\Seen`), before[1], before[2]}, Rules{Policy: "flag", Retrieved: []uint32{1}}, ""},
		{"seen on other", []Msg{msg(1, "a", `\Seen`), before[1], before[2]}, Rules{Policy: "flag", Retrieved: []uint32{2}}, "outside the rules"},
		{"keyword", []Msg{msg(1, "a", `$POP3Deleted`), before[1], before[2]}, Rules{Policy: "keyword", Deleted: []uint32{1}}, ""},
		{"deleted under keyword", []Msg{msg(1, "a", `\Deleted`), before[1], before[2]}, Rules{Policy: "keyword", Deleted: []uint32{1}}, "outside the rules"},
		{"flag removed", []Msg{before[0], msg(2, "b"), before[2]}, Rules{Policy: "flag"}, `flag \Flagged removed`},
		{"bytes changed", []Msg{msg(1, "x"), before[1], before[2]}, Rules{Policy: "flag"}, "bytes changed"},
		{"new", append(before, msg(4, "d")), Rules{Policy: "flag"}, "new message"},
		{"new allowed", append(before, msg(4, "d")), Rules{Policy: "flag", AllowNew: true}, ""},
	}
	for _, c := range cases {
		err := Check(before, c.after, c.r)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	if err := CheckApplied([]Msg{msg(1, "a")}, Rules{Policy: "expunge", Deleted: []uint32{1}}); err == nil {
		t.Error("CheckApplied: present message under expunge passed")
	}
	if err := CheckCopied(before, before[:2], []Msg{msg(9, "c")}); err != nil {
		t.Error(err)
	}
	if err := CheckCopied(before, before[:2], nil); err == nil {
		t.Error("CheckCopied: missing copy passed")
	}
}

func TestTakeMemUpstream(t *testing.T) {
	srv, err := memupstream.Start("127.0.0.1:0", memupstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AddUser("u", "p")
	srv.Append("u", "INBOX", []byte("Subject: 1\r\n\r\none\r\n"))
	srv.Append("u", "INBOX", []byte("Subject: 2\r\n\r\ntwo\r\n"), imap.FlagFlagged)
	a := Account{Addr: srv.Addr(), User: "u", Password: "p"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before, uv, err := Take(ctx, a, "INBOX")
	if err != nil || len(before) != 2 || uv == 0 {
		t.Fatalf("Take: %v %v %d", before, err, uv)
	}
	if before[0].SHA256 != SHA256([]byte("Subject: 1\r\n\r\none\r\n")) || before[1].Flags[0] != `\Flagged` {
		t.Fatalf("state %v", before)
	}
	again, _, _ := Take(ctx, a, "INBOX")
	if err := CheckUnchanged(before, again); err != nil {
		t.Fatal(err)
	}
	c, err := imapclient.DialInsecure(srv.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Login("u", "p").Wait()
	c.Select("INBOX", nil).Wait()
	c.Store(imap.UIDSetNum(imap.UID(before[0].UID)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	after, _, _ := Take(ctx, a, "INBOX")
	if err := Check(before, after, Rules{Policy: "flag", Deleted: []uint32{before[0].UID}}); err != nil {
		t.Fatal(err)
	}
	if err := Check(before, after, Rules{Policy: "flag"}); err == nil {
		t.Fatal("undeleted \\Deleted passed")
	}
}
