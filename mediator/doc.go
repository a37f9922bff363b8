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
// The witness ([Witness]) implements the add-checkpoint call of the C2SP
// tlog-witness protocol (https://c2sp.org/tlog-witness) for the logs the
// agreement lists. It cosigns a node's checkpoint, with a cosignature/v1
// Ed25519 key (https://c2sp.org/tlog-cosignature), only after checking that
// it is consistent with the checkpoint it cosigned before for the same log,
// and it keeps every validly signed checkpoint that is not as evidence of a
// fork ([ForkEvidence]).
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
