package dovecottest

import (
	"fmt"
	"strings"
)

// config holds what varies between instances in the Dovecot configuration.
type config struct {
	instanceName string
	baseDir      string // short path: it holds unix sockets (108-byte limit)
	stateDir     string
	logPath      string
	passwdFile   string
	homeRoot     string
	imapPort     int
	pop3Port     int
	mailUID      int
	mailGID      int
	extra        string
	oauth2File   string // oauth2 passdb settings; empty: no OAuth2
}

// render returns the text of a self-contained dovecot.conf (it includes
// nothing from /etc/dovecot).
//
// Notes on the settings:
//   - pop3_uidl_format %08Xu%08Xv is Dovecot's default spelled out: in
//     Dovecot's variable syntax the X modifier means hexadecimal and yields
//     lowercase digits, so the UIDL is exactly printf("%08x%08x", uid,
//     uidvalidity). (%08xu is rejected as an unknown variable.)
//   - auth_username_format = %u keeps user names as given (the default, %Lu,
//     lowercases them), and homes are named by the MD5 of the user name (%Mu)
//     so that any name maps to a safe directory name.
//   - mail_max_userip_connections is raised because every gateway session is
//     one IMAP connection from 127.0.0.1.
func (c config) render() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Written by popbridge's dovecottest for one test; do not edit.")
	w("instance_name = %s", c.instanceName)
	w("base_dir = %s", c.baseDir)
	w("state_dir = %s", c.stateDir)
	w("log_path = %s", c.logPath)
	w("protocols = imap pop3")
	w("listen = 127.0.0.1")
	w("ssl = no")
	w("disable_plaintext_auth = no")
	if c.oauth2File != "" {
		w("auth_mechanisms = plain login xoauth2 oauthbearer")
	} else {
		w("auth_mechanisms = plain login")
	}
	w("auth_username_format = %%u")
	w("login_trusted_networks = 127.0.0.0/8")
	w("mail_location = maildir:~/Maildir")
	w("mail_save_crlf = yes")
	w("mail_uid = %d", c.mailUID)
	w("mail_gid = %d", c.mailGID)
	w("first_valid_uid = %d", c.mailUID)
	w("last_valid_uid = %d", c.mailUID)
	w("first_valid_gid = %d", c.mailGID)
	w("last_valid_gid = %d", c.mailGID)
	w("mail_max_userip_connections = 1000")
	w("pop3_uidl_format = %%08Xu%%08Xv")
	w("passdb {")
	w("  driver = passwd-file")
	w("  args = scheme=PLAIN username_format=%%u %s", c.passwdFile)
	if c.oauth2File != "" {
		w("  mechanisms = plain login")
		w("}")
		w("passdb {")
		w("  driver = oauth2")
		w("  mechanisms = xoauth2 oauthbearer")
		w("  args = %s", c.oauth2File)
	}
	w("}")
	w("userdb {")
	w("  driver = static")
	w("  args = uid=%d gid=%d home=%s/%%Mu", c.mailUID, c.mailGID, c.homeRoot)
	w("}")
	w("service imap-login {")
	w("  inet_listener imap {")
	w("    address = 127.0.0.1")
	w("    port = %d", c.imapPort)
	w("  }")
	w("  inet_listener imaps {")
	w("    port = 0")
	w("  }")
	w("}")
	w("service pop3-login {")
	w("  inet_listener pop3 {")
	w("    address = 127.0.0.1")
	w("    port = %d", c.pop3Port)
	w("  }")
	w("  inet_listener pop3s {")
	w("    port = 0")
	w("  }")
	w("}")
	if c.extra != "" {
		w("%s", c.extra)
	}
	return b.String()
}
