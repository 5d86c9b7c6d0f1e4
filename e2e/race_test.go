//go:build race

package e2e

// raceEnabled says the tests run with -race; the gateway is then built with
// it too, so a data race in the daemon fails the test that triggered it.
const raceEnabled = true
