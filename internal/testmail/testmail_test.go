package testmail

import (
	"bytes"
	"testing"
)

func TestCorpusNamesAndContentsUnique(t *testing.T) {
	seen := map[string]bool{}
	bodies := map[string]string{}
	for _, m := range append(Small(), Big()) {
		if seen[m.Name] {
			t.Errorf("duplicate name %q", m.Name)
		}
		seen[m.Name] = true
		if other, ok := bodies[string(m.Served)]; ok {
			t.Errorf("%s and %s have the same contents", m.Name, other)
		}
		bodies[string(m.Served)] = m.Name
		if !bytes.Equal(m.Served, DovecotServes(m.Raw)) {
			t.Errorf("%s: Served is not DovecotServes(Raw)", m.Name)
		}
	}
}

func TestBigIsDeterministicAndLarge(t *testing.T) {
	a, b := Big(), Big()
	if !bytes.Equal(a.Raw, b.Raw) {
		t.Fatal("Big is not deterministic")
	}
	if len(a.Raw) < 5<<20 {
		t.Fatalf("Big is %d octets, want over 5 MiB", len(a.Raw))
	}
	if bytes.Contains(a.Raw, []byte("\n\n")) || bytes.Count(a.Raw, []byte("\n")) != bytes.Count(a.Raw, []byte("\r\n")) {
		t.Fatal("Big must use CRLF line endings only")
	}
}

func TestDovecotServes(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"a\r\nb\nc\n", "a\r\nb\r\nc\r\n"},
		{"\n", "\r\n"},
		{"x\x00y", "x\x80y"},
		{"no final", "no final"},
		{"cr\ronly", "cr\ronly"},
	} {
		if got := string(DovecotServes([]byte(c.in))); got != c.want {
			t.Errorf("DovecotServes(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDotStuff(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{".\r\n", "..\r\n"},
		{"a\r\n.b\r\n..\r\n", "a\r\n..b\r\n...\r\n"},
		{"a\r\n.", "a\r\n..\r\n"},
		{"no final", "no final\r\n"},
		{" .x\r\n", " .x\r\n"},
	} {
		if got := string(DotStuff([]byte(c.in))); got != c.want {
			t.Errorf("DotStuff(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDovecotPOP3Serves(t *testing.T) {
	if got := string(DovecotPOP3Serves([]byte("a\x00b\nc"))); got != "a\x00b\r\nc" {
		t.Fatalf("got %q, want %q", got, "a\x00b\r\nc")
	}
}
