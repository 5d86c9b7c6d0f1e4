package daemon

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/pop3front"
)

// Config is the gateway's configuration, read from a TOML file. Every key
// is documented in README.md; the [pop3] listen, [upstream] and [policy]
// keys are a contract that deployment docs rely on.
//
// Adding a key takes one line in each place: a field with its toml tag
// in its table's struct (a new table: a struct and a field here); its
// default in defaultConfig, or in the package it configures when that
// package has its own (imapback.DefaultPolicy, pop3front.DefaultLimits);
// a fixed set of values as a type with UnmarshalText and Check
// (values.go), or any other rule in Validate; and its README.md row,
// which TestREADMEConfigTablesMatchCode requires. Unknown keys, decoding,
// and the file:line: key: problem errors need nothing more.
type Config struct {
	POP3     POP3Config     `toml:"pop3"`
	TLS      TLSConfig      `toml:"tls"`
	Upstream UpstreamConfig `toml:"upstream"`
	Policy   PolicyConfig   `toml:"policy"`
	Limits   LimitsConfig   `toml:"limits"`
	Demo     DemoConfig     `toml:"demo"`
	Metrics  MetricsConfig  `toml:"metrics"`
	Pprof    PprofConfig    `toml:"pprof"` // pprof.go
	Log      LogConfig      `toml:"log"`
	Auth     AuthConfig     `toml:"auth"` // authconfig.go
	Web      WebConfig      `toml:"web"`  // webconfig.go

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
	// AllowPlaintext: where passwords may be sent without TLS.
	AllowPlaintext  PlaintextPolicy `toml:"allow_plaintext"`
	AllowMasterUser bool            `toml:"allow_master_user"`
	ProxyProtocol   bool            `toml:"proxy_protocol"`
	ProxyTrusted    []string        `toml:"proxy_trusted"`
	// Username modifiers (overrides.go): "keep:alice" logs in as alice
	// with delete = keep. Off unless listed.
	UserModifiers     []UserModifier `toml:"user_modifiers"`
	ModifierSeparator string         `toml:"modifier_separator"`
	RecentMaxAge      AgeDuration    `toml:"recent_max_age"`
	RecentMaxMessages int            `toml:"recent_max_messages"`
}

