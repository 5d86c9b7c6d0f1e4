package upstreams

import (
	"bytes"
	"testing"
)

func TestMailutilsStartsAndServes(t *testing.T) {
	s := StartMailutils(t, User{Name: "alice", Password: "pw a"}, User{Name: "bob", Password: "pw-b"})
	raw := []byte("From: x@example.org\r\nSubject: hi\r\n\r\nhello\r\n")
	s.Append(t, "alice", "INBOX", raw, raw)
	got := s.Messages(t, "alice", "INBOX")
	if len(got) != 2 {
		t.Fatalf("%d messages", len(got))
	}
	// mailutils adds X-IMAPbase (first message), X-UID and Status headers.
	if !bytes.HasPrefix(got[1].Body, []byte("From: x@example.org\r\nSubject: hi\r\n")) || !bytes.HasSuffix(got[1].Body, []byte("\r\n\r\nhello\r\n")) {
		t.Errorf("served %q", got[1].Body)
	}
	if n := len(s.Messages(t, "bob", "INBOX")); n != 0 {
		t.Errorf("bob has %d messages", n)
	}
	t.Logf("%s: %q", s.Version, got[0].Body)
}

func TestCyrusStartsAndServes(t *testing.T) {
	s := StartCyrus(t, User{Name: "alice", Password: "pw"})
	raw := []byte("From: x@example.org\r\nSubject: caf\xe9\r\n\r\nhello\r\n")
	errs := s.TryAppend(t, "alice", "INBOX", raw, []byte("Subject: bare\n\nLF\n"))
	if errs[0] != nil || errs[1] == nil {
		t.Fatalf("APPEND results %v (want the bare-LF message refused)", errs)
	}
	got := s.Messages(t, "alice", "INBOX")
	if len(got) != 1 || string(got[0].Body) != "From: x@example.org\r\nSubject: cafX\r\n\r\nhello\r\n" {
		t.Fatalf("served %+v", got)
	}
	if n := len(s.Messages(t, "alice", "Trash")); n != 0 {
		t.Errorf("Trash holds %d", n)
	}
	t.Log(s.Version)
}
