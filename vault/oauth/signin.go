package oauth

import (
	"maps"
	"slices"
)

// SignInParams is what a relying party signing people in with the same
// client registration needs to ask for the delegated grant in the same
// authorization request, so that signing in also enrols.
type SignInParams struct {
	ClientID     string
	ClientSecret string // empty for a public client; never log it
	// Scopes are the delegated scopes (e.g. offline_access and the mail
	// scope); the relying party adds its own (openid).
	Scopes []string
	// AuthParams are extra authorization request parameters of the
	// preset (Google's access_type=offline and prompt=consent).
	AuthParams map[string]string
}

// SignInParams returns the provider's client registration and delegated
// scopes, copied.
func (p *Provider) SignInParams() SignInParams {
	return SignInParams{
		ClientID:     p.clientID,
		ClientSecret: p.clientSecret,
		Scopes:       slices.Clone(p.scopes),
		AuthParams:   maps.Clone(p.authParams),
	}
}
