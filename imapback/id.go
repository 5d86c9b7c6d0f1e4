package imapback

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Client address forwarding with ID (RFC 2971).
//
// Every gateway session is one IMAP connection from the gateway's own
// address, so without help the upstream's per-IP defences (Dovecot's auth
// penalty, mail_max_userip_connections, its logs) see the gateway, not the
// POP3 client. Dovecot accepts the real address in ID fields before login
// when the connection comes from login_trusted_networks:
//
//	ID ("x-originating-ip" "192.0.2.7" "x-originating-port" "50312")
//
// (Dovecot also reads x-connected-ip/-port, the address the client
// connected to, and x-session-id. The gateway sends only what it knows:
// LoginRequest carries the client's address, not the local one.)
//
// go-imap's Client.ID can send only RFC 2971's standard fields, and sends
// them without checking the ID capability, so the exchange is written by
// hand before go-imap takes the connection over, the way STARTTLS is
// (dial.go): the greeting is read here, the capabilities are learnt (from
// the greeting's CAPABILITY code, or a CAPABILITY command), ID is sent only
// when advertised, and go-imap then starts from a greeting that carries
// those capabilities. It runs after TLS is established and verified, and
// only in Login (never in Probe).

// Tags of the commands sent by hand before go-imap starts (go-imap's own
// tags are T1, T2, ...; STARTTLS uses S1 and S2).
const (
	tagIDCapability = "I1"
	tagID           = "I2"
)

// idFields returns the ID parameters describing client, and local (the
// address the client connected to) as Dovecot's x-connected-ip/port: IP
// address text (IPv4-mapped addresses unmapped, zones dropped) and port,
// nothing else, so a value can never need escaping. It returns nil when
// client is not an IP address (nil, or a unix socket).
func idFields(client, local net.Addr) []string {
	f := addrFields(nil, "x-originating", client)
	if f == nil {
		return nil
	}
	return addrFields(f, "x-connected", local)
}

// addrFields appends prefix-ip and prefix-port for a, when a is an IP
// address (port 0 is left out).
func addrFields(f []string, prefix string, a net.Addr) []string {
	if a == nil {
		return f
	}
	var ap netip.AddrPort
	if ta, ok := a.(*net.TCPAddr); ok {
		ap = ta.AddrPort()
	} else {
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return f
		}
	}
	ip := ap.Addr().Unmap().WithZone("")
	if !ip.IsValid() {
		return f
	}
	f = append(f, prefix+"-ip", ip.String())
	if ap.Port() != 0 {
		f = append(f, prefix+"-port", strconv.Itoa(int(ap.Port())))
	}
	return f
}

