package vault

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// Device password format: 20 symbols of Crockford's base32 alphabet, shown
// as four dash-separated groups of five ("7kq2m-x9d4r-..."), 100 random bits.
// The alphabet has no I, L, O or U, so nothing reads two ways; verification
// ignores case, dashes and blanks, and reads i and l as 1 and o as 0, so a
// password typed into a phone's mail settings still matches.
const (
	pwAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	pwGroups   = 4
	pwGroupLen = 5
	pwLen      = pwGroups * pwGroupLen
)

// Argon2id parameters for new hashes (RFC 9106 section 4; OWASP's password
// storage cheat sheet lists m=19 MiB, t=2, p=1 as a minimum). The login
// path of a gateway on a small machine hashes once per POP3 login; 64 MiB
// per hash would let a burst of logins take hundreds of MiB, while 19 MiB
// costs some tens of milliseconds of one core. Device passwords have 100
// random bits, so the hash only has to make an offline search of a stolen
// database pointless, not to stretch a weak human password. The parameters
// are stored in each hash (PHC string format), so they can be raised later
// without invalidating existing passwords.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// argonParams are the cost parameters of Argon2id.
type argonParams struct {
	time, memory uint32
	threads      uint8
}

// hashParams are the parameters of new hashes. Tests of the store lower
// them: they exercise logins, not the cost of a hash.
var hashParams = argonParams{time: argonTime, memory: argonMemory, threads: argonThreads}

// hashSlots bounds how many Argon2id hashes run at once, so a flood of
// logins costs waiting time, not argonMemory times the number of clients.
var hashSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

func acquireHashSlot(ctx context.Context) error {
	select {
	case hashSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func releaseHashSlot() { <-hashSlots }

// GeneratePassword returns a new random device password in its display form.
func GeneratePassword() string {
	var b strings.Builder
	// 32 symbols: each random byte's low 5 bits pick one without bias.
	raw := make([]byte, pwLen)
	if _, err := rand.Read(raw); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	for i, c := range raw {
		if i > 0 && i%pwGroupLen == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(pwAlphabet[c&31])
	}
	return b.String()
}

// normalizePassword maps a typed password to its canonical form: lower
// case, no dashes or blanks, i and l read as 1, o as 0. It does not check
// the result: a malformed password simply fails to verify.
func normalizePassword(pw string) string {
	var b strings.Builder
	b.Grow(pwLen)
	for _, r := range strings.ToLower(pw) {
		switch r {
		case '-', ' ', '\t':
			continue
		case 'i', 'l':
			r = '1'
		case 'o':
			r = '0'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// HashPassword returns the Argon2id hash of a device password in PHC string
// format: $argon2id$v=19$m=MEM,t=TIME,p=THREADS$SALT$HASH, salt and hash in
// unpadded standard base64.
func HashPassword(pw string) string {
	return hashPasswordWith(hashParams, pw)
}

func hashPasswordWith(p argonParams, pw string) string {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		panic(err)
	}
	sum := argon2.IDKey([]byte(normalizePassword(pw)), salt, p.time, p.memory, p.threads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.memory, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum))
}

// phc is a parsed Argon2id hash.
type phc struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	sum     []byte
}

var errBadHash = errors.New("vault: malformed password hash")

func parsePHC(s string) (phc, error) {
	var h phc
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" ||
		parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return h, errBadHash
	}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return h, errBadHash
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return h, errBadHash
		}
		switch k {
		case "m":
			h.memory = uint32(n)
		case "t":
			h.time = uint32(n)
		case "p":
			if n > 255 {
				return h, errBadHash
			}
			h.threads = uint8(n)
		default:
			return h, errBadHash
		}
	}
	var err1, err2 error
	h.salt, err1 = base64.RawStdEncoding.DecodeString(parts[4])
	h.sum, err2 = base64.RawStdEncoding.DecodeString(parts[5])
	// Bound the parameters so a corrupt row cannot make a login allocate
	// gigabytes or spin for minutes.
	if err1 != nil || err2 != nil || h.memory < 8 || h.memory > 1<<20 || h.time < 1 || h.time > 32 ||
		h.threads < 1 || len(h.salt) < 8 || len(h.sum) < 16 || len(h.sum) > 64 {
		return h, errBadHash
	}
	return h, nil
}

// VerifyPassword reports whether pw matches the PHC-format hash. The
// comparison of the derived keys takes constant time.
func VerifyPassword(hash, pw string) (bool, error) {
	h, err := parsePHC(hash)
	if err != nil {
		return false, err
	}
	sum := argon2.IDKey([]byte(normalizePassword(pw)), h.salt, h.time, h.memory, h.threads, uint32(len(h.sum)))
	return subtle.ConstantTimeCompare(sum, h.sum) == 1, nil
}

// dummyHash is verified against when a login names no device, so an unknown
// user costs the same time as a wrong password.
// It is made on first use, not at start-up of every program importing vault.
var dummyHash = sync.OnceValue(func() string { return HashPassword(GeneratePassword()) })

// Device is one POP3 client of a user, with its own app password.
type Device struct {
	ID       int64
	User     string
	Name     string
	Created  time.Time
	LastUsed time.Time  // zero if never used
	LastAddr netip.Addr // client address of the last login; invalid if never used
	// AllowedNets restricts logins to these networks; empty allows any.
	AllowedNets []netip.Prefix
}

// Allowed reports whether a login from ip may use this device. An IPv4
// address mapped into IPv6 (::ffff:a.b.c.d, as a dual-stack listener sees
// it) is checked as the IPv4 address.
func (d Device) Allowed(ip netip.Addr) bool {
	if len(d.AllowedNets) == 0 {
		return true
	}
	ip = ip.Unmap()
	for _, p := range d.AllowedNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseNets parses CIDR prefixes for Device.AllowedNets. A bare address is
// taken as a single-host prefix. Prefixes are masked (10.1.2.3/8 becomes
// 10.0.0.0/8) so they list as they match.
func ParseNets(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		for _, f := range strings.Split(s, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			var p netip.Prefix
			var err error
			if strings.Contains(f, "/") {
				p, err = netip.ParsePrefix(f)
			} else {
				var a netip.Addr
				a, err = netip.ParseAddr(f)
				p = netip.PrefixFrom(a, a.BitLen())
			}
			if err != nil {
				return nil, fmt.Errorf("vault: allowed network %q: %v", f, err)
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

func formatNets(nets []netip.Prefix) string {
	s := make([]string, len(nets))
	for i, p := range nets {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
