// Package e2e holds end-to-end suites that run real Parley networks on
// loopback, built with internal/localnet, over real gRPC and mutual TLS:
// among them the bad-input catalogue of issue 10 (every kind of hostile or
// broken request a node must refuse, with the status it answers and proof
// that nothing changed). The package has no API; everything is in its
// tests.
package e2e
