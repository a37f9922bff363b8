// Package mediator is the neutral third party of a Parley agreement: it
// witnesses every party node's exchange log, and (later) mirrors and audits
// those logs.
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
package mediator
