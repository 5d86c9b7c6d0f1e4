// Package oauth obtains OAuth 2.0 access tokens for upstream IMAP logins
// in vault mode: POP3 devices log in to the gateway with app passwords
// the gateway issued, and the gateway logs in upstream with SASL XOAUTH2
// or OAUTHBEARER (RFC 7628) using a bearer token from this package.
//
// Two kinds of grant are supported:
//
//   - Delegated: the mailbox owner enrols once with the Device
//     Authorization Grant (RFC 8628, device.go) or, where the provider's
//     device flow cannot grant mail access (Google), the
//     authorization-code grant with PKCE and a pasted redirect address
//     (authcode.go); the refresh token is kept in a GrantStore, and
//     TokenSource turns it into access tokens (RFC 6749 section 6),
//     saving a rotated refresh token.
//   - App-only: the client-credentials grant (RFC 6749 section 4.4,
//     AppTokenSource), one token for every mailbox (Microsoft's
//     IMAP.AccessAsApp).
//
// Errors are classified (errors.go): a refresh token the provider no
// longer accepts (invalid_grant) needs the user to enrol again; network
// failures and server errors are temporary. The provider's
// error_description never appears in an error's message, which may reach
// a POP3 client; it is kept in Error.Description for logs. Tokens never
// appear in errors or logs.
package oauth
