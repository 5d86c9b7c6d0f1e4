package memupstream

import "strings"

// DemoMessages returns a handful of realistic messages with CRLF line
// endings, oldest first: a plain note, a reply in a thread, a newsletter
// with an HTML alternative, a message with a small attachment, and one
// with a line that is a lone "." and lines with leading dots (to exercise
// POP3 dot-stuffing).
func DemoMessages() [][]byte {
	msgs := []string{
		`Return-Path: <alice@example.org>
From: Alice Example <alice@example.org>
To: Demo User <demo@example.org>
Subject: Welcome to popbridge
Date: Mon, 02 Mar 2026 09:15:00 +0000
Message-ID: <welcome-1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Hi,

this mailbox lives in memory inside the gateway's demo upstream.
Download it over POP3, delete a message, and watch the flags change
with any IMAP client on port 1143.

Nothing here is kept: restart the gateway and it is all back.

Alice
`,
		`From: Bob Builder <bob@example.net>
To: Alice Example <alice@example.org>
Cc: Demo User <demo@example.org>
Subject: Re: Lunch on Thursday?
Date: Tue, 03 Mar 2026 12:01:30 +0100
Message-ID: <reply-2@example.net>
In-Reply-To: <lunch-1@example.org>
References: <lunch-1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Thursday works for me. The usual place at 12:30?

Bob

On Tue, 3 Mar 2026, Alice Example wrote:
> Anyone up for lunch on Thursday?
>
> Alice
`,
		`From: "The Weekly Byte" <news@newsletter.example.com>
To: demo@example.org
Subject: The Weekly Byte #42: tabs versus spaces, settled
Date: Wed, 04 Mar 2026 06:00:00 +0000
Message-ID: <issue-42@newsletter.example.com>
List-Unsubscribe: <mailto:unsubscribe@newsletter.example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="=_alt_42"

This is a multi-part message in MIME format.

--=_alt_42
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

THE WEEKLY BYTE #42

Tabs versus spaces: we asked 3,000 readers. The answer may surprise you.
Read more at https://newsletter.example.com/42

--=_alt_42
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><body>
<h1>The Weekly Byte #42</h1>
<p>Tabs versus spaces: we asked 3,000 readers. The answer may surprise you.</p>
<p><a href=3D"https://newsletter.example.com/42">Read more</a></p>
</body></html>

--=_alt_42--
`,
		`From: Carol Accountant <carol@example.com>
To: Demo User <demo@example.org>
Subject: Invoice March 2026
Date: Thu, 05 Mar 2026 16:45:10 +0000
Message-ID: <invoice-4@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="=_mixed_4"

--=_mixed_4
Content-Type: text/plain; charset=us-ascii

Please find the invoice attached.

Carol

--=_mixed_4
Content-Type: text/csv; name="invoice-2026-03.csv"
Content-Disposition: attachment; filename="invoice-2026-03.csv"
Content-Transfer-Encoding: base64

aXRlbSxxdWFudGl0eSxwcmljZQpHYXRld2F5IGxpY2Vuc2UsMSwwLjAwCkNvZmZlZSwxMiwz
LjUwCg==

--=_mixed_4--
`,
		`From: Dave Dots <dave@example.org>
To: Demo User <demo@example.org>
Subject: Dots at the start of lines
Date: Fri, 06 Mar 2026 08:30:00 +0000
Message-ID: <dots-5@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

POP3 ends a multi-line reply with a line holding a single dot,
so the next line must be escaped on the wire:
.
..two dots
.leading dot
...
The end.
`,
		`From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>
To: Demo User <demo@example.org>
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=
Date: Sat, 07 Mar 2026 10:00:00 +0100
Message-ID: <gruesse-6@example.de>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Servus!

Schöne Grüße aus München. Bis bald,
Jürgen
`,
	}
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = []byte(strings.ReplaceAll(m, "\n", "\r\n"))
	}
	return out
}
