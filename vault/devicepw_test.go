package vault

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

var pwFormat = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{5}(-[0-9a-hjkmnp-tv-z]{5}){3}$`)

func TestGeneratePasswordFormatAndEntropy(t *testing.T) {
	const n = 2000
	seen := make(map[string]bool, n)
	count := make(map[rune]int)
	for range n {
		pw := GeneratePassword()
		if !pwFormat.MatchString(pw) {
			t.Fatalf("password %q: want 4 dash-separated groups of 5 Crockford base32 symbols", pw)
		}
		if seen[pw] {
			t.Fatalf("password %q generated twice", pw)
		}
		seen[pw] = true
		for _, r := range strings.ReplaceAll(pw, "-", "") {
			count[r]++
		}
	}
	// 20 symbols of 32 = 100 bits if the symbols are uniform and
	// independent. Each symbol is expected n*20/32 = 1250 times (standard
	// deviation about 34); a biased generator lands far outside 1000..1500.
	if len(count) != 32 {
		t.Fatalf("alphabet used: got %d symbols, want 32", len(count))
	}
	for r, c := range count {
		if c < 1000 || c > 1500 {
			t.Errorf("symbol %q: %d times in %d, want about 1250", r, c, n*pwLen)
		}
	}
}

func TestVerifyPasswordForms(t *testing.T) {
	pw := "01abc-defgh-jkmnp-qrstv"
	hash := HashPassword(pw)
	for _, typed := range []string{
		pw,
		strings.ReplaceAll(pw, "-", ""),
		strings.ToUpper(pw),
		"01ABC defgh JKMNP qrstv",
		"oiabc-defgh-jkmnp-qrstv", // o for 0, i for 1
		"OLabc-defgh-jkmnp-qrstv", // O for 0, L for 1
	} {
		ok, err := VerifyPassword(hash, typed)
		if err != nil || !ok {
			t.Errorf("VerifyPassword(%q): got %v, %v, want true", typed, ok, err)
		}
	}
	for _, wrong := range []string{"", "01abc-defgh-jkmnp-qrstw", "01abc-defgh-jkmnp-qrst", "01abc-defgh-jkmnp-qrstvv"} {
		ok, err := VerifyPassword(hash, wrong)
		if err != nil || ok {
			t.Errorf("VerifyPassword(%q): got %v, %v, want false", wrong, ok, err)
		}
	}
}

var phcFormat = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$`)

func TestHashPasswordFormat(t *testing.T) {
	pw := GeneratePassword()
	prod := argonParams{time: argonTime, memory: argonMemory, threads: argonThreads}
	h1, h2 := hashPasswordWith(prod, pw), hashPasswordWith(prod, pw)
	if ok, err := VerifyPassword(h1, pw); err != nil || !ok {
		t.Errorf("VerifyPassword with the production parameters: got %v, %v, want true", ok, err)
	}
	for _, h := range []string{h1, h2} {
		m := phcFormat.FindStringSubmatch(h)
		if m == nil {
			t.Fatalf("hash %q: not in PHC argon2id format", h)
		}
		if want := fmt.Sprint(argonMemory); m[1] != want || m[2] != fmt.Sprint(argonTime) || m[3] != fmt.Sprint(argonThreads) {
			t.Errorf("hash parameters: got m=%s,t=%s,p=%s, want m=%d,t=%d,p=%d", m[1], m[2], m[3], argonMemory, argonTime, argonThreads)
		}
		salt, _ := base64.RawStdEncoding.DecodeString(m[4])
		sum, _ := base64.RawStdEncoding.DecodeString(m[5])
		if len(salt) != argonSaltLen || len(sum) != argonKeyLen {
			t.Errorf("salt and hash lengths: got %d, %d, want %d, %d", len(salt), len(sum), argonSaltLen, argonKeyLen)
		}
		if strings.Contains(h, strings.ReplaceAll(pw, "-", "")) {
			t.Errorf("hash %q contains the password", h)
		}
	}
	if h1 == h2 {
		t.Error("two hashes of one password are equal: salt not random")
	}
}

// TestVerifyOtherParameters checks that a hash made with other parameters
// (as after a change of the defaults) still verifies: they are read from
// the hash, not assumed.
func TestVerifyOtherParameters(t *testing.T) {
	pw := "abcde-fghjk-mnpqr-stvwx"
	salt := []byte("0123456789abcdef")
	sum := argon2.IDKey([]byte(normalizePassword(pw)), salt, 1, 64, 2, 24)
	hash := fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=2$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum))
	if ok, err := VerifyPassword(hash, pw); err != nil || !ok {
		t.Fatalf("VerifyPassword with m=64,t=1,p=2: got %v, %v, want true", ok, err)
	}
	if ok, _ := VerifyPassword(hash, "abcde-fghjk-mnpqr-stvwy"); ok {
		t.Fatal("wrong password verified against m=64,t=1,p=2 hash")
	}
}

func TestVerifyMalformedHash(t *testing.T) {
	good := hashPasswordWith(argonParams{time: 2, memory: 19456, threads: 1}, "x")
	for _, h := range []string{
		"",
		"plaintext",
		strings.Replace(good, "argon2id", "argon2i", 1),
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "m=19456", "m=99999999", 1), // would allocate ~95 GiB
		strings.Replace(good, "t=2", "t=0", 1),
		strings.Replace(good, "p=1", "p=0", 1),
		strings.Replace(good, ",t=2", "", 1),
		good + "$extra",
		good[:strings.LastIndex(good, "$")] + "$!!!",
	} {
		if ok, err := VerifyPassword(h, "x"); err == nil || ok {
			t.Errorf("VerifyPassword(%q): got %v, %v, want an error", h, ok, err)
		}
	}
}

func TestDeviceAllowed(t *testing.T) {
	nets, err := ParseNets([]string{"192.0.2.0/24, 2001:db8::/32", "198.51.100.7"})
	if err != nil {
		t.Fatal(err)
	}
	d := Device{AllowedNets: nets}
	for addr, want := range map[string]bool{
		"192.0.2.1":           true,
		"192.0.2.255":         true,
		"192.0.3.1":           false,
		"::ffff:192.0.2.9":    true, // as a dual-stack listener sees it
		"2001:db8:1::1":       true,
		"2001:db9::1":         false,
		"198.51.100.7":        true,
		"198.51.100.8":        false,
		"::ffff:198.51.100.8": false,
		"127.0.0.1":           false,
		"::1":                 false,
		"2001:db8::c000:201":  true,
	} {
		a := netip.MustParseAddr(addr)
		if got := d.Allowed(a); got != want {
			t.Errorf("Allowed(%s) with %v: got %v, want %v", addr, nets, got, want)
		}
	}
	if !(Device{}).Allowed(netip.MustParseAddr("203.0.113.5")) {
		t.Error("device without allowed networks refused a login, want any network allowed")
	}
}

func TestParseNets(t *testing.T) {
	nets, err := ParseNets([]string{"10.1.2.3/8", "::ffff:10.0.0.0/104", "", " 2001:db8::1 "})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := formatNets(nets), "10.0.0.0/8,10.0.0.0/8,2001:db8::1/128"; got != want {
		t.Errorf("ParseNets: got %s, want %s", got, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.0/", "1.2.3"} {
		if _, err := ParseNets([]string{bad}); err == nil {
			t.Errorf("ParseNets(%q): accepted, want an error", bad)
		}
	}
}
