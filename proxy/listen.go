package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/popbridge/popbridge/pop3front"
)

// listenPOP3 binds one POP3 listener (key names it in errors), wrapped
// for the PROXY protocol when [pop3] proxy_protocol is on (proxyproto.go).
func listenPOP3(ctx context.Context, cfg *Config, key, addr string, logger *slog.Logger) (net.Listener, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if !cfg.POP3.ProxyProtocol {
		return l, nil
	}
	trusted, err := parseTrusted(cfg.POP3.ProxyTrusted)
	if err != nil { // Validate refused it already
		l.Close()
		return nil, fmt.Errorf("pop3.proxy_trusted: %w", err)
	}
	return newProxyListener(l, trusted, cfg.Limits.ProxyHeaderTimeout.Duration, logger), nil
}

// plaintextPolicy maps [pop3] allow_plaintext (validated) to pop3front's.
func plaintextPolicy(v string) pop3front.PlaintextPolicy {
	switch v {
	case "always":
		return pop3front.PlaintextAlways
	case "never":
		return pop3front.PlaintextNever
	}
	return pop3front.PlaintextLoopback
}
