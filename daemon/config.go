package daemon

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/popbridge/popbridge/imapback"
)

// Config is the gateway's configuration, read from a TOML file. Every key
// is documented in README.md; the [pop3] listen, [upstream] and [policy]
// keys are a contract that deployment docs rely on.
type Config struct {
	POP3     POP3Config     `toml:"pop3"`
	TLS      TLSConfig      `toml:"tls"`
	Upstream UpstreamConfig `toml:"upstream"`
	Policy   PolicyConfig   `toml:"policy"`
	Limits   LimitsConfig   `toml:"limits"`
	Demo     DemoConfig     `toml:"demo"`
	Metrics  MetricsConfig  `toml:"metrics"`
	Log      LogConfig      `toml:"log"`
	Web      WebConfig      `toml:"web"` // webconfig.go

	// DebugWire comes from the -debug-wire flag, never from the file: a
	// user name, or "*", whose POP3 and IMAP lines are traced.
	DebugWire string `toml:"-"`

	warnings []string // located by parseConfig; see Warnings
}

// POP3Config is the client-facing side.
type POP3Config struct {
	Listen         string `toml:"listen"`
	Greeting       string `toml:"greeting"`
	Implementation string `toml:"implementation"`
	// ListenTLS is the implicit-TLS (POP3S, RFC 8314) address; "" for none.
	ListenTLS string `toml:"listen_tls"`
	// AllowPlaintext: where passwords may be sent without TLS
	// (loopback | always | never).
	AllowPlaintext  string   `toml:"allow_plaintext"`
	AllowMasterUser bool     `toml:"allow_master_user"`
	ProxyProtocol   bool     `toml:"proxy_protocol"`
	ProxyTrusted    []string `toml:"proxy_trusted"`
	// Username modifiers (overrides.go): "keep:alice" logs in as alice
	// with delete = keep. Off unless listed.
	UserModifiers     []string    `toml:"user_modifiers"`
	ModifierSeparator string      `toml:"modifier_separator"`
	RecentMaxAge      AgeDuration `toml:"recent_max_age"`
	RecentMaxMessages int         `toml:"recent_max_messages"`
}

// TLSConfig is the client-facing certificate, for listen_tls and STLS.
type TLSConfig struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// UpstreamConfig says where the IMAP server is and how to reach it.
type UpstreamConfig struct {
	Address string `toml:"address"`
	// Security is none | starttls | tls. Unset ("") is allowed only for
	// the demo and loopback addresses, where it means none.
	Security string `toml:"security"`
	Mailbox  string `toml:"mailbox"`
	// Folders, when set, replaces Mailbox: these mailboxes are listed as
	// one maildrop, in this order.
	Folders            []string `toml:"folders"`
	CAFile             string   `toml:"ca_file"`
	ServerName         string   `toml:"server_name"`
	InsecureSkipVerify bool     `toml:"insecure_skip_verify"`
	DialTimeout        Duration `toml:"dial_timeout"`
	CommandTimeout     Duration `toml:"command_timeout"`
	// ForwardClientAddress sends the POP3 client's address with IMAP ID
	// (RFC 2971) before login where the server advertises ID.
	ForwardClientAddress bool `toml:"forward_client_address"`
}

// PolicyConfig says what POP3 actions become upstream.
type PolicyConfig struct {
	Delete         string `toml:"delete"`
	Seen           string `toml:"seen"`
	Trash          string `toml:"trash"`
	Archive        string `toml:"archive"`
	Keyword        string `toml:"keyword"`
	FallbackToFlag bool   `toml:"fallback_to_flag"`
	// UIDL schemes and POP views (overrides.go, imapback/uidl.go,
	// imapback/views.go).
	UIDL             string           `toml:"uidl"`
	UIDLRequired     bool             `toml:"uidl_required"`
	HideRetrieved    bool             `toml:"hide_retrieved"`
	RetrievedKeyword string           `toml:"retrieved_keyword"`
	MaxMessages      int              `toml:"max_messages"`
	Window           string           `toml:"window"`
	MaxAge           AgeDuration      `toml:"max_age"`
	Override         []OverrideConfig `toml:"override"`
}

