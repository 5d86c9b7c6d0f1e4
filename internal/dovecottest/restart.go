package dovecottest

// Added for the fault tests (package nothinglost): stopping and restarting
// an instance in place, on the same ports and mail store.

// Stop stops the instance (SIGTERM to the master, then SIGKILL to what is
// left of its process group): an upstream that went away. Its mail store
// stays; Restart brings it back.
func (d *Dovecot) Stop() {
	d.t.Helper()
	d.stop()
}

// Restart stops the instance if it runs and starts it again with the same
// configuration, ports and mail store, waiting until it greets. It fails
// the test if Dovecot does not come back.
func (d *Dovecot) Restart() {
	d.t.Helper()
	select {
	case <-d.exited:
	default:
		d.stop()
	}
	if err := d.run(); err != nil {
		d.t.Fatalf("dovecottest: restarting dovecot: %v\n%s", err, d.readLog())
	}
}
