package oidctest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// post sends form to u with HTTP Basic client credentials and decodes
// the JSON answer.
func post(t *testing.T, u, id, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	return resp.StatusCode, m
}

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.AddUser("alice@example.org", "pw")
	return s
}

// deviceTokens runs the device flow for alice by hand.
func deviceTokens(t *testing.T, s *Server) map[string]any {
	t.Helper()
	_, da := post(t, s.Issuer+"/device_authorization", ClientID, ClientSecret, url.Values{"client_id": {ClientID}, "scope": {"openid offline_access"}})
	uri, _ := da["verification_uri"].(string)
	code, _ := da["user_code"].(string)
	if err := ApproveDevice(context.Background(), uri, code, "alice@example.org", "pw", true); err != nil {
		t.Fatal(err)
	}
	status, tok := post(t, s.TokenURL(), ClientID, ClientSecret, url.Values{
		"grant_type": {GrantDeviceCode}, "device_code": {da["device_code"].(string)}})
	if status != http.StatusOK || tok["access_token"] == nil || tok["refresh_token"] == nil {
		t.Fatalf("device token: HTTP %d %v", status, tok)
	}
	return tok
}

func TestIntrospection(t *testing.T) {
	s := start(t, Options{})
	tok := deviceTokens(t, s)
	_, in := post(t, s.IntrospectionURL(), ResourceID, ResourceSecret, url.Values{"token": {tok["access_token"].(string)}})
	if in["active"] != true || in["username"] != "alice@example.org" {
		t.Fatalf("introspection %v, want active for alice", in)
	}
	// Rotation: the refreshed pair replaces the old one.
	status, tok2 := post(t, s.TokenURL(), ClientID, ClientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	if status != http.StatusOK || tok2["refresh_token"] == tok["refresh_token"] {
		t.Fatalf("refresh: HTTP %d, rotated %v", status, tok2["refresh_token"] != tok["refresh_token"])
	}
	if _, in := post(t, s.IntrospectionURL(), ResourceID, ResourceSecret, url.Values{"token": {tok["access_token"].(string)}}); in["active"] != false {
		t.Errorf("the access token of a rotated-away refresh token is %v, want inactive", in)
	}
	if status, e := post(t, s.TokenURL(), ClientID, ClientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}}); status != http.StatusBadRequest || e["error"] != "invalid_grant" {
		t.Errorf("reusing a rotated refresh token: HTTP %d %v, want 400 invalid_grant", status, e)
	}
	if got := s.TokenCalls(GrantRefresh); got != 2 {
		t.Errorf("TokenCalls(refresh) = %d, want 2", got)
	}
	s.ExpireAccessTokens()
	if _, in := post(t, s.IntrospectionURL(), ResourceID, ResourceSecret, url.Values{"token": {tok2["access_token"].(string)}}); in["active"] != false {
		t.Errorf("expired token introspects as %v, want inactive", in)
	}
	if n := s.RevokeUser("alice@example.org"); n != 1 {
		t.Errorf("RevokeUser deleted %d refresh tokens, want 1", n)
	}
	if s.RefreshTokens("alice@example.org") != 0 {
		t.Error("refresh tokens left after RevokeUser")
	}
}

func TestJWTAccessTokens(t *testing.T) {
	s := start(t, Options{JWTAccessTokens: true})
	status, tok := post(t, s.TokenURL(), AppClientID, AppClientSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"mail"}})
	if status != http.StatusOK {
		t.Fatalf("client credentials: HTTP %d %v, want %d", status, tok, http.StatusOK)
	}
	parts := strings.Split(tok["access_token"].(string), ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts, want a JWS (3)", len(parts))
	}
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Alg, Kid string }
	json.Unmarshal(hdr, &h)
	resp, err := http.Get(s.KeysURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jwks struct{ Keys []struct{ Kid, Alg string } }
	json.NewDecoder(resp.Body).Decode(&jwks)
	if h.Alg != "RS256" || len(jwks.Keys) != 1 || jwks.Keys[0].Kid != h.Kid {
		t.Errorf("token header %+v, keys %+v: want RS256 signed by the published key", h, jwks.Keys)
	}
	if _, in := post(t, s.IntrospectionURL(), ResourceID, ResourceSecret, url.Values{"token": {tok["access_token"].(string)}}); in["active"] != true {
		t.Errorf("JWT introspection %v, want active", in)
	}
}

func TestDevicePages(t *testing.T) {
	s := start(t, Options{})
	ctx := context.Background()
	if err := ApproveDevice(ctx, s.Issuer+"/device", "NOPE-NOPE", "alice@example.org", "pw", true); err == nil {
		t.Error("approving an unknown user code succeeded")
	}
	_, da := post(t, s.Issuer+"/device_authorization", ClientID, ClientSecret, url.Values{"client_id": {ClientID}, "scope": {"openid"}})
	if err := ApproveDevice(ctx, da["verification_uri"].(string), da["user_code"].(string), "alice@example.org", "wrong", true); err == nil {
		t.Error("approving with a wrong password succeeded")
	}
	status, e := post(t, s.TokenURL(), ClientID, ClientSecret, url.Values{"grant_type": {GrantDeviceCode}, "device_code": {da["device_code"].(string)}})
	if status != http.StatusBadRequest || e["error"] != "authorization_pending" {
		t.Errorf("poll before approval: HTTP %d %v, want authorization_pending", status, e)
	}
}