// LimitsConfig bounds what one client can make the gateway do.
type LimitsConfig struct {
	MaxLineLength        int      `toml:"max_line_length"`
	MaxBadCommands       int      `toml:"max_bad_commands"`
	MaxBadCommandsAuthed int      `toml:"max_bad_commands_authed"`
	AuthTimeout          Duration `toml:"auth_timeout"`
	IdleTimeout          Duration `toml:"idle_timeout"`
	WriteTimeout         Duration `toml:"write_timeout"`
	LoginTimeout         Duration `toml:"login_timeout"`
	CommitTimeout        Duration `toml:"commit_timeout"`
	ShutdownGrace        Duration `toml:"shutdown_grace"`
	TLSHandshakeTimeout  Duration `toml:"tls_handshake_timeout"`
	ProxyHeaderTimeout   Duration `toml:"proxy_header_timeout"`
	MaxAuthAttempts      int      `toml:"max_auth_attempts"`
	AuthPenaltyInitial   Duration `toml:"auth_penalty_initial"`
	AuthPenaltyMax       Duration `toml:"auth_penalty_max"`
	MaxConnections       int      `toml:"max_connections"`
	MaxConnectionsPerIP  int      `toml:"max_connections_per_ip"`
	MaxSessionsPerUser   int      `toml:"max_sessions_per_user"`
}

// DemoConfig configures the built-in in-memory upstream used when
// upstream.address is "demo".
type DemoConfig struct {
	IMAPListen string `toml:"imap_listen"`
	User       string `toml:"user"`
	Password   string `toml:"password"`
}

// MetricsConfig enables the Prometheus endpoint.
type MetricsConfig struct {
	Listen string `toml:"listen"`
}

// LogConfig selects log verbosity and format.
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// Duration is a time.Duration written as a Go duration string ("90s").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. \"30s\", \"10m\")", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// demoAddress is the upstream.address that selects the built-in demo.
const demoAddress = "demo"

// defaultConfig holds every default; a file only overrides what it names.
func defaultConfig() Config {
	return Config{
		POP3: POP3Config{
			Listen:         "127.0.0.1:1110",
			Greeting:       "POP3 gateway ready.",
			AllowPlaintext: "loopback",

			ModifierSeparator: ":",
			RecentMaxAge:      AgeDuration{30 * 24 * time.Hour},
		},
		Upstream: UpstreamConfig{
			Address:        demoAddress,
			Mailbox:        "INBOX",
			DialTimeout:    Duration{10 * time.Second},
			CommandTimeout: Duration{60 * time.Second},

			ForwardClientAddress: true,
		},
		Policy: PolicyConfig{
			Delete:  "flag",
			Seen:    "quit",
			Trash:   "Trash",
			Archive: "Archive",
			Keyword: "$POP3Deleted",

			UIDL:             "dovecot",
			UIDLRequired:     true,
			RetrievedKeyword: "$POP3Retrieved",
			Window:           "newest",
		},
		Limits: LimitsConfig{
			MaxLineLength:        1024,
			MaxBadCommands:       3,
			MaxBadCommandsAuthed: 20,
			AuthTimeout:          Duration{60 * time.Second},
			IdleTimeout:          Duration{10 * time.Minute},
			WriteTimeout:         Duration{60 * time.Second},
			LoginTimeout:         Duration{30 * time.Second},
			CommitTimeout:        Duration{2 * time.Minute},
			ShutdownGrace:        Duration{10 * time.Second},
			TLSHandshakeTimeout:  Duration{10 * time.Second},
			ProxyHeaderTimeout:   Duration{5 * time.Second},
			MaxAuthAttempts:      3,
			AuthPenaltyInitial:   Duration{2 * time.Second},
			AuthPenaltyMax:       Duration{15 * time.Second},
			MaxConnections:       1000,
			MaxConnectionsPerIP:  20,
			MaxSessionsPerUser:   10,
		},
		Demo: DemoConfig{
			IMAPListen: "127.0.0.1:1143",
			User:       "demo",
			Password:   "demo",
		},
		Log: LogConfig{Level: "info", Format: "text"},
	}
}

