// Package gwtest runs a whole gateway in-process on a loopback port, with
// a small wire-level POP3 client and process resource probes (goroutines,
// open file descriptors, RSS) for fault, load and soak tests.
//
// Start builds the gateway with the daemon's own wiring (package daemon,
// what ./proxy runs) from a configuration a test needs, typically with
// short timeouts.
package gwtest
