package vault

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
)

type adminRun struct {
	t     *testing.T
	store Store
	enrol Enroller
}

func (a adminRun) run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = RunAdmin(testCtx(a.t), args, &out, &errb, a.store, a.enrol)
	return code, out.String(), errb.String()
}

var printedPassword = regexp.MustCompile(`(?m)^    ([0-9a-z]{5}(?:-[0-9a-z]{5}){3})$`)

// TestAdminDeviceLifecycle: add a device, see it listed, log in with the
// printed password, revoke it, and the login fails.
func TestAdminDeviceLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testCtx(t)
		admin := adminRun{t: t, store: b.open(t)}
		daemon := b.open(t) // the running gateway's own handle

		code, out, errs := admin.run("device", "add", "alice@example.com", "phone", "--allow", "192.0.2.0/24,2001:db8::/32")
		if code != 0 {
			t.Fatalf("device add: exit %d, stderr %q, want %d", code, errs, 0)
		}
		m := printedPassword.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("device add printed no password:\n%s", out)
		}
		pw := m[1]
		if !strings.Contains(out, "192.0.2.0/24,2001:db8::/32") {
			t.Errorf("device add output does not show the allowed networks:\n%s", out)
		}
		if code, _, errs := admin.run("device", "add", "alice@example.com", "phone"); code != 1 || !strings.Contains(errs, "in use") {
			t.Errorf("device add of a used name: exit %d, stderr %q, want 1 and a message", code, errs)
		}

		code, out, _ = admin.run("device", "list")
		if code != 0 || !regexp.MustCompile(`(?m)^alice@example\.com +phone +\S+ \S+ +never +- +192\.0\.2\.0/24,2001:db8::/32$`).MatchString(out) {
			t.Fatalf("device list: exit %d:\n%s\nwant a row for alice's phone, never used", code, out)
		}

		client := netip.MustParseAddr("192.0.2.5")
		if d, err := daemon.Authenticate(ctx, "alice@example.com", pw, client); err != nil || d.Name != "phone" {
			t.Fatalf("login with the printed password: got %+v, %v", d, err)
		}
		if _, err := daemon.Authenticate(ctx, "alice@example.com", pw, netip.MustParseAddr("203.0.113.1")); !errors.Is(err, ErrNetworkNotAllowed) {
			t.Errorf("login from outside the allowed networks: got %v, want ErrNetworkNotAllowed", err)
		}
		_, out, _ = admin.run("device", "list", "alice@example.com")
		if !strings.Contains(out, " 192.0.2.5 ") {
			t.Errorf("device list after login: want last address 192.0.2.5:\n%s", out)
		}
		_, out, _ = admin.run("device", "list", "bob")
		if strings.Count(out, "\n") != 1 {
			t.Errorf("device list of a user without devices: got\n%s\nwant the header only", out)
		}

		code, out, errs = admin.run("device", "revoke", "alice@example.com", "phone")
		if code != 0 || !strings.Contains(out, "Revoked") {
			t.Fatalf("device revoke: exit %d, %q, %q", code, out, errs)
		}
		if _, err := daemon.Authenticate(ctx, "alice@example.com", pw, client); !errors.Is(err, ErrUnknownDevice) {
			t.Errorf("login after revoke: got %v, want ErrUnknownDevice", err)
		}
		if code, _, errs := admin.run("device", "revoke", "alice@example.com", "phone"); code != 1 || !strings.Contains(errs, "no device") {
			t.Errorf("revoke twice: exit %d, stderr %q, want 1 and 'no device'", code, errs)
		}
	})
}

