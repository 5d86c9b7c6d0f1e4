// Package vault keeps the secrets of hosted mailboxes: the per-device app
// passwords that POP3 clients log in with, and each user's delegated OAuth2
// grant that the gateway logs in upstream with.
//
// Device passwords are stored only as Argon2id hashes (RFC 9106). Refresh
// and access tokens are sealed with AES-256-GCM under a key that lives in a
// separate key file, never in the database (see LoadKeyFile). The store is
// SQLite for one instance or PostgreSQL for several instances sharing it
// (see Open); Store.Refresh serialises token refreshes per user across all
// of them, so a rotated refresh token is never lost to a race.
package vault
