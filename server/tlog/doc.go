// Package tlog is a node's exchange log: a Tessera transparency log, stored
// with Tessera's POSIX driver under one directory, whose leaves are the raw
// bytes of every envelope the node accepted, its own and received ones.
//
// # Durability
//
// [Log.Append] returns an index only once the entry is durable: written to
// the log's write-ahead log (Dir/.wal) and synced with one fdatasync. The
// entries appended while one batch is written make up the next (group
// commit, see [Log.Append]), and the committer gives them consecutive
// indexes in that order, so an entry is never durable before one queued
// ahead of it. A record carries its index and a CRC-32C; a crash can tear
// only the end of the newest segment, which is cut off when the log opens
// (it was never acknowledged).
//
// A second task, the integrator, hands the durable entries to Tessera's
// POSIX driver in order, a batch of at most 256 at a time (one entry
// bundle), letting a partial batch gather for 25 ms first. Tessera writes
// each batch in a single critical section that (1) writes the entry bundle
// files, (2) integrates the leaves into the Merkle tree and writes the
// tiles, and (3) writes the private tree state (size and root), every file to a temporary file opened with O_SYNC, renamed into
// place, with its directory fsynced: about six synced operations a batch,
// which the write-ahead log keeps off the acknowledgement path. Tessera
// gives each entry the next index of its tree (the log has no antispam in
// Tessera; it deduplicates itself before giving indexes), and the integrator
// checks that it is the index the write-ahead log gave: should they differ,
// the log stops taking entries and refuses to open until examined. Once the
// tree holds every entry of a segment, the segment is deleted.
//
// When the log opens it reads the write-ahead log back from the tree's size
// on and integrates what the tree lacks (a crash between the two writes);
// the entries it holds below the tree's size must be the tree's.
// [Log.DurableSize] is the number of durable entries and [Log.Entries]
// reads all of them, those not yet in the tree from memory (at most 16,384;
// past that, appends wait for the integrator). Proofs and checkpoints cover
// the tree ([Log.TreeSize]), which trails the durable entries by at most one
// integration.
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