// idCommand formats "tag ID (...)" from name/value pairs. Names must be
// lower-case letters and '-', values IP address or port text; anything
// else is refused (docs/design.md, invariant 8: nothing can become an extra
// argument or command).
func idCommand(tag string, fields []string) (string, error) {
	if len(fields) == 0 || len(fields)%2 != 0 {
		return "", errors.New("ID: odd or empty field list")
	}
	var b strings.Builder
	b.WriteString(tag + " ID (")
	for i, f := range fields {
		allowed := "0123456789abcdefABCDEF.:" // IP address or port text
		if i%2 == 0 {
			allowed = "abcdefghijklmnopqrstuvwxyz-" // field name
		}
		if f == "" || len(f) > 64 || strings.Trim(f, allowed) != "" {
			return "", fmt.Errorf("ID: unsafe field %q", f)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(`"` + f + `"`)
	}
	b.WriteString(")\r\n")
	return b.String(), nil
}

// identify runs the pre-login exchange by hand on conn (already protected
// as configured) and returns the bytes go-imap must read first: a greeting
// holding the capabilities, then whatever the server sent after the last
// response read here (nothing, normally; it belongs to the same protected
// stream, so it is handed on, not dropped).
//
// afterStartTLS says the connection just completed STARTTLS: there is no
// greeting to read and the capabilities must be asked for again (RFC 3501
// section 6.2.1). A greeting other than "* OK" (PREAUTH, BYE) is handed to
// go-imap untouched, without ID, for connect to refuse.
//
// ID is sent only when advertised; a NO or BAD to it is logged and the
// login goes on (the upstream then sees the gateway's address, as without
// forwarding).
func (b *Backend) identify(conn net.Conn, afterStartTLS bool, fields []string) ([]byte, error) {
	br := bufio.NewReaderSize(conn, 4096)
	greeting := "* OK TLS established"
	var caps []string
	haveCaps := false
	if !afterStartTLS {
		var err error
		if greeting, err = readPreTLSLine(br); err != nil {
			return nil, fmt.Errorf("greeting: %w", err)
		}
		if !hasPrefixFold(greeting, "* OK") {
			return handOver(greeting, br), nil
		}
		caps, haveCaps = parseCapCode(greeting)
	}
	if !haveCaps {
		if _, err := conn.Write([]byte(tagIDCapability + " CAPABILITY\r\n")); err != nil {
			return nil, err
		}
		lines, status, err := readTagged(br, tagIDCapability)
		if err != nil {
			return nil, fmt.Errorf("capability: %w", err)
		}
		if !hasPrefixFold(status, "OK") {
			return nil, fmt.Errorf("capability refused: %.80q", status)
		}
		for _, l := range lines {
			if hasPrefixFold(l, "* CAPABILITY ") {
				caps = append(caps, strings.Fields(l[len("* CAPABILITY "):])...)
			}
		}
		// Handed to go-imap in the greeting, saving it a round trip; odd
		// names are left for go-imap to ask for and judge itself.
		if validAtoms(caps) {
			greeting = "* OK [CAPABILITY " + strings.Join(caps, " ") + "] ready"
		}
	}

	if !containsFold(caps, "ID") {
		b.noIDOnce.Do(func() {
			b.log.Warn("upstream does not advertise ID (RFC 2971): client addresses are not forwarded; its per-IP limits see the gateway's address")
		})
		return handOver(greeting, br), nil
	}
	cmd, err := idCommand(tagID, fields)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write([]byte(cmd)); err != nil {
		return nil, err
	}
	_, status, err := readTagged(br, tagID)
	if err != nil {
		return nil, fmt.Errorf("id: %w", err)
	}
	if !hasPrefixFold(status, "OK") {
		b.log.Warn("upstream refused ID; client address not forwarded", "response", fmt.Sprintf("%.80q", status))
	}
	return handOver(greeting, br), nil
}

// handOver returns greeting as a line followed by the bytes br buffered.
func handOver(greeting string, br *bufio.Reader) []byte {
	out := []byte(greeting + "\r\n")
	if n := br.Buffered(); n > 0 {
		rest, _ := br.Peek(n)
		out = append(out, rest...)
	}
	return out
}

// readTagged reads untagged responses (skipping literals, bounded like the
// STARTTLS exchange) until the response tagged tag, and returns the
// untagged lines (literal contents left out) and the tagged status text
// ("OK ...", "NO ...", "BAD ...").
func readTagged(br *bufio.Reader, tag string) (lines []string, status string, err error) {
	total := 0
	for range maxPreTLSLines {
		l, err := readPreTLSLine(br)
		if err != nil {
			return nil, "", err
		}
		// A line ending in a literal ({n} or {n+}, RFC 7888) continues
		// after n octets.
		for {
			n, ok := literalSize(l)
			if !ok {
				break
			}
			total += n
			if total > maxPreTLSLine {
				return nil, "", errors.New("literal too long before login")
			}
			if _, err := br.Discard(n); err != nil {
				return nil, "", err
			}
			more, err := readPreTLSLine(br)
			if err != nil {
				return nil, "", err
			}
			l += " " + more
		}
		if strings.HasPrefix(l, tag+" ") {
			return lines, l[len(tag)+1:], nil
		}
		lines = append(lines, l)
	}
	return nil, "", errors.New("too many lines before login")
}

// literalSize parses a trailing "{n}" or "{n+}".
func literalSize(l string) (int, bool) {
	if !strings.HasSuffix(l, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(l, '{')
	if i < 0 {
		return 0, false
	}
	num := strings.TrimSuffix(l[i+1:len(l)-1], "+")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || num == "" || num[0] == '+' || num[0] == '-' {
		return 0, false
	}
	return n, true
}

// validAtoms reports whether every capability name is an IMAP atom
// (RFC 3501 section 9), safe to put back into a greeting for go-imap.
func validAtoms(caps []string) bool {
	for _, c := range caps {
		if c == "" {
			return false
		}
		for i := 0; i < len(c); i++ {
			if ch := c[i]; ch <= ' ' || ch >= 0x7f || strings.IndexByte(`(){%*"\]`, ch) >= 0 {
				return false
			}
		}
	}
	return true
}
