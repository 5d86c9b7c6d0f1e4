package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/popbridge/popbridge/vault"
	"github.com/popbridge/popbridge/vault/oauth"
)

// AdminCommands are the first words of the admin commands RunAdmin
// runs; the command line tells them from a mistyped flag by these.
var AdminCommands = []string{"enroll", "device", "user"}

// RunAdmin runs one admin command (vault.AdminUsage: enroll, device
// add|list|revoke, user list|remove) against the store cfg's [auth]
// names, and returns the exit code: 0 done, 1 failed, 2 bad usage. It
// works while a gateway serves from the same store. enroll reads from
// stdin only for Google, whose enrolment ends with the admin pasting the
// address the browser was sent to.
func RunAdmin(ctx context.Context, cfg *Config, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if !cfg.Auth.Vault() {
		fmt.Fprintln(stderr, `admin commands need [auth] mode = "vault" in the configuration`)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := openStore(ctx, &cfg.Auth, logger)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer store.Close()
	var enroll vault.Enroller
	if cfg.Auth.delegated() {
		enroll = enroller(&cfg.Auth, stdin)
	}
	return vault.RunAdmin(ctx, args, stdout, stderr, store, enroll)
}

// enroller runs the OAuth 2.0 Device Authorization Grant (RFC 8628), or
// for Google, whose device flow does not grant the Gmail scope, the
// authorization-code grant with PKCE (RFC 7636) and a pasted redirect.
func enroller(a *AuthConfig, stdin io.Reader) vault.Enroller {
	return func(ctx context.Context, user string, prompt io.Writer) (vault.Tokens, error) {
		p, err := newOAuthProvider(ctx, a)
		if err != nil {
			return vault.Tokens{}, err
		}
		var t oauth.Tokens
		if a.OAuth2.Provider == oauth.ProviderGoogle {
			ac, err := p.StartAuthCode("http://127.0.0.1")
			if err != nil {
				return vault.Tokens{}, err
			}
			fmt.Fprintf(prompt, "Sign in as %s and allow access, in a browser on any machine:\n\n    %s\n\n", user, ac.URL)
			fmt.Fprintf(prompt, "The browser then goes to an address starting with http://127.0.0.1 that does not load.\n"+
				"Copy that whole address from the address bar and paste it here, then press Enter:\n")
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && line == "" {
				return vault.Tokens{}, fmt.Errorf("reading the pasted address: %w", err)
			}
			if t, err = p.ExchangeCode(ctx, ac, line); err != nil {
				return vault.Tokens{}, err
			}
		} else {
			da, err := p.StartDeviceAuth(ctx)
			if err != nil {
				return vault.Tokens{}, err
			}
			fmt.Fprintf(prompt, "Sign in as %s and allow access, in a browser on any machine:\n\n    open   %s\n    code   %s\n\n",
				user, da.VerificationURI, da.UserCode)
			if da.VerificationURIComplete != "" {
				fmt.Fprintf(prompt, "(or open %s, which carries the code)\n", da.VerificationURIComplete)
			}
			fmt.Fprintf(prompt, "Waiting for the approval (until %s)...\n", da.Expiry.Format(time.Kitchen))
			if t, err = p.PollDeviceToken(ctx, da); err != nil {
				return vault.Tokens{}, err
			}
		}
		if t.Refresh == "" {
			return vault.Tokens{}, oauth.ErrNoRefreshToken
		}
		return vault.Tokens(t), nil
	}
}
