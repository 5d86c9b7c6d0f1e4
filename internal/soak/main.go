// Command soak runs the gateway against a private Dovecot for a set time
// with a mix of POP3 clients (deleting and keeping, through in-process
// gateways with the flag, expunge and trash policies), IMAP clients
// moving, flagging and expunging on the same mailboxes, mail delivered
// continuously, and faults injected between the gateways and Dovecot
// (internal/faultproxy). At the end a ledger keyed by Message-ID checks
// that no message was lost or changed outside the rules, prints a
// summary, and exits non-zero on any violation.
//
//	go run ./internal/soak                  # 60 s
//	go run ./internal/soak -duration 2h -pop 8 -imap 3
//
// It needs Dovecot and root, like the Dovecot tests (see
// internal/dovecottest). Everything runs on loopback and stops by itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	o := defaultOptions()
	flag.DurationVar(&o.Duration, "duration", o.Duration, "how long to run the mix")
	flag.IntVar(&o.Users, "users", o.Users, "mail users (each is served through one policy: flag, expunge, trash in turn)")
	flag.IntVar(&o.POP, "pop", o.POP, "concurrent POP3 clients")
	flag.IntVar(&o.IMAP, "imap", o.IMAP, "concurrent IMAP clients (other devices)")
	flag.DurationVar(&o.DeliverEvery, "deliver-every", o.DeliverEvery, "interval between two deliveries")
	flag.Float64Var(&o.FaultRate, "fault-rate", o.FaultRate, "share of upstream connections given a fault (0 to 1)")
	flag.Int64Var(&o.Seed, "seed", o.Seed, "random seed (0: from the clock)")
	flag.BoolVar(&o.Verbose, "v", false, "log the gateways' warnings")
	flag.Parse()
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tb := newTB()
	code := 0
	func() {
		defer tb.cleanup()
		sum, err := Run(ctx, tb, o, os.Stdout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			code = 1
			return
		}
		if !sum.OK() {
			code = 1
		}
	}()
	if tb.Failed() {
		code = 2
	}
	os.Exit(code)
}
