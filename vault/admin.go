package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Enroller runs an interactive enrolment for user (e.g. the OAuth2 device
// flow), writing what the admin must do to prompt, and returns the grant.
type Enroller func(ctx context.Context, user string, prompt io.Writer) (Tokens, error)

// AdminUsage is the usage text of RunAdmin.
const AdminUsage = `usage:
  device add USER NAME [--allow CIDR]...   add a device; prints its password once
  device list [USER]                       list the devices of USER, or of everyone
  device revoke USER NAME                  revoke a device (its next login fails)
  user list                                list users with the health of their grant
  user remove USER                         remove a user with devices and grant
  enroll USER                              enrol USER's mailbox grant (interactive)

--allow restricts a device to networks (CIDR or single address; repeat the
flag or separate with commas). Commands work while the gateway runs.
`

// RunAdmin runs one admin command given as command-line arguments against
// store and returns the process exit code: 0 done, 1 failed, 2 bad usage.
// enroll may be nil when the build has no enrolment.
func RunAdmin(ctx context.Context, args []string, stdout, stderr io.Writer, store Store, enroll Enroller) int {
	usage := func(msg string) int {
		if msg != "" {
			fmt.Fprintf(stderr, "%s\n", msg)
		}
		fmt.Fprint(stderr, AdminUsage)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s\n", strings.TrimPrefix(err.Error(), "vault: "))
		return 1
	}
	if len(args) == 0 {
		return usage("")
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, AdminUsage)
		return 0
	}
	cmd := args[0]
	if len(args) > 1 && (cmd == "device" || cmd == "user") {
		cmd += " " + args[1]
		args = args[2:]
	} else {
		args = args[1:]
	}
	switch cmd {
	case "device add":
		pos, allow, err := splitAllow(args)
		if err != nil {
			return usage(err.Error())
		}
		if len(pos) != 2 {
			return usage("device add: want USER NAME")
		}
		nets, err := ParseNets(allow)
		if err != nil {
			return usage(strings.TrimPrefix(err.Error(), "vault: "))
		}
		d, pw, err := store.AddDevice(ctx, pos[0], pos[1], nets)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "Added device %q of %s. Its password, shown only now:\n\n    %s\n\n", d.Name, d.User, pw)
		fmt.Fprintf(stdout, "Enter it as the POP3 password of %s in the device's mail settings.\n", d.User)
		if len(nets) > 0 {
			fmt.Fprintf(stdout, "Logins are allowed only from %s.\n", formatNets(nets))
		}
		return 0
	case "device list":
		if len(args) > 1 {
			return usage("device list: want at most USER")
		}
		var user string
		if len(args) == 1 {
			user = args[0]
		}
		ds, err := store.ListDevices(ctx, user)
		if err != nil {
			return fail(err)
		}
		FormatDevices(stdout, ds)
		return 0
	case "device revoke":
		if len(args) != 2 {
			return usage("device revoke: want USER NAME")
		}
		if err := store.RevokeDevice(ctx, args[0], args[1]); err != nil {
			if errors.Is(err, ErrNoDevice) {
				return fail(fmt.Errorf("%s has no device %q", args[0], args[1]))
			}
			return fail(err)
		}
		fmt.Fprintf(stdout, "Revoked device %q of %s.\n", args[1], args[0])
		return 0
	case "user list":
		if len(args) != 0 {
			return usage("user list: takes no arguments")
		}
		us, err := store.ListUsers(ctx)
		if err != nil {
			return fail(err)
		}
		FormatUsers(stdout, us, time.Now())
		return 0
	case "user remove":
		if len(args) != 1 {
			return usage("user remove: want USER")
		}
		if err := store.RemoveUser(ctx, args[0]); err != nil {
			if errors.Is(err, ErrNoUser) {
				return fail(fmt.Errorf("no user %s", args[0]))
			}
			return fail(err)
		}
		fmt.Fprintf(stdout, "Removed user %s with its devices and grant.\n", args[0])
		return 0
	case "enroll":
		if len(args) != 1 {
			return usage("enroll: want USER")
		}
		if enroll == nil {
			return fail(errors.New("enroll: no enrolment configured (needs an OAuth2 upstream)"))
		}
		t, err := enroll(ctx, args[0], stdout)
		if err != nil {
			return fail(fmt.Errorf("enroll %s: %w", args[0], err))
		}
		if err := store.PutGrant(ctx, args[0], t); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "Enrolled %s.\n", args[0])
		return 0
	}
	return usage(fmt.Sprintf("unknown command %q", cmd))
}

// splitAllow separates --allow CIDR and --allow=CIDR from positional
// arguments; flags may come before, between or after them.
func splitAllow(args []string) (pos, allow []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--allow" || a == "-allow":
			if i+1 >= len(args) {
				return nil, nil, errors.New("--allow: missing CIDR")
			}
			i++
			allow = append(allow, args[i])
		case strings.HasPrefix(a, "--allow=") || strings.HasPrefix(a, "-allow="):
			_, v, _ := strings.Cut(a, "=")
			allow = append(allow, v)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return nil, nil, fmt.Errorf("unknown flag %s", a)
		default:
			pos = append(pos, a)
		}
	}
	return pos, allow, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

// FormatDevices writes devices as a table.
func FormatDevices(w io.Writer, ds []Device) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tDEVICE\tCREATED\tLAST USED\tFROM\tALLOWED")
	for _, d := range ds {
		from, allowed := "-", "any"
		if d.LastAddr.IsValid() {
			from = d.LastAddr.String()
		}
		if len(d.AllowedNets) > 0 {
			allowed = formatNets(d.AllowedNets)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.User, d.Name, formatTime(d.Created), formatTime(d.LastUsed), from, allowed)
	}
	tw.Flush()
}

// UserStatus sums up the health of a user's grant in a few words.
func UserStatus(u User) string {
	switch {
	case u.NeedsReenrollment:
		return "NEEDS RE-ENROLMENT: " + u.LastError
	case !u.HasGrant:
		return "no grant"
	case u.LastError != "":
		return "refresh failing: " + u.LastError
	}
	return "ok"
}

// FormatUsers writes users and the health of their grants as a table.
func FormatUsers(w io.Writer, us []User, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tDEVICES\tLAST REFRESH\tACCESS TOKEN\tSTATUS")
	for _, u := range us {
		access := "-"
		if !u.AccessExpiry.IsZero() {
			if left := u.AccessExpiry.Sub(now); left > 0 {
				access = "valid " + left.Round(time.Minute).String()
			} else {
				access = "expired"
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", u.Name, u.Devices, formatTime(u.LastRefresh), access, UserStatus(u))
	}
	tw.Flush()
}
