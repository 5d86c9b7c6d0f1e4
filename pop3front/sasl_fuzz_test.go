package pop3front

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// FuzzSASLDecode checks the SASL response decoder and the PLAIN parser
// (RFC 5034 section 4, RFC 4616) on arbitrary lines: no panic; "=" is the
// empty response; anything accepted is base64 (padded or not) without
// CR, LF, NUL or space and decodes to what encoding/base64 says; a PLAIN
// message splits into parts that rebuild it exactly.
func FuzzSASLDecode(f *testing.F) {
	for _, s := range []string{
		"=", "", "*", "AGFsaWNlAHNlY3JldA==", "AGFsaWNlAHNlY3JldA", "YWRtaW4AYWxpY2UAc2VjcmV0",
		"a=b=", "!!!!", "QUFB\r\n", "QU FB", "QQ", "QQ=", "QQ==", "QQ===", "AAAA", "AA==AA==",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		out, ok := decodeSASL(line)
		if !ok {
			return
		}
		if string(line) == "=" {
			if len(out) != 0 {
				t.Fatalf("%q decoded to %q", line, out)
			}
			return
		}
		if len(line) == 0 || bytes.ContainsAny(line, "\r\n\x00 ") {
			t.Fatalf("accepted %q", line)
		}
		want, err := base64.StdEncoding.DecodeString(string(line))
		if err != nil {
			if want, err = base64.RawStdEncoding.DecodeString(string(line)); err != nil {
				t.Fatalf("accepted invalid base64 %q", line)
			}
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("%q decoded to %q, want %q", line, out, want)
		}
		authz, authc, pass, ok := parsePlain(out)
		if !ok {
			return
		}
		if len(authc) == 0 || bytes.IndexByte(authz, 0) >= 0 || bytes.IndexByte(authc, 0) >= 0 || bytes.IndexByte(pass, 0) >= 0 {
			t.Fatalf("PLAIN %q split into %q %q %q", out, authz, authc, pass)
		}
		if rebuilt := bytes.Join([][]byte{authz, authc, pass}, []byte{0}); !bytes.Equal(rebuilt, out) {
			t.Fatalf("PLAIN %q rebuilt as %q", out, rebuilt)
		}
	})
}
