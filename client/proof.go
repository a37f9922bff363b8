package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// LogKeys are what a client needs to check one node's checkpoints, all
// taken from the agreement: the log origin, the node's checkpoint key, the
// mediators' cosigning keys and how many of them must have cosigned.
type LogKeys struct {
	// Origin is the log's checkpoint origin line.
	Origin string
	// CheckpointKey is the node's note verifier key.
	CheckpointKey string
	// WitnessKeys are the mediators' cosigning verifier keys.
	WitnessKeys []string
	// Quorum is how many distinct witnesses must have cosigned.
	Quorum int
}

// ErrCheckpoint is returned for a checkpoint that does not verify.
var ErrCheckpoint = errors.New("checkpoint does not verify")

// ErrProof is returned for an inclusion or consistency proof that does not
// verify.
var ErrProof = errors.New("proof does not verify")

// VerifyCheckpoint checks raw (a signed note) against keys: the node's
// signature, the origin, and the witness quorum.
func VerifyCheckpoint(raw []byte, keys LogKeys) (*log.Checkpoint, error) {
	logV, err := fnote.NewVerifier(keys.CheckpointKey)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse the checkpoint key: %w", err)
	}
	var witnesses []note.Verifier
	for _, k := range keys.WitnessKeys {
		v, err := fnote.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("couldn't parse witness key %q: %w", k, err)
		}
		witnesses = append(witnesses, v)
	}
	cp, _, n, err := log.ParseCheckpoint(raw, keys.Origin, logV, witnesses...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	cosigned := map[uint32]bool{}
	for _, sig := range n.Sigs {
		for _, w := range witnesses {
			if sig.Hash == w.KeyHash() && sig.Name == w.Name() {
				cosigned[sig.Hash] = true
			}
		}
	}
	if len(cosigned) < keys.Quorum {
		return nil, fmt.Errorf("%w: %d witness cosignatures, the agreement requires %d", ErrCheckpoint, len(cosigned), keys.Quorum)
	}
	return cp, nil
}

// VerifyInclusion checks that the envelope bytes are the leaf at index in
// the tree of cp.
func VerifyInclusion(cp *log.Checkpoint, index uint64, envelope []byte, hashes [][]byte) error {
	leaf := rfc6962.DefaultHasher.HashLeaf(envelope)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, leaf, hashes, cp.Hash); err != nil {
		return fmt.Errorf("%w: inclusion of index %d in size %d: %w", ErrProof, index, cp.Size, err)
	}
	return nil
}

// VerifyConsistency checks that older is a prefix of newer.
func VerifyConsistency(older, newer *log.Checkpoint, hashes [][]byte) error {
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, hashes, older.Hash, newer.Hash); err != nil {
		return fmt.Errorf("%w: consistency of size %d with size %d: %w", ErrProof, older.Size, newer.Size, err)
	}
	return nil
}

// Checkpoint fetches the node's latest checkpoint and verifies it.
func (c *Client) Checkpoint(ctx context.Context, keys LogKeys) (*log.Checkpoint, []byte, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.Log.GetCheckpoint(ctx, &parleyv1.GetCheckpointRequest{})
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't get the checkpoint: %w", err)
	}
	cp, err := VerifyCheckpoint(resp.GetCheckpoint(), keys)
	if err != nil {
		return nil, nil, err
	}
	return cp, resp.GetCheckpoint(), nil
}

// ProveInclusion asks the node for an inclusion proof of entry in cp's tree
// and verifies it.
func (c *Client) ProveInclusion(ctx context.Context, cp *log.Checkpoint, entry *parleyv1.LogEntry) error {
	if got := sha256.Sum256(entry.GetEnvelope()); string(got[:]) != string(entry.GetDigest()) {
		return fmt.Errorf("%w: entry digest does not match its envelope", ErrProof)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.Log.GetInclusionProof(ctx, &parleyv1.GetInclusionProofRequest{Index: entry.GetIndex(), TreeSize: cp.Size})
	if err != nil {
		return fmt.Errorf("couldn't get an inclusion proof: %w", err)
	}
	return VerifyInclusion(cp, entry.GetIndex(), entry.GetEnvelope(), resp.GetHashes())
}

// ProveConsistency asks the node for a consistency proof between two
// verified checkpoints and verifies it.
func (c *Client) ProveConsistency(ctx context.Context, older, newer *log.Checkpoint) error {
	if older.Size == 0 || older.Size == newer.Size {
		if older.Size == newer.Size && string(older.Hash) != string(newer.Hash) {
			return fmt.Errorf("%w: two roots for size %d", ErrProof, older.Size)
		}
		return nil
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.Log.GetConsistencyProof(ctx, &parleyv1.GetConsistencyProofRequest{FromSize: older.Size, ToSize: newer.Size})
	if err != nil {
		return fmt.Errorf("couldn't get a consistency proof: %w", err)
	}
	return VerifyConsistency(older, newer, resp.GetHashes())
}

// Checkpoint is a verified checkpoint: origin, tree size and root hash.
type Checkpoint = log.Checkpoint
