package daemon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/internal/oidctest"
	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/vault"
)

const (
	vaultUser   = "alice@example.org"
	vaultUserPW = "alice-provider-pw" // at the provider
	upstreamPW  = "alice-imap-pw"     // IMAP LOGIN, for the test's own checks
)

// introspect asks the provider about token as the IMAP server would
// (RFC 7662): active, and whose it is (the client's ID for an app-only
// token).
func introspect(op *oidctest.Server, token string) (bool, string) {
	req, _ := http.NewRequest(http.MethodPost, op.IntrospectionURL(), strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(oidctest.ResourceID, oidctest.ResourceSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, ""
	}
	defer resp.Body.Close()
	var r struct {
		Active   bool   `json:"active"`
		Username string `json:"username"`
	}
	if json.NewDecoder(resp.Body).Decode(&r) != nil {
		return false, ""
	}
	return r.Active, r.Username
}

// vaultEnv is a gateway in vault mode over the in-memory upstream, which
// accepts OAUTHBEARER/XOAUTH2 tokens the test provider says are active
// for the mailbox (or app-only tokens, for any mailbox).
type vaultEnv struct {
	op   *oidctest.Server
	up   *memupstream.Server
	gw   *Gateway
	cfg  *Config
	logs *logBuffer
	dir  string
	// flags reads the upstream mailbox's flags with the user's IMAP
	// password, past the gateway.
	flags func(t *testing.T) [][]imap.Flag
}

func startVaultEnv(t *testing.T, mod func(*Config)) *vaultEnv {
	t.Helper()
	op := startProvider(t)
	up, err := memupstream.Start("127.0.0.1:0", memupstream.Options{Profile: memupstream.ProfileFull,
		CheckBearer: func(user, token string) bool {
			active, who := introspect(op, token)
			// App-only tokens open only mailboxes the app was given
			// (Add-MailboxPermission at Microsoft).
			return active && (who == user || who == oidctest.AppClientID && user == vaultUser)
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	up.AddUser(vaultUser, upstreamPW)
	for i := range 3 {
		up.Append(vaultUser, "INBOX", []byte("From: b@example.org\r\nSubject: vault "+strings.Repeat("x", i)+"\r\n\r\nbody\r\n"))
	}
	e := startVaultGateway(t, op, up.Addr(), mod)
	e.up = up
	e.flags = func(t *testing.T) [][]imap.Flag { return imapFlags(t, up.Addr(), vaultUser, upstreamPW) }
	return e
}

// startProvider starts the test OpenID provider with the vault user.
func startProvider(t *testing.T) *oidctest.Server {
	t.Helper()
	op, err := oidctest.Start(oidctest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	op.AddUser(vaultUser, vaultUserPW)
	return op
}

// startVaultGateway runs a vault-mode gateway over the IMAP server at
// addr (plaintext on loopback unless mod says otherwise), delegated
// OAuth2 at op, a SQLite store and every session traced.
func startVaultGateway(t *testing.T, op *oidctest.Server, addr string, mod func(*Config)) *vaultEnv {
	t.Helper()
	dir := t.TempDir()
	env := &vaultEnv{op: op, dir: dir}
	cfg := defaultConfig()
	cfg.POP3.Listen = "127.0.0.1:0"
	cfg.Upstream.Address = addr
	cfg.Limits.AuthPenaltyInitial = Duration{10 * time.Millisecond}
	cfg.Limits.AuthPenaltyMax = Duration{40 * time.Millisecond}
	cfg.DebugWire = "*"
	cfg.Auth = AuthConfig{
		Mode: AuthVault, Store: "sqlite:" + filepath.Join(dir, "vault.db"), KeyFile: env.file(t, "vault.key", ""),
		UpstreamAuth: UpstreamOAuth2, Mechanism: "auto",
		OAuth2: OAuth2Config{Provider: "oidc", ClientID: oidctest.ClientID,
			ClientSecretFile: env.file(t, "client.secret", oidctest.ClientSecret),
			Scopes:           []string{"openid", "offline_access", "mail"}, Grant: GrantDelegated},
	}
	if op != nil {
		cfg.Auth.OAuth2.Issuer = op.Issuer
	}
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	env.cfg = &cfg
	env.logs = &logBuffer{}
	gw, err := Start(context.Background(), &cfg, Options{Logger: slog.New(slog.NewTextHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
	})
	env.gw = gw
	return env
}

// file writes a secret file (mode 0600) into the test's directory; an
// empty content makes a vault key.
func (e *vaultEnv) file(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(e.dir, name)
	var err error
	if content == "" {
		err = vault.GenerateKeyFile(p)
	} else {
		err = os.WriteFile(p, []byte(content+"\n"), 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// admin runs an admin command as `popbridge -config FILE ARGS...` does.
func (e *vaultEnv) admin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := RunAdmin(context.Background(), e.cfg, args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

var (
	verifyRE   = regexp.MustCompile(`open\s+(\S+)\s+code\s+(\S+)`)
	devicePwRE = regexp.MustCompile(`(?m)^\s+([0-9A-Za-z]{5}(?:-[0-9A-Za-z]{5}){3})\s*$`)
)

// enroll runs `enroll USER` and approves the device code at the
// provider's pages as the user would in a browser.
func (e *vaultEnv) enroll(t *testing.T) string {
	t.Helper()
	out := &logBuffer{}
	var errOut strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- RunAdmin(context.Background(), e.cfg, []string{"enroll", vaultUser}, strings.NewReader(""), out, &errOut)
	}()
	var m []string
	for i := 0; m == nil; i++ {
		if i == 400 {
			t.Fatalf("enroll printed no URL and code: %q", out.String())
		}
		time.Sleep(25 * time.Millisecond)
		m = verifyRE.FindStringSubmatch(out.String())
	}
	if err := oidctest.ApproveDevice(context.Background(), m[1], m[2], vaultUser, vaultUserPW, true); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 0 {
		t.Fatalf("enroll: exit %d, stderr %q", code, errOut.String())
	}
	if !strings.Contains(out.String(), "Enrolled "+vaultUser) {
		t.Errorf("enroll output %q, want Enrolled %s", out.String(), vaultUser)
	}
	return out.String()
}

// addDevice runs `device add` and returns the password it printed.
func (e *vaultEnv) addDevice(t *testing.T, name string, extra ...string) string {
	t.Helper()
	code, out, errOut := e.admin(t, append([]string{"device", "add", vaultUser, name}, extra...)...)
	m := devicePwRE.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("device add: exit %d, out %q, err %q", code, out, errOut)
	}
	return m[1]
}

// login opens a POP3 session and sends USER/PASS; it returns the client
// and the PASS reply.
func (e *vaultEnv) login(t *testing.T, pass string) (*pop3test.Client, string) {
	t.Helper()
	c := dialPOP3(t, e.gw.POP3Addr())
	c.Cmd("USER " + vaultUser)
	return c, c.Cmd("PASS " + pass)
}

func requireCurl(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("curl")
	if err != nil {
		dovecottest.SkipOrFail(t, "curl not installed")
	}
	return p
}

// TestVaultDelegatedEndToEnd: enrol with the device flow at a real OIDC
// provider, add a device, download and delete with curl using the device
// password, and see the flags upstream; a wrong or revoked password is an
// ordinary failed login; an access token the provider expired early is
// replaced in the next session; a grant revoked at the provider gives
// the fixed [SYS/PERM] reply and changes nothing upstream. No secret
// shows in the log (with every session traced), the metrics or replies.
func TestVaultDelegatedEndToEnd(t *testing.T) {
	curl := requireCurl(t)
	e := startVaultEnv(t, nil)
	enrolOut := e.enroll(t)
	pw := e.addDevice(t, "phone")

	vaultCurlRetrDele(t, e, curl, pw)
	vaultWrongPassword(t, e)
	vaultExpiredTokenRefresh(t, e, pw)
	pw2 := vaultRevokedDevice(t, e)

	// Secrets for the canary checks, read before the grant is revoked.
	tokens := storedTokens(t, e)

	vaultRevokedGrant(t, e, pw)
	checkVaultMetrics(t, e)
	checkVaultCanaries(t, e, enrolOut, map[string]string{"device password": pw, "second device password": pw2,
		"client secret": oidctest.ClientSecret, "refresh token": tokens.Refresh, "access token": tokens.Access})
}

// vaultCurlRetrDele downloads message 1 and deletes message 2 with a real
// POP3 client, and checks the flags upstream.
func vaultCurlRetrDele(t *testing.T, e *vaultEnv, curl, pw string) {
	t.Helper()
	addr := e.gw.POP3Addr()
	out, err := exec.Command(curl, "--silent", "--show-error", "--max-time", "30",
		"--user", vaultUser+":"+pw, "pop3://"+addr+"/1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Subject: vault") {
		t.Fatalf("curl RETR 1: %v: %q", err, out)
	}
	out, err = exec.Command(curl, "--silent", "--show-error", "--max-time", "30",
		"--user", vaultUser+":"+pw, "--request", "DELE", "--head", "pop3://"+addr+"/2").CombinedOutput()
	if err != nil {
		t.Fatalf("curl DELE 2: %v: %q", err, out)
	}
	flags := e.flags(t)
	if len(flags) != 3 || !slices.Contains(flags[0], imap.FlagSeen) || !slices.Contains(flags[1], imap.FlagDeleted) ||
		slices.Contains(flags[2], imap.FlagDeleted) {
		t.Fatalf("upstream flags after RETR 1 and DELE 2 = %v, want 1 seen, 2 deleted, 3 untouched", flags)
	}
	if got := e.op.TokenCalls(oidctest.GrantRefresh); got != 0 {
		t.Errorf("refreshes after enrolment = %d, want 0 (the enrolled access token is still valid)", got)
	}
}

// vaultWrongPassword: a wrong password gets the same reply as any failed
// login, and the fail2ban line; the provider is not asked.
func vaultWrongPassword(t *testing.T, e *vaultEnv) {
	t.Helper()
	c, r := e.login(t, "aaaaa-bbbbb-ccccc-ddddd")
	if r != "-ERR [AUTH] Authentication failed.\r\n" {
		t.Errorf("wrong device password: %q, want -ERR [AUTH] Authentication failed.", r)
	}
	c.Cmd("QUIT")
	if !strings.Contains(e.logs.String(), "pop3 login failed") {
		t.Error("no 'pop3 login failed' line for a wrong device password")
	}
}

// vaultExpiredTokenRefresh: the provider ends the access token before its
// stated expiry: the upstream refuses it, the gateway refreshes once and
// logs in; the provider rotates the refresh token and the store keeps the
// new one.
func vaultExpiredTokenRefresh(t *testing.T, e *vaultEnv, pw string) {
	t.Helper()
	enrolled := storedTokens(t, e)
	e.op.ExpireAccessTokens()
	c, r := e.login(t, pw)
	if !strings.HasPrefix(r, "+OK") {
		t.Fatalf("login after the provider expired the token: %q", r)
	}
	c.Cmd("QUIT")
	if got := e.op.TokenCalls(oidctest.GrantRefresh); got != 1 {
		t.Errorf("refreshes after the token expired = %d, want 1", got)
	}
	if rotated := storedTokens(t, e); rotated.Refresh == enrolled.Refresh || rotated.Access == enrolled.Access {
		t.Error("the store still holds the enrolled tokens after a refresh with rotation")
	}
	c, r = e.login(t, pw)
	if !strings.HasPrefix(r, "+OK") {
		t.Fatalf("second login with the refreshed token: %q", r)
	}
	c.Cmd("QUIT")
	if got := e.op.TokenCalls(oidctest.GrantRefresh); got != 1 {
		t.Errorf("refreshes after a cached login = %d, want 1", got)
	}
}

// vaultRevokedDevice adds a second device and revokes it: its next login
// fails like a wrong password. It returns the revoked device's password.
func vaultRevokedDevice(t *testing.T, e *vaultEnv) string {
	t.Helper()
	pw2 := e.addDevice(t, "tablet")
	if code, _, errOut := e.admin(t, "device", "revoke", vaultUser, "tablet"); code != 0 {
		t.Fatalf("device revoke: exit %d: %s", code, errOut)
	}
	c, r := e.login(t, pw2)
	if r != "-ERR [AUTH] Authentication failed.\r\n" {
		t.Errorf("revoked device: %q, want -ERR [AUTH] Authentication failed.", r)
	}
	c.Cmd("QUIT")
	return pw2
}

// vaultRevokedGrant: the grant revoked at the provider gives [SYS/PERM]
// with the fixed text, an error line naming the user, nothing changed
// upstream.
func vaultRevokedGrant(t *testing.T, e *vaultEnv, pw string) {
	t.Helper()
	before := e.flags(t)
	e.op.RevokeUser(vaultUser)
	e.op.ExpireAccessTokens()
	c, r := e.login(t, pw)
	if r != "-ERR [SYS/PERM] "+textReenroll+"\r\n" {
		t.Errorf("revoked grant: %q, want -ERR [SYS/PERM] %s", r, textReenroll)
	}
	c.Cmd("QUIT")
	if after := e.flags(t); !slices.EqualFunc(before, after, slices.Equal) {
		t.Errorf("upstream flags changed by a refused login: %v -> %v", before, after)
	}
	if !regexp.MustCompile(`level=ERROR msg="user must be enrolled again[^\n]*user=` + regexp.QuoteMeta(vaultUser)).MatchString(e.logs.String()) {
		t.Errorf("no error log line naming the user for the revoked grant:\n%s", e.logs)
	}
	code, users, _ := e.admin(t, "user", "list")
	if code != 0 || !strings.Contains(users, "NEEDS RE-ENROLMENT") {
		t.Errorf("user list after the revoked grant: exit %d, %q; want NEEDS RE-ENROLMENT", code, users)
	}
}

// checkVaultMetrics checks the vault series after the delegated scenario.
func checkVaultMetrics(t *testing.T, e *vaultEnv) {
	t.Helper()
	for series, want := range map[string]float64{
		`popbridge_vault_logins_total{result="ok"}`:                     4,
		`popbridge_vault_logins_total{result="failed"}`:                 2,
		`popbridge_vault_logins_total{result="permanent_error"}`:        1,
		`popbridge_vault_token_refreshes_total{result="ok"}`:            1,
		`popbridge_vault_token_refreshes_total{result="invalid_grant"}`: 1,
		`popbridge_vault_users_needing_reenrollment`:                    1,
	} {
		if got := metricValue(t, e.gw, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// checkVaultCanaries: no secret in the log (every session traced), the
// metrics, or what the admin commands printed besides the password
// itself once.
func checkVaultCanaries(t *testing.T, e *vaultEnv, enrolOut string, secrets map[string]string) {
	t.Helper()
	rec := httptest.NewRecorder()
	e.gw.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for name, s := range secrets {
		if s == "" {
			t.Fatalf("canary %s is empty", name)
		}
		for where, text := range map[string]string{"log": e.logs.String(), "metrics": rec.Body.String(), "enroll output": enrolOut} {
			if strings.Contains(text, s) || strings.Contains(text, strings.ReplaceAll(s, "-", "")) {
				t.Errorf("%s appears in the %s", name, where)
			}
		}
	}
	if !strings.Contains(e.logs.String(), "imap wire") || !strings.Contains(e.logs.String(), "pop3 wire") {
		t.Error("the wire trace was not on: the canary check saw nothing")
	}
}

// storedTokens reads the grant the gateway uses from the store.
func storedTokens(t *testing.T, e *vaultEnv) vault.Tokens {
	t.Helper()
	key, err := vault.LoadKeyFile(e.cfg.Auth.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	st, err := vault.Open(context.Background(), e.cfg.Auth.Store, vault.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t1, err := st.Refresh(context.Background(), vaultUser, func(cur vault.Tokens) (vault.Tokens, error) { return cur, nil })
	if err != nil {
		t.Fatal(err)
	}
	return t1
}

// TestVaultAppOnly: the client-credentials grant gives one app token for
// every mailbox; no enrolment, no key file. Logins with USER/PASS and
// AUTH PLAIN share the token: one request at the provider.
func TestVaultAppOnly(t *testing.T) {
	e := startVaultEnv(t, func(c *Config) {
		c.Auth.KeyFile = ""
		c.Auth.OAuth2.Grant = GrantClientCredentials
		c.Auth.OAuth2.ClientID = oidctest.AppClientID
		c.Auth.OAuth2.Scopes = []string{"mail"}
		c.POP3.UserModifiers = []UserModifier{ModifierKeep}
		if err := os.WriteFile(c.Auth.OAuth2.ClientSecretFile, []byte(oidctest.AppClientSecret), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	if code, _, errOut := e.admin(t, "enroll", vaultUser); code != 1 || !strings.Contains(errOut, "no enrolment") {
		t.Errorf("enroll with app-only access: exit %d, %q; want 1 and no enrolment", code, errOut)
	}
	pw := e.addDevice(t, "scanner", "--allow", "127.0.0.0/8")

	c, r := e.login(t, pw)
	if !strings.HasPrefix(r, "+OK") {
		t.Fatalf("USER/PASS with an app-only token: %q", r)
	}
	if r := c.Cmd("DELE 3"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("DELE 3: %q", r)
	}
	if r := c.Cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("QUIT: %q", r)
	}
	if f := e.flags(t); len(f) != 3 || !slices.Contains(f[2], imap.FlagDeleted) || slices.Contains(f[0], imap.FlagDeleted) {
		t.Errorf("upstream flags after DELE 3 = %v", f)
	}

	// A username modifier is taken off before the device password is
	// checked: keep:USER logs in as USER, and its DELE keeps the message.
	c = dialPOP3(t, e.gw.POP3Addr())
	c.Cmd("USER keep:" + vaultUser)
	if r := c.Cmd("PASS " + pw); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("keep:%s with the device password: %q", vaultUser, r)
	}
	c.Cmd("DELE 1")
	c.Cmd("QUIT")
	if f := e.flags(t); slices.Contains(f[0], imap.FlagDeleted) {
		t.Errorf("DELE under keep: deleted upstream: %v", f)
	}

	c = dialPOP3(t, e.gw.POP3Addr())
	if r := c.Cmd("AUTH PLAIN " + b64("\x00"+vaultUser+"\x00"+pw)); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("AUTH PLAIN with the device password: %q", r)
	}
	c.Cmd("QUIT")
	c = dialPOP3(t, e.gw.POP3Addr())
	if r := c.Cmd("AUTH PLAIN " + b64("\x00"+vaultUser+"\x00"+"wrong-password")); r != "-ERR [AUTH] Authentication failed.\r\n" {
		t.Errorf("AUTH PLAIN with a wrong password: %q", r)
	}
	c.Cmd("QUIT")
	if got := e.op.TokenCalls("client_credentials"); got != 1 {
		t.Errorf("client-credentials requests = %d, want 1 (the token is cached)", got)
	}
	if got := e.op.TokenCalls(oidctest.GrantRefresh); got != 0 {
		t.Errorf("refresh requests = %d, want 0", got)
	}
	if got := metricValue(t, e.gw, `popbridge_vault_token_refreshes_total{result="ok"}`); got != 1 {
		t.Errorf("token refreshes ok = %v, want 1", got)
	}

	// A mailbox the app may not open: the token is refused, a fresh one
	// too, and the device is told [SYS/PERM] (not a failed login); the
	// log names the user.
	e.up.AddUser("bob@example.org", "bob-imap-pw")
	code, out, _ := e.admin(t, "device", "add", "bob@example.org", "phone")
	bobPW := devicePwRE.FindStringSubmatch(out)
	if code != 0 || bobPW == nil {
		t.Fatalf("device add bob: %d %q", code, out)
	}
	c = dialPOP3(t, e.gw.POP3Addr())
	c.Cmd("USER bob@example.org")
	if r := c.Cmd("PASS " + bobPW[1]); r != "-ERR [SYS/PERM] "+textRefused+"\r\n" {
		t.Errorf("app token for a mailbox without permission: %q, want -ERR [SYS/PERM] %s", r, textRefused)
	}
	c.Cmd("QUIT")
	if !regexp.MustCompile(`level=ERROR msg="upstream refused a fresh access token[^\n]*user=bob@example.org`).MatchString(e.logs.String()) {
		t.Error("no error line naming bob for the refused app token")
	}
	if got := e.op.TokenCalls("client_credentials"); got != 2 {
		t.Errorf("client-credentials requests after one refusal = %d, want 2 (one retry with a fresh token)", got)
	}

	// An app token the provider ended early is replaced: one more request.
	e.op.ExpireAccessTokens()
	c, r = e.login(t, pw)
	if !strings.HasPrefix(r, "+OK") {
		t.Fatalf("login after the provider expired the app token: %q", r)
	}
	c.Cmd("QUIT")
	if got := e.op.TokenCalls("client_credentials"); got != 3 {
		t.Errorf("client-credentials requests after an early expiry = %d, want 3", got)
	}
}

// TestVaultProviderDown: the upstream refuses the cached token and the
// provider cannot be reached for a new one: [SYS/TEMP], not a failed
// login, and the grant is kept.
func TestVaultProviderDown(t *testing.T) {
	e := startVaultEnv(t, nil)
	e.enroll(t)
	pw := e.addDevice(t, "phone")
	e.op.ExpireAccessTokens()
	e.op.Close()
	c, r := e.login(t, pw)
	if r != "-ERR [SYS/TEMP] "+textProviderTemp+"\r\n" {
		t.Errorf("provider down: %q, want -ERR [SYS/TEMP] %s", r, textProviderTemp)
	}
	c.Cmd("QUIT")
	if strings.Contains(e.logs.String(), "pop3 login failed") {
		t.Error("an unreachable provider was logged as a failed login (fail2ban would ban the device)")
	}
	if got := metricValue(t, e.gw, `popbridge_vault_logins_total{result="temporary_error"}`); got != 1 {
		t.Errorf("temporary_error logins = %v, want 1", got)
	}
	if got := metricValue(t, e.gw, `popbridge_vault_users_needing_reenrollment`); got != 0 {
		t.Errorf("users needing re-enrolment = %v, want 0", got)
	}
}

// filepathIn writes a 0600 secret file named name beside sibling.
func filepathIn(t *testing.T, sibling, name, content string) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(sibling), name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVaultReadiness: /readyz includes the store.
func TestVaultReadiness(t *testing.T) {
	e := startVaultEnv(t, func(c *Config) { c.Metrics.Listen = "127.0.0.1:0" })
	get := func() (int, string) {
		resp, err := http.Get("http://" + e.gw.MetricsAddr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := get(); code != 200 {
		t.Fatalf("/readyz with store and upstream up = %d %q, want 200", code, body)
	}
	e.gw.vault.store.Close()
	time.Sleep(3 * time.Second) // past the readiness cache (2 s)
	if code, body := get(); code != 503 || !strings.Contains(body, "vault store") {
		t.Errorf("/readyz with the store closed = %d %q, want 503 naming the vault store", code, body)
	}
}

// TestVaultReload: a reload keeps the vault (the store and token caches
// are opened at start): a changed [auth] is reported and ignored, and
// new sessions still log in with device passwords.
func TestVaultReload(t *testing.T) {
	e := startVaultEnv(t, nil)
	e.enroll(t)
	pw := e.addDevice(t, "phone")
	next := *e.cfg
	next.Auth.Mode = AuthPassthrough
	next.Policy.Delete = "keep"
	if err := e.gw.Reload(context.Background(), &next); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.logs.String(), `needs a restart; keeping the running value" key=auth`) {
		t.Errorf("no warning that [auth] needs a restart:\n%s", e.logs)
	}
	c, r := e.login(t, pw)
	if !strings.HasPrefix(r, "+OK") {
		t.Fatalf("device login after a reload: %q", r)
	}
	c.Cmd("DELE 1")
	c.Cmd("QUIT")
	if f := e.flags(t); slices.Contains(f[0], imap.FlagDeleted) {
		t.Errorf("the reloaded policy (keep) was not applied: %v", f)
	}
}
