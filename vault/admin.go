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
	a := &admin{ctx: ctx, stdout: stdout, stderr: stderr, store: store, enroll: enroll}
	if len(args) == 0 {
		return a.usage("")
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
	run, ok := adminCommands[cmd]
	if !ok {
		return a.usage(fmt.Sprintf("unknown command %q", cmd))
	}
	return run(a, args)
}

// adminCommands maps each admin command to the method that runs it.
var adminCommands = map[string]func(*admin, []string) int{
	"device add":    (*admin).deviceAdd,
	"device list":   (*admin).deviceList,
	"device revoke": (*admin).deviceRevoke,
	"user list":     (*admin).userList,
	"user remove":   (*admin).userRemove,
	"enroll":        (*admin).enrollUser,
}

// admin is what one RunAdmin call works with.
type admin struct {
	ctx            context.Context
	stdout, stderr io.Writer
	store          Store
	enroll         Enroller
}

// usage prints msg, if any, and the usage text; exit code 2.
func (a *admin) usage(msg string) int {
	if msg != "" {
		fmt.Fprintf(a.stderr, "%s\n", msg)
	}
	fmt.Fprint(a.stderr, AdminUsage)
	return 2
}

// fail prints err; exit code 1.
func (a *admin) fail(err error) int {
	fmt.Fprintf(a.stderr, "%s\n", strings.TrimPrefix(err.Error(), "vault: "))
	return 1
}

// deviceAdd runs "device add".
func (a *admin) deviceAdd(args []string) int {
	pos, allow, err := splitAllow(args)
	if err != nil {
		return a.usage(err.Error())
	}
	if len(pos) != 2 {
		return a.usage("device add: want USER NAME")
	}
	nets, err := ParseNets(allow)
	if err != nil {
		return a.usage(strings.TrimPrefix(err.Error(), "vault: "))
	}
	d, pw, err := a.store.AddDevice(a.ctx, pos[0], pos[1], nets)
	if err != nil {
		return a.fail(err)
	}
	fmt.Fprintf(a.stdout, "Added device %q of %s. Its password, shown only now:\n\n    %s\n\n", d.Name, d.User, pw)
	fmt.Fprintf(a.stdout, "Enter it as the POP3 password of %s in the device's mail settings.\n", d.User)
	if len(nets) > 0 {
		fmt.Fprintf(a.stdout, "Logins are allowed only from %s.\n", formatNets(nets))
	}
	return 0
}

// deviceList runs "device list".
func (a *admin) deviceList(args []string) int {
	if len(args) > 1 {
		return a.usage("device list: want at most USER")
	}
	var user string
	if len(args) == 1 {
		user = args[0]
	}
	ds, err := a.store.ListDevices(a.ctx, user)
	if err != nil {
		return a.fail(err)
	}
	FormatDevices(a.stdout, ds)
	return 0
}

// deviceRevoke runs "device revoke".
func (a *admin) deviceRevoke(args []string) int {
	if len(args) != 2 {
		return a.usage("device revoke: want USER NAME")
	}
	if err := a.store.RevokeDevice(a.ctx, args[0], args[1]); err != nil {
		if errors.Is(err, ErrNoDevice) {
			return a.fail(fmt.Errorf("%s has no device %q", args[0], args[1]))
		}
		return a.fail(err)
	}
	fmt.Fprintf(a.stdout, "Revoked device %q of %s.\n", args[1], args[0])
	return 0
}

// userList runs "user list".
func (a *admin) userList(args []string) int {
	if len(args) != 0 {
		return a.usage("user list: takes no arguments")
	}
	us, err := a.store.ListUsers(a.ctx)
	if err != nil {
		return a.fail(err)
	}
	FormatUsers(a.stdout, us, time.Now())
	return 0
}

// userRemove runs "user remove".
func (a *admin) userRemove(args []string) int {
	if len(args) != 1 {
		return a.usage("user remove: want USER")
	}
	if err := a.store.RemoveUser(a.ctx, args[0]); err != nil {
		if errors.Is(err, ErrNoUser) {
			return a.fail(fmt.Errorf("no user %s", args[0]))
		}
		return a.fail(err)
	}
	fmt.Fprintf(a.stdout, "Removed user %s with its devices and grant.\n", args[0])
	return 0
}

// enrollUser runs "enroll".
func (a *admin) enrollUser(args []string) int {
	if len(args) != 1 {
		return a.usage("enroll: want USER")
	}
	if a.enroll == nil {
		return a.fail(errors.New("enroll: no enrolment configured (needs an OAuth2 upstream)"))
	}
	t, err := a.enroll(a.ctx, args[0], a.stdout)
	if err != nil {
		return a.fail(fmt.Errorf("enroll %s: %w", args[0], err))
	}
	if err := a.store.PutGrant(a.ctx, args[0], t); err != nil {
		return a.fail(err)
	}
	fmt.Fprintf(a.stdout, "Enrolled %s.\n", args[0])
	return 0
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
