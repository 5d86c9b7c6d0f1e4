package testmail

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
)

// BigAttachmentSize is the decoded size of Big's attachment: 4 MiB, which
// makes the message about 5.6 MB on the wire.
const BigAttachmentSize = 4 << 20

// Big returns a multipart message with a base64 attachment of
// BigAttachmentSize deterministic pseudo-random octets (generated, not
// stored), in 76-character CRLF lines.
func Big() Message {
	const name = "big-attachment"
	data := make([]byte, BigAttachmentSize)
	rng := rand.NewChaCha8([32]byte{'p', 'o', 'p', 'b', 'r', 'i', 'd', 'g', 'e'})
	_, _ = rng.Read(data)

	enc := base64.StdEncoding.EncodeToString(data)
	var b bytes.Buffer
	b.Grow(len(enc) + len(enc)/76*2 + 2048)
	b.WriteString(header(name, "A 5 MB attachment",
		`Content-Type: multipart/mixed; boundary="=_popbridge_boundary"`))
	b.WriteString("\r\nThis is a multi-part message in MIME format.\r\n\r\n" +
		"--=_popbridge_boundary\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n" +
		"See the attachment.\r\n.\r\n\r\n" +
		"--=_popbridge_boundary\r\n" +
		"Content-Type: application/octet-stream; name=\"random.bin\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"random.bin\"\r\n\r\n")
	for len(enc) > 0 {
		n := min(76, len(enc))
		b.WriteString(enc[:n])
		b.WriteString("\r\n")
		enc = enc[n:]
	}
	b.WriteString("--=_popbridge_boundary--\r\n")
	return newMessage(name, "5 MB+ message with a base64 attachment", b.Bytes())
}
