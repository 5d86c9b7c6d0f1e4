// Package e2e holds the end-to-end tests of the gateway: the real binary
// (built from ./proxy) in front of a private Dovecot (package dovecottest),
// driven by real POP3 clients (curl, fetchmail, getmail6, mpop, Python's
// poplib) and by a wire-level POP3 client, with the upstream's state checked
// over IMAP before and after each scenario.
//
// The package holds tests only. They need root, Dovecot and the clients;
// without them they skip (and fail when CI=true). .ci/run installs everything.
package e2e
