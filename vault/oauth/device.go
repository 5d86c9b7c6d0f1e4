package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DeviceAuth is a started Device Authorization Grant (RFC 8628 section
// 3.2): show the user VerificationURI and UserCode (or
// VerificationURIComplete, e.g. as a QR code), then PollDeviceToken.
type DeviceAuth struct {
	DeviceCode              string // secret: never shown or logged
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string // optional
	Message                 string // the provider's own instructions (Microsoft), optional
	Expiry                  time.Time
	Interval                time.Duration // minimum between polls
}

// deviceAuthResponse is RFC 8628 section 3.2's answer. Google's older
// endpoint names the URI verification_url.
type deviceAuthResponse struct {
	DeviceCode              string      `json:"device_code"`
	UserCode                string      `json:"user_code"`
	VerificationURI         string      `json:"verification_uri"`
	VerificationURL         string      `json:"verification_url"`
	VerificationURIComplete string      `json:"verification_uri_complete"`
	ExpiresIn               json.Number `json:"expires_in"`
	Interval                json.Number `json:"interval"`
	Message                 string      `json:"message"`

	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// StartDeviceAuth requests a device and user code for the delegated
// scopes (RFC 8628 section 3.1).
func (p *Provider) StartDeviceAuth(ctx context.Context) (*DeviceAuth, error) {
	const op = "device_authorization"
	if p.deviceURL == "" {
		return nil, &Error{Kind: KindPermanent, Op: op, Err: errors.New("provider has no device authorization endpoint")}
	}
	form := url.Values{"client_id": {p.clientID}, "scope": {strings.Join(p.scopes, " ")}}
	if p.clientSecret != "" && p.clientAuth == ClientAuthPost {
		form.Set("client_secret", p.clientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.deviceURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &Error{Kind: KindPermanent, Op: op, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.clientSecret != "" && p.clientAuth == ClientAuthBasic {
		req.SetBasicAuth(url.QueryEscape(p.clientID), url.QueryEscape(p.clientSecret))
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, &Error{Kind: KindTemporary, Op: op, Err: err}
	}
	defer resp.Body.Close()
	var r deviceAuthResponse
	dec := json.NewDecoder(io.LimitReader(resp.Body, 1<<20))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return nil, &Error{Kind: kindForStatus(resp.StatusCode), Op: op, Status: resp.StatusCode, Err: errors.New("answer is not JSON")}
	}
	if r.Error != "" || resp.StatusCode != http.StatusOK {
		return nil, oauthError(op, &tokenResponse{Error: r.Error, ErrorDescription: r.ErrorDescription}, resp.StatusCode)
	}
	da := &DeviceAuth{
		DeviceCode:              r.DeviceCode,
		UserCode:                r.UserCode,
		VerificationURI:         r.VerificationURI,
		VerificationURIComplete: r.VerificationURIComplete,
		Message:                 r.Message,
		Interval:                5 * time.Second, // RFC 8628 section 3.2's default
	}
	if da.VerificationURI == "" {
		da.VerificationURI = r.VerificationURL
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return nil, &Error{Kind: KindPermanent, Op: op, Status: resp.StatusCode, Err: errors.New("answer lacks device_code, user_code or verification_uri")}
	}
	if n, err := r.Interval.Int64(); err == nil && n > 0 {
		da.Interval = time.Duration(n) * time.Second
	}
	exp := int64(1800)
	if n, err := r.ExpiresIn.Int64(); err == nil && n > 0 {
		exp = n
	}
	da.Expiry = p.now().Add(time.Duration(exp) * time.Second)
	return da, nil
}

// PollDeviceToken polls the token endpoint (RFC 8628 section 3.4) until
// the user approves, denies, or the code expires, waiting da.Interval
// between requests: authorization_pending polls again, slow_down adds
// 5 s to the interval for good (section 3.5), and a network failure or
// server error doubles it for the next wait. access_denied and
// expired_token end with a KindPermanent *Error with that Code; ctx ends
// it too.
func (p *Provider) PollDeviceToken(ctx context.Context, da *DeviceAuth) (Tokens, error) {
	const op = "device_token"
	interval := da.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	wait := interval
	for {
		if !p.now().Before(da.Expiry) {
			return Tokens{}, &Error{Kind: KindPermanent, Op: op, Code: "expired_token"}
		}
		if err := p.sleep(ctx, wait); err != nil {
			return Tokens{}, &Error{Kind: KindTemporary, Op: op, Err: err}
		}
		wait = interval
		form := url.Values{
			"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
			"device_code": {da.DeviceCode},
		}
		tr, status, err := p.post(ctx, op, p.tokenURL, form)
		if err != nil {
			if ctx.Err() != nil {
				return Tokens{}, err
			}
			if IsTemporary(err) {
				wait = 2 * interval
				continue
			}
			return Tokens{}, err
		}
		switch tr.Error {
		case "":
			return p.tokens(op, tr, status)
		case "authorization_pending":
			continue
		case "slow_down":
			interval += 5 * time.Second
			wait = interval
			continue
		case "access_denied", "expired_token":
			return Tokens{}, &Error{Kind: KindPermanent, Op: op, Code: tr.Error, Status: status, Description: tr.ErrorDescription}
		}
		e := oauthError(op, tr, status)
		if e.Kind == KindTemporary {
			wait = 2 * interval
			continue
		}
		if e.Kind == KindReenroll {
			e.Kind = KindPermanent // a device code the provider rejects: start again
		}
		return Tokens{}, e
	}
}

// ErrNoRefreshToken: the provider approved the device but returned no
// refresh token, so the grant would last only as long as one access
// token. Microsoft Entra does this when the offline_access scope was not
// granted (the app registration lacks it, or admin consent is missing);
// the admin must grant offline_access (and IMAP.AccessAsUser.All) to the
// app.
var ErrNoRefreshToken = errors.New("oauth: provider returned no refresh token (offline_access not granted)")

// EnrollDevice polls for da's tokens and stores them as user's grant.
func (p *Provider) EnrollDevice(ctx context.Context, store GrantStore, user string, da *DeviceAuth) error {
	t, err := p.PollDeviceToken(ctx, da)
	if err != nil {
		return err
	}
	if t.Refresh == "" {
		return ErrNoRefreshToken
	}
	if err := store.PutGrant(ctx, user, t); err != nil {
		return &Error{Kind: KindTemporary, Op: "store", Err: err}
	}
	return nil
}
