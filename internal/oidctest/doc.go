// Package oidctest runs a real OpenID Connect provider (zitadel/oidc's op
// package) in-process on loopback, for tests of the gateway's OAuth 2.0
// side: the Device Authorization Grant (RFC 8628) with a small HTML user
// page that tests drive over HTTP as the user would, the authorization-code
// grant with PKCE and a sign-in page, refresh tokens with
// rotation (RFC 6819 section 5.2.2.3), the client-credentials grant,
// token introspection (RFC 7662) and, optionally, signed JWT access
// tokens (RFC 9068) for servers that validate tokens locally.
//
// Tokens live in memory; helpers revoke a user's grants, expire access
// tokens and count token-endpoint calls by grant type.
//
// The storage is our own trimmed code, modelled on the example storage
// of github.com/zitadel/oidc (Apache License 2.0).
package oidctest
