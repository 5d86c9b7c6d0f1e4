// Package dovecottest starts a private Dovecot instance for a test.
//
// Each instance runs in the foreground from a configuration file written
// into a private directory (dovecot -c FILE -F), listens for IMAP
// and POP3 on free loopback ports, authenticates users from a passwd-file with
// {PLAIN} passwords, and stores mail in Maildir directories owned by the
// unprivileged system user MailUser. The instance is stopped when the test
// ends.
//
// Everything an instance needs (configuration, passwd-file, Maildir homes,
// base_dir sockets, state and log) lives in one private directory that is
// removed when the test ends; the log's tail is printed when the test fails.
//
// Beside the addresses (IMAPAddr, POP3Addr), an instance offers seeding
// (Deliver writes Maildir files byte for byte; CreateMailbox; Doveadm runs
// any doveadm command against it) and an oracle read over a separate IMAP
// connection that changes nothing: Snapshot (UID, flags, RFC822.SIZE and
// SHA-256 of BODY[] per message), Messages (with the bytes), UIDValidity,
// and Login for a logged-in go-imap client acting as another device.
//
// With Options.OAuth2, an instance also accepts SASL XOAUTH2 and
// OAUTHBEARER logins through Dovecot's oauth2 passdb: tokens are checked by
// RFC 7662 introspection at a provider (internal/oidctest), or locally as
// signed JWTs with the provider's key.
//
// Dovecot's own POP3 service runs with pop3_uidl_format = %08Xu%08Xv (in
// Dovecot's variable syntax X means lowercase hexadecimal), so its UIDLs are
// exactly fmt.Sprintf("%08x%08x", uid, uidvalidity), the same as the
// gateway's, and it serves as the reference for differential tests.
//
// Dovecot needs root (it switches to MailUser for mail access). When the
// dovecot binary is missing or the test does not run as root, Start skips the
// test with a hint on how to run it, except when the environment variable CI
// is "true": then the test fails, so that CI never passes by skipping.
package dovecottest
