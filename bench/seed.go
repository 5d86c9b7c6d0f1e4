package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// Deterministic messages, all CRLF. Every body holds a few lines starting
// with "." so that dot-stuffing is exercised as in real mail.

// textMessage returns a message of about size octets of text lines.
func textMessage(seed uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x706f7062))
	var b bytes.Buffer
	b.Grow(size + 200)
	fmt.Fprintf(&b, "Return-Path: <sender%d@example.org>\r\n", seed%97)
	fmt.Fprintf(&b, "From: Sender %d <sender%d@example.org>\r\n", seed%97, seed%97)
	b.WriteString("To: user@example.org\r\n")
	fmt.Fprintf(&b, "Subject: benchmark message %d\r\n", seed)
	fmt.Fprintf(&b, "Message-ID: <%d.bench@example.org>\r\n", seed)
	b.WriteString("Date: Mon, 2 Nov 2026 10:00:00 +0000\r\n")
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	const words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua"
	w := strings.Fields(words)
	line := 0
	for b.Len() < size-2 {
		n := 0
		if line%23 == 7 {
			b.WriteString(".")
			n++
		}
		for n < 60+rng.IntN(12) && b.Len()+n < size-2 {
			s := w[rng.IntN(len(w))]
			b.WriteString(s)
			b.WriteByte(' ')
			n += len(s) + 1
		}
		b.WriteString("\r\n")
		line++
	}
	return b.Bytes()
}

// bigMessage returns a message with a base64 attachment of about size
// octets in 76-character lines.
func bigMessage(seed uint64, size int) []byte {
	raw := make([]byte, size*3/4)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'b', 'e', 'n', 'c', 'h'})
	rng.Read(raw)
	enc := base64.StdEncoding.EncodeToString(raw)
	var b bytes.Buffer
	b.Grow(len(enc)*78/76 + 1024)
	fmt.Fprintf(&b, "From: Big Sender <big%d@example.org>\r\nTo: user@example.org\r\n", seed)
	fmt.Fprintf(&b, "Subject: big attachment %d\r\nMessage-ID: <big%d.bench@example.org>\r\n", seed, seed)
	b.WriteString("Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n--=_b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n.\r\n..\r\n\r\n")
	b.WriteString("--=_b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for len(enc) > 0 {
		n := min(76, len(enc))
		b.WriteString(enc[:n])
		b.WriteString("\r\n")
		enc = enc[n:]
	}
	b.WriteString("--=_b--\r\n")
	return b.Bytes()
}

// mailboxSpec describes one seeded mailbox.
type mailboxSpec struct {
	user  string
	count int
	gen   func(i int) []byte
}

// spec1k: 1,000 x 4 KB with 20 x 5 MB spread among them (every 51st).
func spec1k(user string, small, big int) mailboxSpec {
	return mailboxSpec{user: user, count: small + big, gen: func(i int) []byte {
		if big > 0 && i%51 == 50 && i/51 < big {
			return bigMessage(uint64(i), 5<<20)
		}
		return textMessage(uint64(i), 4096)
	}}
}

func spec4k(user string, n int) mailboxSpec {
	return mailboxSpec{user: user, count: n, gen: func(i int) []byte { return textMessage(uint64(i), 4096) }}
}

// specMedium: n messages of 20-80 KB, different per user number u.
func specMedium(user string, u, n int) mailboxSpec {
	return mailboxSpec{user: user, count: n, gen: func(i int) []byte {
		seed := uint64(u)<<32 | uint64(i)
		size := 20<<10 + int(seed*2654435761%(60<<10))
		return textMessage(seed, size)
	}}
}

// maildirSink writes messages into a Maildir's cur/ directly, with S= and
// W= in the file name so Dovecot never has to open a file to learn its
// size (the messages are CRLF, so both are the file size).
type maildirSink struct {
	dir      string
	uid, gid int
	seq      int
	prefix   string
}

func (s *maildirSink) add(msg []byte) error {
	s.seq++
	name := fmt.Sprintf("%s.%07d.bench,S=%d,W=%d:2,", s.prefix, s.seq, len(msg), len(msg))
	tmp := filepath.Join(s.dir, "tmp", name)
	if err := os.WriteFile(tmp, msg, 0o600); err != nil {
		return err
	}
	if err := os.Chown(tmp, s.uid, s.gid); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir, "cur", name))
}

// link adds a hard link to a file another sink wrote (same content).
func (s *maildirSink) link(src string) error {
	s.seq++
	return os.Link(src, filepath.Join(s.dir, "cur", filepath.Base(src)))
}