// ConfigError is a configuration problem, located in its file where the
// decoder or our key locator knows the line.
type ConfigError struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted key, "" when the problem is not one key's
	Msg  string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadConfig reads and validates the file at path. Unknown keys, type
// errors and bad values are all refused: a typo in a mail gateway's config
// must not silently fall back to a default.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return parseConfig(path, data)
}

var decodeErrRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

func parseConfig(path string, data []byte) (*Config, error) {
	cfg := defaultConfig()
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &ConfigError{File: path, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
		}
		// Type errors come as plain errors: "toml: line N (last key "k"): msg".
		if m := decodeErrRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &ConfigError{File: path, Line: line, Key: m[2], Msg: m[3]}
		}
		return nil, &ConfigError{File: path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	if und := md.Undecoded(); len(und) > 0 {
		var errs []error
		for _, k := range und {
			key := k.String()
			errs = append(errs, &ConfigError{File: path, Line: keyLine(data, key), Key: key, Msg: "unknown key"})
		}
		return nil, errors.Join(errs...)
	}
	if err := cfg.Validate(); err != nil {
		return nil, locate(path, data, err)
	}
	if ws := cfg.lint(); len(ws) > 0 {
		for _, w := range unjoin(locate(path, data, errors.Join(ws...))) {
			cfg.warnings = append(cfg.warnings, warningText(w))
		}
	}
	return &cfg, nil
}

// warningText formats a located warning as "file:line: key: warning: msg".
func warningText(err error) string {
	var ce *ConfigError
	if errors.As(err, &ce) && ce.Key != "" {
		c := *ce
		c.Key, c.Msg = "", ce.Key+": warning: "+ce.Msg
		return c.Error()
	}
	return err.Error()
}

// Warnings are the values that start but make no sense, or are unsafe
// (Config.lint), as "file:line: key: warning: ..." when the config came
// from a file. -check-config prints them; start and every reload log
// them.
func (c *Config) Warnings() []string {
	if c.warnings != nil {
		return c.warnings
	}
	var out []string
	for _, w := range c.lint() {
		out = append(out, warningText(w))
	}
	return out
}

// fieldError is a Validate failure about one dotted key.
type fieldError struct {
	key, msg string
	at       string // key whose line to report when key is not in the file
}

func (e *fieldError) Error() string { return e.key + ": " + e.msg }

func invalid(key, format string, args ...any) error {
	return &fieldError{key: key, msg: fmt.Sprintf(format, args...)}
}

// locate turns Validate's field errors into ConfigErrors with lines.
func locate(path string, data []byte, err error) error {
	var out []error
	for _, e := range unjoin(err) {
		var fe *fieldError
		if errors.As(e, &fe) {
			line := keyLine(data, fe.key)
			if line == 0 && fe.at != "" {
				line = keyLine(data, fe.at)
			}
			out = append(out, &ConfigError{File: path, Line: line, Key: fe.key, Msg: fe.msg})
		} else {
			out = append(out, &ConfigError{File: path, Msg: e.Error()})
		}
	}
	return errors.Join(out...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// keyLine finds the line defining a dotted key such as "policy.delete" in
// a TOML file of plain tables and key = value pairs, or 0. The decoder
// knows positions only for syntax errors, so this covers unknown keys and
// bad values, which is what admins get wrong.
func keyLine(data []byte, dotted string) int {
	if n, ok := overrideKeyLine(data, dotted); ok { // overrides.go
		return n
	}
	table, key := "", dotted
	if i := strings.LastIndexByte(dotted, '.'); i >= 0 {
		table, key = dotted[:i], dotted[i+1:]
	}
	current := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "["):
			current = strings.Trim(strings.SplitN(line, "#", 2)[0], "[] \t")
			if current == dotted {
				return n
			}
		case current == table:
			k, _, ok := strings.Cut(line, "=")
			if ok && strings.Trim(strings.TrimSpace(k), `"'`) == key {
				return n
			}
		}
	}
	return 0
}

