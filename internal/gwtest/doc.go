// Package gwtest runs a whole gateway in-process on a loopback port, with
// process resource probes (goroutines, open file descriptors, RSS) for
// fault, load and soak tests. Its POP3 clients are in internal/pop3test.
//
// Start builds the gateway with the daemon's own wiring (package daemon,
// what ./proxy runs) from a configuration a test needs, typically with
// short timeouts.
package gwtest
