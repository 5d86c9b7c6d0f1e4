// Package pop3test holds the POP3 clients of the tests: Conn, a minimal
// wire-level client whose methods return errors (the soak and the load
// scenarios use it outside tests too), with scripted conversations sent
// one by one, pipelined or in pieces (pipeline.go); and Client, the same
// wire for a test, where every failure is fatal to the test.
package pop3test
