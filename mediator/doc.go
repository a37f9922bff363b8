// Package mediator is the neutral third party of a Parley agreement: it
// witnesses every party node's exchange log, mirrors those logs, and audits
// them.
//
// A [Server] is the mediator process: the [Witness] served over HTTPS with
// mutual TLS to the parties' nodes, a [MirrorLog] of every node's log kept
// up to date with the mediator's read-only certificate, and the auditor
// ([Audit], [AuditDir]) over the mirror. The auditor re-verifies every
// entry and feed with package verifier, cross-checks the logs and every
// signed checkpoint it knows of, evaluates the agreed rules, and writes a
// [Report] (text, JSON, HTML) whose evidence anyone holding the agreement
// can check ([VerifyEvidence]).
//
// # Memory
//
// The mediator holds no memory per mirrored entry between audits. A
// [MirrorLog] keeps its envelopes in an entries file and, in a leaves file
// next to it, each entry's offset and RFC 6962 leaf hash; in memory it
// keeps only the hashes of the complete subtrees of 256 leaves and more
// (under 0.3 bytes per entry) and the compact range of the whole tree.
// Roots and proofs read at most 255 leaf hashes on each side of a range
// from the leaves file; entries are read by offset. The leaves file is
// derived data: opening a mirror reads the entries once and rewrites
// whatever part of the leaves file does not match them (a read-only open
// writes a private temporary copy instead), so only the entries file is
// synced.
//
// An audit reads each log once, sequentially, and keeps a compact record
// per distinct envelope (where it was found first, its seq, the set of
// logs holding it) and the accepted entries as the rules engine, which
// needs them all at once, reads them: receipts as their acknowledgements
// ([rules.Receipt]), activity notifications as what the rules read of them
// ([rules.Notification]), other entries as their statements with the
// strings they repeat shared; it reads envelopes again, by location,
// only to build evidence and to replay the feeds that are not clean with
// package verifier. Each distinct envelope is verified once, however many
// logs hold it, on [AuditInput.Workers] goroutines while the logs are
// read. A feed whose entries all pass the checks that do not depend on the
// feed, with seqs 1 to n each once and chained by prev, is accepted whole;
// any other feed, and every envelope that does not parse, goes through
// [verifier.Verifier.Replay] in the order a replay of every log would give
// it, so the verdicts, and the report, are those of one replay over all
// entries. The [Server]'s periodic audit remembers how far each mirror was
// verified and which envelopes failed: on the next run the envelopes
// verified before are only parsed (signatures and content are a function
// of the envelope and the agreement alone), and the feeds, the
// cross-checks and the rules, which depend on the whole logs, are judged
// again. After each periodic audit the memory it used is returned to the
// operating system.
//
// The witness ([Witness]) implements the add-checkpoint call of the C2SP
// tlog-witness protocol (https://c2sp.org/tlog-witness) for the logs the
// agreement lists. It cosigns a node's checkpoint, with a cosignature/v1
// Ed25519 key (https://c2sp.org/tlog-cosignature), only after checking that
// it is consistent with the checkpoint it cosigned before for the same log,
// and it keeps validly signed checkpoints that are not as evidence of a
// fork ([ForkEvidence]): each distinct pair of checkpoints once, and at most
// [WitnessConfig.MaxEvidence] per log, since whoever holds a log's key can
// sign any number of them. At the cap a pair of different sizes (which
// only the consistency proof the client sent contradicts) makes way for a
// newer one; a pair of one size with two roots proves the fork by itself
// and is kept.
//
// Whoever controls the witness's cosigning key can make nodes' clients
// accept a split view of a log, up to the agreed witness quorum: the key
// must stay on the mediator's machine. Whoever controls the witness's
// database can roll back the witness's view of a log, which lets a node
// fork its log past this witness undetected; it cannot forge a node's
// checkpoint or hide evidence already handed out.
//
// Whoever controls the mediator can leave misbehaviour out of its audit
// report, never invent it: every piece of evidence is signed by the party
// it accuses. A mirror that is damaged or tampered with is reported as a
// problem of the audit, not as evidence against a party.
package mediator