// TLSConfig is the client-facing certificate, for listen_tls and STLS.
type TLSConfig struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// UpstreamConfig says where the IMAP server is and how to reach it.
type UpstreamConfig struct {
	Address string `toml:"address"`
	// Security unset ("") is allowed only for the demo and loopback
	// addresses, where it means none.
	Security imapback.Security `toml:"security"`
	Mailbox  string            `toml:"mailbox"`
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

// PolicyConfig says what POP3 actions become upstream: imapback's
// Policy (policyConfig, basePolicy), with per-user overrides.
type PolicyConfig struct {
	UserPolicy
	Trash            string `toml:"trash"`
	Archive          string `toml:"archive"`
	Keyword          string `toml:"keyword"`
	RetrievedKeyword string `toml:"retrieved_keyword"`
	// Override: each [[policy.override]] table is decoded onto a copy of
	// the [policy] table's UserPolicy (decodeOverrides).
	Override []OverrideConfig `toml:"override"`
}

// UserPolicy holds the [policy] keys a [[policy.override]] table may give
// again. UIDL schemes and POP views: overrides.go, imapback/uidl.go,
// imapback/views.go.
type UserPolicy struct {
	Delete         imapback.DeletePolicy `toml:"delete"`
	Seen           imapback.SeenPolicy   `toml:"seen"`
	FallbackToFlag bool                  `toml:"fallback_to_flag"`
	UIDL           imapback.UIDLScheme   `toml:"uidl"`
	UIDLRequired   bool                  `toml:"uidl_required"`
	HideRetrieved  bool                  `toml:"hide_retrieved"`
	MaxMessages    int                   `toml:"max_messages"`
	Window         imapback.Window       `toml:"window"`
	MaxAge         AgeDuration           `toml:"max_age"`
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

// pop3 is the [limits] table as pop3front's Limits.
func (l LimitsConfig) pop3() pop3front.Limits {
	return pop3front.Limits{
		MaxLineLength:        l.MaxLineLength,
		MaxBadCommands:       l.MaxBadCommands,
		MaxBadCommandsAuthed: l.MaxBadCommandsAuthed,
		AuthTimeout:          l.AuthTimeout.Duration,
		IdleTimeout:          l.IdleTimeout.Duration,
		WriteTimeout:         l.WriteTimeout.Duration,
		LoginTimeout:         l.LoginTimeout.Duration,
		CommitTimeout:        l.CommitTimeout.Duration,
		TLSHandshakeTimeout:  l.TLSHandshakeTimeout.Duration,
		MaxAuthAttempts:      l.MaxAuthAttempts,
		AuthPenaltyInitial:   l.AuthPenaltyInitial.Duration,
		AuthPenaltyMax:       l.AuthPenaltyMax.Duration,
		MaxConnections:       l.MaxConnections,
		MaxConnectionsPerIP:  l.MaxConnectionsPerIP,
		MaxSessionsPerUser:   l.MaxSessionsPerUser,
	}
}

// limitsConfig is the reverse of pop3: pop3front's limits, with the
// daemon's own (shutdown_grace, proxy_header_timeout) taken from own.
func limitsConfig(p pop3front.Limits, own LimitsConfig) LimitsConfig {
	l := own
	l.MaxLineLength = p.MaxLineLength
	l.MaxBadCommands = p.MaxBadCommands
	l.MaxBadCommandsAuthed = p.MaxBadCommandsAuthed
	l.AuthTimeout = Duration{p.AuthTimeout}
	l.IdleTimeout = Duration{p.IdleTimeout}
	l.WriteTimeout = Duration{p.WriteTimeout}
	l.LoginTimeout = Duration{p.LoginTimeout}
	l.CommitTimeout = Duration{p.CommitTimeout}
	l.TLSHandshakeTimeout = Duration{p.TLSHandshakeTimeout}
	l.MaxAuthAttempts = p.MaxAuthAttempts
	l.AuthPenaltyInitial = Duration{p.AuthPenaltyInitial}
	l.AuthPenaltyMax = Duration{p.AuthPenaltyMax}
	l.MaxConnections = p.MaxConnections
	l.MaxConnectionsPerIP = p.MaxConnectionsPerIP
	l.MaxSessionsPerUser = p.MaxSessionsPerUser
	return l
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
	Level  LogLevel  `toml:"level"`
	Format LogFormat `toml:"format"`
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
// Defaults of imapback and pop3front are theirs: written there, once.
func defaultConfig() Config {
	return Config{
		POP3: POP3Config{
			Listen:         "127.0.0.1:1110",
			Greeting:       pop3front.DefaultGreeting,
			AllowPlaintext: PlaintextLoopback,

			ModifierSeparator: ":",
			RecentMaxAge:      AgeDuration{30 * 24 * time.Hour},
		},
		Upstream: UpstreamConfig{
			Address:        demoAddress,
			Mailbox:        imapback.DefaultMailbox,
			DialTimeout:    Duration{imapback.DefaultDialTimeout},
			CommandTimeout: Duration{imapback.DefaultCommandTimeout},

			ForwardClientAddress: true,
		},
		Policy: policyConfig(imapback.DefaultPolicy()),
		Limits: limitsConfig(pop3front.DefaultLimits(), LimitsConfig{
			ShutdownGrace:      Duration{10 * time.Second},
			ProxyHeaderTimeout: Duration{5 * time.Second},
		}),
		Demo: DemoConfig{
			IMAPListen: "127.0.0.1:1143",
			User:       "demo",
			Password:   "demo",
		},
		Log:  LogConfig{Level: "info", Format: "text"},
		Auth: defaultAuthConfig(), // authconfig.go
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

// parseConfig decodes data onto the defaults, then validates. The
// decoder stops at the first value it refuses (a type's UnmarshalText, a
// wrong type); that line is blanked and data decoded again, so every bad
// value is reported at once, with Validate's problems.
func parseConfig(path string, data []byte) (*Config, error) {
	var refused []*ConfigError
	text := data
	for {
		cfg, md, err := decodeConfig(text)
		if err == nil {
			return checkConfig(path, data, &cfg, md, inFileOrder(refused))
		}
		ce := decodeError(path, data, err)
		if len(md.Keys()) == 0 { // a syntax error: nothing was decoded
			if len(refused) > 0 { // then a blanked line caused it
				return nil, errors.Join(inFileOrder(refused)...)
			}
			return nil, ce
		}
		refused = append(refused, ce)
		if text, err = blankLine(text, ce.Line); err != nil {
			return nil, errors.Join(inFileOrder(refused)...)
		}
	}
}

// inFileOrder sorts decoding errors by line: the decoder walks a table's
// keys in no fixed order.
func inFileOrder(ces []*ConfigError) []error {
	slices.SortStableFunc(ces, func(a, b *ConfigError) int { return a.Line - b.Line })
	errs := make([]error, len(ces))
	for i, ce := range ces {
		errs[i] = ce
	}
	return errs
}

// configFile is what the decoder fills: the Config, with the
// [[policy.override]] tables kept raw for decodeOverrides (this field
// hides PolicyConfig.Override from the decoder).
type configFile struct {
	*Config
	Policy struct {
		*PolicyConfig
		Override []toml.Primitive `toml:"override"`
	} `toml:"policy"`
}

func decodeConfig(data []byte) (Config, toml.MetaData, error) {
	cfg := defaultConfig()
	f := configFile{Config: &cfg}
	f.Policy.PolicyConfig = &cfg.Policy
	md, err := toml.Decode(string(data), &f)
	if err == nil {
		err = decodeOverrides(&md, f.Policy.Override, &cfg.Policy)
	}
	return cfg, md, err
}

// decodeOverrides decodes each [[policy.override]] table onto a copy of
// [policy]'s UserPolicy: only the keys a table gives replace the
// global ones.
func decodeOverrides(md *toml.MetaData, tables []toml.Primitive, p *PolicyConfig) error {
	for i, t := range tables {
		o := OverrideConfig{UserPolicy: p.UserPolicy}
		if err := md.PrimitiveDecode(t, &o); err != nil {
			return &overrideError{n: i + 1, err: err}
		}
		p.Override = append(p.Override, o)
	}
	return nil
}

// overrideError is a decoding error in the nth [[policy.override]].
type overrideError struct {
	n   int
	err error
}

func (e *overrideError) Error() string { return e.err.Error() }

var decodeErrRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// decodeError locates a decoding error in data.
func decodeError(path string, data []byte, err error) *ConfigError {
	var oe *overrideError
	if errors.As(err, &oe) {
		err = oe.err
	}
	var ce *ConfigError
	var pe toml.ParseError
	if errors.As(err, &pe) {
		ce = &ConfigError{File: path, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
	} else if m := decodeErrRE.FindStringSubmatch(err.Error()); m != nil {
		// Type errors come as plain errors: "toml: line N (last key "k"): msg".
		line, _ := strconv.Atoi(m[1])
		ce = &ConfigError{File: path, Line: line, Key: m[2], Msg: m[3]}
	} else {
		return &ConfigError{File: path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	if oe != nil {
		// The decoder keeps one line per key name, not one per table.
		ce.Key = fmt.Sprintf("policy.override[%d].%s", oe.n, strings.TrimPrefix(ce.Key, "policy.override."))
		ce.Line, _ = overrideKeyLine(data, ce.Key)
	}
	return ce
}

// blankLine empties line n (from 1) of data, which must hold something.
func blankLine(data []byte, n int) ([]byte, error) {
	lines := bytes.Split(data, []byte("\n"))
	if n < 1 || n > len(lines) || len(bytes.TrimSpace(lines[n-1])) == 0 {
		return nil, errors.New("no line to blank")
	}
	lines = slices.Clone(lines)
	lines[n-1] = nil
	return bytes.Join(lines, []byte("\n")), nil
}

// checkConfig reports, after the decoding errors, the unknown keys, or
// else Validate's problems, located in data; it collects the warnings.
func checkConfig(path string, data []byte, cfg *Config, md toml.MetaData, errs []error) (*Config, error) {
	if und := md.Undecoded(); len(und) > 0 {
		for _, k := range und {
			key := k.String()
			errs = append(errs, &ConfigError{File: path, Line: keyLine(data, key), Key: key, Msg: "unknown key"})
		}
		return nil, errors.Join(errs...)
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, unjoin(locate(path, data, err))...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if ws := cfg.lint(); len(ws) > 0 {
		for _, w := range unjoin(locate(path, data, errors.Join(ws...))) {
			cfg.warnings = append(cfg.warnings, warningText(w))
		}
	}
	return cfg, nil
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
	check(validTrusted("pop3.proxy_trusted", c.POP3.ProxyTrusted))
	if c.POP3.ProxyProtocol && len(c.POP3.ProxyTrusted) == 0 {
		check(invalid("pop3.proxy_protocol", "needs proxy_trusted (the proxies' addresses)"))
	}
	check(validKeyPair("tls", c.TLS.Cert, c.TLS.Key))
	c.Web.validate(c.TLS, &c.Auth, check) // webconfig.go

	switch c.Upstream.Address {
	case demoAddress:
	case "": // as the packaged file ships
		check(invalid("upstream.address", "is not set: put your IMAP server's host:port here"))
	default:
		check(validAddr("upstream.address", c.Upstream.Address))
	}
	if c.Upstream.Security == "" && !c.Upstream.local() {
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

	check(validText("policy.trash", c.Policy.Trash, 1, 1000))
	check(validText("policy.archive", c.Policy.Archive, 1, 1000))
	check(validKeyword("policy.keyword", c.Policy.Keyword))
	errs = append(errs, checkValues(reflect.ValueOf(c).Elem(), "", nil)...)

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
	if c.Pprof.Listen != "" {
		check(validPprofAddr("pprof.listen", c.Pprof.Listen))
	}
	errs = append(errs, c.listenConflicts()...)
	errs = append(errs, c.validateViews()...) // overrides.go
	errs = append(errs, c.validateAuth()...)  // authconfig.go
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

// validKeyword checks an IMAP flag-keyword (imapback.CheckKeyword).
func validKeyword(key, v string) error {
	if err := imapback.CheckKeyword(v); err != nil {
		return invalid(key, "%v", err)
	}
	return nil
}
