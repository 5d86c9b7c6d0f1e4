// Package gwtest runs a whole gateway (pop3front.Server over an
// imapback.Backend) in-process on a loopback port, with a small
// wire-level POP3 client and process resource probes (goroutines, open
// file descriptors, RSS) for fault, load and soak tests.
//
// The daemon's own wiring (package main in ./proxy) cannot be imported;
// Start composes the same two pieces with the configuration a test needs,
// typically short timeouts.
package gwtest
