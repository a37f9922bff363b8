// Package tlog is a node's exchange log: a Tessera transparency log, stored
// with Tessera's POSIX driver under one directory, whose leaves are the raw
// bytes of every envelope the node accepted, its own and received ones.
//
// # Durability
//
// [Log.Append] returns an index only once the entry is durable. With the
// Tessera v1.0.4 POSIX driver this holds when Tessera's add future resolves:
// entries are batched in memory (at most 256 per batch; the entries appended
// while a batch is written make up the next one, see [Log.Append]), then one
// batch is written in a single critical section that (1) writes the entry
// bundle files, (2) integrates the leaves into the Merkle tree and writes the
// tiles, and (3) writes the private tree state (size and root).
// Every file is written to a temporary file opened with O_SYNC, renamed into
// place, and its directory is fsynced. Only after all three steps succeed are
// the futures of the batch resolved, so a resolved index is both durably
// sequenced and integrated: after a crash the log reopens at least that
// large, and [Log.IntegratedSize] covers it. A crash in the middle of a batch
// leaves the previous tree state in force; the batch's futures never resolved,
// so nothing in it was acknowledged.
//
// # Publication and witnessing
//
// Durable is not yet published. A background task of Tessera publishes a new
// checkpoint (a C2SP signed note, Ed25519, origin = Config.Origin) at most
// twice per Config.CheckpointInterval, immediately after an integration if
// the last one is older than half of it, so that an entry is published
// within about one interval of becoming durable. Before the checkpoint file is replaced,
// Tessera sends the signed checkpoint to every configured witness with the
// C2SP tlog-witness protocol (POST <witness>/add-checkpoint, "old <size>"
// plus a consistency proof from the size it believes the witness last
// cosigned; a 409 with that size makes it retry from there). The checkpoint is
// written only once the cosignatures returned satisfy the quorum
// (WitnessConfig.Quorum of the configured witnesses); otherwise publication
// fails, the previous checkpoint stays, and Tessera tries again at the next
// interval. Appends keep working while witnesses are down; only publication
// stalls. [Log.AwaitPublished] waits for a published checkpoint that covers an
// index, and [Log.Checkpoint] returns the latest one with its cosignatures.
//
// # Reading
//
// [Log.Entries], [Log.InclusionProof] and [Log.ConsistencyProof] read the
// files directly and work up to the integrated size, which may be ahead of
// the published checkpoint; clients should only ask for tree sizes of
// checkpoints they hold. [Log.TileHandler] serves the public C2SP tlog-tiles
// layout (checkpoint, tiles and entry bundles) read-only from the directory,
// so Tessera's fsck and mirror tools can read the log.
package tlog
