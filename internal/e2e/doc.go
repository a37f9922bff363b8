// Package e2e holds end-to-end tests and benchmarks of whole networks on
// loopback: crash safety of a node run as a separate process, publication
// under a missing witness quorum, Tessera's fsck reading a node's tiles,
// and the throughput and latency of durable appends and witnessed
// publication. It has no code of its own.
package e2e
