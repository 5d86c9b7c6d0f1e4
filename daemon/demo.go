package daemon

import (
	"fmt"
	"log/slog"

	"github.com/popbridge/popbridge/internal/memupstream"
)

// startDemo runs the built-in in-memory IMAP upstream with one seeded user,
// so the gateway works out of the box with no other server. It also serves
// IMAP on demo.imap_listen, so a newcomer can watch flags change from any
// IMAP client while downloading and deleting over POP3.
//
// checkBearer, when set, makes it accept OAUTHBEARER and XOAUTH2 logins
// too (the vault demo, demovault.go).
func startDemo(c DemoConfig, checkBearer func(user, token string) bool, logger *slog.Logger) (*memupstream.Server, error) {
	srv, err := memupstream.Start(c.IMAPListen, memupstream.Options{
		Profile:     memupstream.ProfileFull,
		Logger:      logger.With("component", "demo-upstream"),
		CheckBearer: checkBearer,
	})
	if err != nil {
		return nil, fmt.Errorf("demo.imap_listen: %w", err)
	}
	if err := srv.AddUser(c.User, c.Password); err != nil {
		srv.Close()
		return nil, fmt.Errorf("demo upstream: %w", err)
	}
	for _, msg := range memupstream.DemoMessages() {
		if err := srv.Append(c.User, "INBOX", msg); err != nil {
			srv.Close()
			return nil, fmt.Errorf("demo upstream: seeding: %w", err)
		}
	}
	for _, name := range []string{"Trash", "Archive"} {
		if err := srv.CreateMailbox(c.User, name); err != nil {
			srv.Close()
			return nil, fmt.Errorf("demo upstream: %w", err)
		}
	}
	logger.Warn("DEMO UPSTREAM: serving a built-in IN-MEMORY IMAP server that KEEPS NOTHING; "+
		"every message and change is lost when the gateway stops. Set [upstream] address to your IMAP server for real use.",
		"imap", srv.Addr(), "user", c.User, "messages", len(memupstream.DemoMessages()))
	return srv, nil
}
