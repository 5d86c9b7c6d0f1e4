package daemon

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/pop3front"
)

// modifierBackend reads username modifiers ("keep:alice") and logs in
// upstream as the plain user ("alice") with the modifiers' policy. The
// modifier never reaches the upstream.
type modifierBackend struct {
	b       upstreamLogin // *imapback.Backend, or vaultBackend over it
	sep     string
	enabled map[UserModifier]bool
	recent  struct {
		maxAge      time.Duration
		maxMessages int
	}
}

// withModifiers wraps b when [pop3] user_modifiers enables any; else it
// returns b itself.
func withModifiers(cfg *Config, b upstreamLogin) pop3front.Backend {
	if len(cfg.POP3.UserModifiers) == 0 {
		return b
	}
	mb := &modifierBackend{b: b, sep: cfg.POP3.ModifierSeparator, enabled: map[UserModifier]bool{}}
	for _, m := range cfg.POP3.UserModifiers {
		mb.enabled[m] = true
	}
	mb.recent.maxAge = cfg.POP3.RecentMaxAge.Duration
	mb.recent.maxMessages = cfg.POP3.RecentMaxMessages
	return mb
}

// split returns the modifiers prefixed to name and the user name. Only
// enabled modifiers count: "foo:alice" is the user "foo:alice". Several
// may be chained ("recent:keep:alice"); a name that would be empty keeps
// its last prefix as the user name.
func (mb *modifierBackend) split(name string) (mods []string, user string) {
	user = name
	for {
		pre, rest, ok := strings.Cut(user, mb.sep)
		if !ok || rest == "" || !mb.enabled[UserModifier(pre)] {
			return mods, user
		}
		mods, user = append(mods, pre), rest
	}
}

func (mb *modifierBackend) Login(ctx context.Context, req *pop3front.LoginRequest) (pop3front.Maildrop, error) {
	mods, user := mb.split(req.Username)
	if len(mods) == 0 {
		return mb.b.Login(ctx, req)
	}
	r := *req
	r.Username = user
	if r.AuthzID == req.Username {
		r.AuthzID = user // a client that sent its own name as authzid
	}
	p := mb.b.PolicyFor(ownerOf(&r))
	for _, m := range mods {
		switch m {
		case "keep":
			p.Delete = imapback.DeleteKeep
		case "recent":
			// Gmail's "recent mode": what arrived lately, retrieved by
			// another device or not; nothing is marked retrieved.
			p.HideRetrieved = false
			p.MaxAge = mb.recent.maxAge
			p.MaxMessages = mb.recent.maxMessages
		}
	}
	return mb.b.LoginWith(ctx, &r, imapback.LoginOptions{
		Policy: &p,
		Attrs:  []slog.Attr{slog.String("modifiers", strings.Join(mods, ","))},
	})
}

func ownerOf(req *pop3front.LoginRequest) string {
	if req.AuthzID != "" {
		return req.AuthzID
	}
	return req.Username
}