var (
	deletePolicies = []string{"flag", "keyword", "trash", "archive", "expunge", "keep"}
	seenPolicies   = []string{"quit", "never"}
	securities     = []string{"none", "starttls", "tls"}
	logLevels      = []string{"debug", "info", "warn", "error"}
	logFormats     = []string{"text", "json"}
)

var plaintextPolicies = []string{"loopback", "always", "never"}

// Validate checks every value and returns all problems at once.
func (c *Config) Validate() error {
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	check(validListen("pop3.listen", c.POP3.Listen))
	check(validText("pop3.greeting", c.POP3.Greeting, 1, 200))
	check(validText("pop3.implementation", c.POP3.Implementation, 0, 200))
	if c.POP3.ListenTLS != "" {
		check(validListen("pop3.listen_tls", c.POP3.ListenTLS))
		if c.TLS.Cert == "" {
			check(invalid("pop3.listen_tls", "needs [tls] cert and key"))
		}
	}
	check(oneOf("pop3.allow_plaintext", c.POP3.AllowPlaintext, plaintextPolicies))
	check(validTrusted("pop3.proxy_trusted", c.POP3.ProxyTrusted))
	if c.POP3.ProxyProtocol && len(c.POP3.ProxyTrusted) == 0 {
		check(invalid("pop3.proxy_protocol", "needs proxy_trusted (the proxies' addresses)"))
	}
	check(validKeyPair("tls", c.TLS.Cert, c.TLS.Key))
	c.Web.validate(c.TLS, check) // webconfig.go

	switch c.Upstream.Address {
	case demoAddress:
	case "": // as the packaged file ships
		check(invalid("upstream.address", "is not set: put your IMAP server's host:port here"))
	default:
		check(validAddr("upstream.address", c.Upstream.Address))
	}
	if c.Upstream.Security != "" {
		check(oneOf("upstream.security", c.Upstream.Security, securities))
	} else if !c.Upstream.local() {
		// Passwords would cross the network in the clear by default.
		check(&fieldError{key: "upstream.security", at: "upstream.address",
			msg: fmt.Sprintf("must be set for %q, which is not loopback: \"tls\" (port 993) or \"starttls\" "+
				"(certificate verified), or \"none\" to send every password in the clear", c.Upstream.Address)})
	}
	check(validText("upstream.mailbox", c.Upstream.Mailbox, 1, 1000))
	for _, f := range c.Upstream.Folders {
		check(validText("upstream.folders", f, 1, 1000))
	}
	if err := imapback.CheckFolders(c.Upstream.Folders); err != nil {
		check(invalid("upstream.folders", "%s", strings.TrimPrefix(err.Error(), "imapback: ")))
	}
	if c.Upstream.CAFile != "" {
		if _, err := os.Stat(c.Upstream.CAFile); err != nil {
			check(invalid("upstream.ca_file", "%v", err))
		}
	}
	check(positive("upstream.dial_timeout", c.Upstream.DialTimeout))
	check(positive("upstream.command_timeout", c.Upstream.CommandTimeout))

	check(oneOf("policy.delete", c.Policy.Delete, deletePolicies))
	check(oneOf("policy.seen", c.Policy.Seen, seenPolicies))
	check(validText("policy.trash", c.Policy.Trash, 1, 1000))
	check(validText("policy.archive", c.Policy.Archive, 1, 1000))
	check(validKeyword("policy.keyword", c.Policy.Keyword))

	if l := c.Limits.MaxLineLength; l < 255 || l > 65536 {
		check(invalid("limits.max_line_length", "%d is out of range 255..65536 (RFC 2449 needs 255)", l))
	}
	if c.Limits.MaxBadCommands < 1 {
		check(invalid("limits.max_bad_commands", "must be at least 1"))
	}
	if c.Limits.MaxBadCommandsAuthed < 1 {
		check(invalid("limits.max_bad_commands_authed", "must be at least 1"))
	}
	check(positive("limits.auth_timeout", c.Limits.AuthTimeout))
	if c.Limits.IdleTimeout.Duration < 10*time.Minute {
		check(invalid("limits.idle_timeout", "%v is below the 10m minimum of RFC 1939 section 3", c.Limits.IdleTimeout.Duration))
	}
	check(positive("limits.write_timeout", c.Limits.WriteTimeout))
	check(positive("limits.login_timeout", c.Limits.LoginTimeout))
	check(positive("limits.commit_timeout", c.Limits.CommitTimeout))
	check(positive("limits.shutdown_grace", c.Limits.ShutdownGrace))
	check(positive("limits.tls_handshake_timeout", c.Limits.TLSHandshakeTimeout))
	check(positive("limits.proxy_header_timeout", c.Limits.ProxyHeaderTimeout))
	check(positive("limits.auth_penalty_initial", c.Limits.AuthPenaltyInitial))
	check(positive("limits.auth_penalty_max", c.Limits.AuthPenaltyMax))
	if c.Limits.AuthPenaltyMax.Duration < c.Limits.AuthPenaltyInitial.Duration {
		check(invalid("limits.auth_penalty_max", "must not be below auth_penalty_initial"))
	}
	for _, l := range []struct {
		key string
		v   int
	}{
		{"limits.max_auth_attempts", c.Limits.MaxAuthAttempts},
		{"limits.max_connections", c.Limits.MaxConnections},
		{"limits.max_connections_per_ip", c.Limits.MaxConnectionsPerIP},
		{"limits.max_sessions_per_user", c.Limits.MaxSessionsPerUser},
	} {
		if l.v < 1 {
			check(invalid(l.key, "must be at least 1"))
		}
	}

	if c.Upstream.Address == demoAddress {
		check(validListen("demo.imap_listen", c.Demo.IMAPListen))
		check(validText("demo.user", c.Demo.User, 1, 100))
		check(validText("demo.password", c.Demo.Password, 1, 100))
	}
	if c.Metrics.Listen != "" {
		check(validListen("metrics.listen", c.Metrics.Listen))
	}
	errs = append(errs, c.listenConflicts()...)
	check(oneOf("log.level", c.Log.Level, logLevels))
	check(oneOf("log.format", c.Log.Format, logFormats))
	errs = append(errs, c.validateViews()...) // overrides.go
	return errors.Join(errs...)
}

func validAddr(key, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || port == "" {
		return invalid(key, "%q is not host:port", v)
	}
	_ = host // an empty host listens on every address
	return nil
}

func oneOf(key, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return invalid(key, "%q is not one of %s", v, strings.Join(allowed, " | "))
}

func positive(key string, d Duration) error {
	if d.Duration <= 0 {
		return invalid(key, "must be a positive duration")
	}
	return nil
}

// validText refuses control characters: these values end up in protocol
// lines (greeting, IMAP mailbox names) where CR or LF would inject.
func validText(key, v string, minLen, maxLen int) error {
	if len(v) < minLen || len(v) > maxLen {
		return invalid(key, "length must be %d..%d", minLen, maxLen)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return invalid(key, "contains a control character")
		}
	}
	return nil
}

// validKeyword checks an IMAP flag-keyword (RFC 3501 atom, no specials).
func validKeyword(key, v string) error {
	if v == "" || len(v) > 100 {
		return invalid(key, "length must be 1..100")
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return invalid(key, "%q is not a valid IMAP keyword", v)
		}
	}
	return nil
}
