// Package nothinglost holds the tests behind the gateway's product
// promise: a POP3 device can never make mail disappear that it did not
// delete, whatever the network, the upstream or other devices do
// (docs/design.md, invariants 1-5, 9 and 10: upstream faults, other
// devices, load and resources).
//
// Tests named TestF... run against scripted upstreams (internal/fakeimap)
// or the in-memory one (internal/memupstream) at unit speed. Tests named
// TestD... run against a real Dovecot (internal/dovecottest): skipped
// without Dovecot or root, failing instead when CI=true. Faults between
// gateway and Dovecot go through internal/faultproxy; the upstream state
// is compared with internal/oracle.
package nothinglost
