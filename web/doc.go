// Package web serves the gateway's page for people: a user signs in with
// the OpenID Connect provider the vault uses, sees their devices, creates
// a device password (shown once) and revokes devices; admins see every
// user with the health of their grant and may revoke devices and remove
// users.
//
// Sign-in is the authorization code flow with PKCE (OpenID Connect Core
// 1.0 section 3.1, RFC 7636); the ID token's signature, iss, aud, exp and
// nonce are checked by zitadel/oidc's relying party. When the vault holds
// OAuth2 grants, the same authorization request asks for the delegated
// scopes, and the refresh token it yields is stored: signing in enrols.
//
// Security: sessions live in memory under random ids issued only at
// sign-in; cookies are Secure, HttpOnly and SameSite=Lax; every form
// carries a per-session CSRF token and is also refused when the browser
// says it came from another origin (Sec-Fetch-Site, Origin); device
// operations are scoped to the signed-in user; the address returned to
// after sign-in must be a local path; every response carries a strict
// Content-Security-Policy. No token or password is put in a URL or a log.
package web
