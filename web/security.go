package web

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
)

// contentSecurityPolicy allows only the page's own stylesheet and script,
// forms posting to the page itself, and no framing (CSP Level 3).
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		// The callback's query holds the authorization code: never send
		// it onwards.
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// checkCSRF refuses a form post that the browser says came from another
// origin, or whose token is not the session's.
func (h *Handler) checkCSRF(r *http.Request, ss session) bool {
	if err := h.cop.Check(r); err != nil {
		return false
	}
	tok := r.PostFormValue("csrf")
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(ss.csrf)) == 1
}

// safeNext returns p if it is a path on this site, else "/". It refuses
// anything a browser could read as another host: "//host", "/\host"
// (browsers treat a backslash as a slash), schemes, and control
// characters.
func safeNext(p string) string {
	if p == "" || p[0] != '/' || len(p) > 512 {
		return "/"
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return "/"
	}
	if strings.ContainsAny(p, "\\") || strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	// A proxy or framework that decodes the path once more must not
	// find a host either.
	if d, err := url.PathUnescape(u.EscapedPath()); err != nil || strings.HasPrefix(d, "//") || strings.Contains(d, "\\") {
		return "/"
	}
	return p
}

// Cookie names. With Secure cookies on a site root, the __Host- prefix
// makes browsers refuse the cookie from a sibling subdomain or over http.
func (h *Handler) cookieName(base string) string {
	if !h.cfg.InsecureCookies && h.base == "" {
		return "__Host-" + base
	}
	return base
}

func (h *Handler) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	path := h.base
	if path == "" {
		path = "/"
	}
	http.SetCookie(w, &http.Cookie{
		Name: h.cookieName(name), Value: value, Path: path, MaxAge: maxAge,
		Secure: !h.cfg.InsecureCookies, HttpOnly: true,
		// Lax, not Strict: the provider's redirect back to the callback
		// is a cross-site navigation, and a Strict cookie set there
		// would not be sent on the following redirect to the page.
		// Every state-changing request is a POST with a CSRF token.
		SameSite: http.SameSiteLaxMode,
	})
}

func (h *Handler) cookie(r *http.Request, name string) string {
	c, err := r.Cookie(h.cookieName(name))
	if err != nil {
		return ""
	}
	return c.Value
}