func TestAdminUsersAndEnroll(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testCtx(t)
		s := b.open(t)
		var prompted bool
		admin := adminRun{t: t, store: s, enrol: func(ctx context.Context, user string, prompt io.Writer) (Tokens, error) {
			prompted = true
			io.WriteString(prompt, "Open https://login.example/device and enter CODE-1234\n")
			if user == "broken@example.com" {
				return Tokens{}, errors.New("authorization_declined")
			}
			return Tokens{Refresh: "r-" + user, Access: "a-" + user, AccessExpiry: time.Now().Add(time.Hour)}, nil
		}}
		code, out, errs := admin.run("enroll", "alice@example.com")
		if code != 0 || !prompted || !strings.Contains(out, "CODE-1234") || !strings.Contains(out, "Enrolled alice@example.com") {
			t.Fatalf("enroll: exit %d, stdout %q, stderr %q", code, out, errs)
		}
		got, err := s.Refresh(ctx, "alice@example.com", func(c Tokens) (Tokens, error) { return c, nil })
		if err != nil || got.Refresh != "r-alice@example.com" {
			t.Errorf("grant after enroll: got %+v, %v", got, err)
		}
		if code, _, errs := admin.run("enroll", "broken@example.com"); code != 1 || !strings.Contains(errs, "authorization_declined") {
			t.Errorf("failed enroll: exit %d, stderr %q", code, errs)
		}
		if _, err := s.GetUser(ctx, "broken@example.com"); !errors.Is(err, ErrNoUser) {
			t.Errorf("user after failed enroll: got %v, want ErrNoUser", err)
		}

		s.PutGrant(ctx, "bob@example.com", Tokens{Refresh: "r"})
		s.MarkNeedsReenrollment(ctx, "bob@example.com", "invalid_grant: token revoked")
		s.AddDevice(ctx, "carol@example.com", "laptop", nil)
		s.RecordRefresh(ctx, "alice@example.com", nil)
		code, out, _ = admin.run("user", "list")
		if code != 0 {
			t.Fatalf("user list: exit %d, want %d", code, 0)
		}
		for _, want := range []string{
			`(?m)^alice@example\.com +0 +\d{4}-\d\d-\d\d \d\d:\d\dZ +valid 1h0m0s +ok$`,
			`(?m)^bob@example\.com +0 +never +- +NEEDS RE-ENROLMENT: invalid_grant: token revoked$`,
			`(?m)^carol@example\.com +1 +never +- +no grant$`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("user list: no line matching %s in:\n%s", want, out)
			}
		}

		if code, out, _ := admin.run("user", "remove", "carol@example.com"); code != 0 || !strings.Contains(out, "Removed") {
			t.Errorf("user remove: exit %d, %q", code, out)
		}
		if ds, _ := s.ListDevices(ctx, "carol@example.com"); len(ds) != 0 {
			t.Errorf("carol's devices after user remove: %+v", ds)
		}
		if code, _, errs := admin.run("user", "remove", "carol@example.com"); code != 1 || !strings.Contains(errs, "no user") {
			t.Errorf("user remove twice: exit %d, stderr %q", code, errs)
		}
	})
}

func TestAdminUsage(t *testing.T) {
	s := backend{"sqlite", "sqlite:" + t.TempDir() + "/vault.db"}.open(t)
	admin := adminRun{t: t, store: s}
	for _, args := range [][]string{
		nil,
		{"device"},
		{"device", "add", "alice"},
		{"device", "add", "alice", "phone", "--allow"},
		{"device", "add", "alice", "phone", "--allow", "not-a-net"},
		{"device", "add", "alice", "phone", "--force"},
		{"device", "revoke", "alice"},
		{"user", "list", "extra"},
		{"user", "remove"},
		{"enroll"},
		{"frobnicate"},
	} {
		code, out, errs := admin.run(args...)
		if code != 2 || out != "" || !strings.Contains(errs, "usage:") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q, want 2 with usage on stderr", args, code, out, errs)
		}
	}
	if code, out, _ := admin.run("help"); code != 0 || out != AdminUsage {
		t.Errorf("help: exit %d, stdout %q", code, out)
	}
	if code, _, errs := admin.run("enroll", "alice"); code != 1 || !strings.Contains(errs, "no enrolment") {
		t.Errorf("enroll without Enroller: exit %d, stderr %q", code, errs)
	}
	// --allow before the positional arguments, and in = form.
	code, out, errs := admin.run("device", "add", "--allow=10.0.0.0/8", "alice", "phone")
	if code != 0 || !strings.Contains(out, "10.0.0.0/8") {
		t.Errorf("device add --allow=...: exit %d, %q, %q", code, out, errs)
	}
}
