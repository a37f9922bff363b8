package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/parley-dev/parley/agreement"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// Fork detection: a node keeps the last checkpoint of every peer's log that
// it verified (the peer's checkpoint key and the agreement's witness quorum)
// and checks each newer one against it with a consistency proof from the
// peer. Two checkpoints that no proof reconciles (different roots for one
// size, or a proof that fails) are kept together as Fork evidence: both are
// signed by the peer, so anyone holding the agreement can check them.

// ErrCheckpoint is wrapped by errors about a peer checkpoint that does not
// verify against the agreement's keys and witness quorum.
var ErrCheckpoint = errors.New("checkpoint does not verify")

// checkpointKeys are the agreement's keys for checking peers' checkpoints.
type checkpointKeys struct {
	logs      map[string]logKey // by party id
	witnesses []note.Verifier
	quorum    int
}

type logKey struct {
	origin   string
	verifier note.Verifier
}

// newCheckpointKeys parses the checkpoint and cosigning keys of the
// agreement.
func newCheckpointKeys(a *agreement.Agreement) (*checkpointKeys, error) {
	k := &checkpointKeys{logs: map[string]logKey{}, quorum: a.WitnessQuorum}
	for _, p := range a.Parties {
		v, err := fnote.NewVerifier(p.CheckpointKey)
		if err != nil {
			return nil, fmt.Errorf("couldn't parse %s's checkpoint key: %w", p.ID, err)
		}
		k.logs[p.ID] = logKey{origin: p.LogOrigin, verifier: v}
	}
	for _, m := range a.Mediators {
		v, err := fnote.NewVerifier(m.CosigningKey)
		if err != nil {
			return nil, fmt.Errorf("couldn't parse mediator %s's cosigning key: %w", m.ID, err)
		}
		k.witnesses = append(k.witnesses, v)
	}
	return k, nil
}

// verify checks raw as a checkpoint of party's log: the party's signature,
// the origin and a quorum of distinct witness cosignatures.
func (k *checkpointKeys) verify(party string, raw []byte) (*log.Checkpoint, error) {
	lk, ok := k.logs[party]
	if !ok {
		return nil, fmt.Errorf("%w: %q is not a party of the agreement", ErrCheckpoint, party)
	}
	cp, _, n, err := log.ParseCheckpoint(raw, lk.origin, lk.verifier, k.witnesses...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	cosigned := map[uint32]bool{}
	for _, sig := range n.Sigs {
		for _, w := range k.witnesses {
			if sig.Hash == w.KeyHash() && sig.Name == w.Name() {
				cosigned[sig.Hash] = true
			}
		}
	}
	if len(cosigned) < k.quorum {
		return nil, fmt.Errorf("%w: %d witness cosignatures, the agreement requires %d", ErrCheckpoint, len(cosigned), k.quorum)
	}
	return cp, nil
}

// proveFunc asks a peer for the consistency proof between two sizes of its
// log.
type proveFunc func(ctx context.Context, from, to uint64) ([][]byte, error)

// checkCheckpoint fetches p's latest checkpoint and checks it against the
// last one verified.
func (x *exchange) checkCheckpoint(ctx context.Context, p *peer) error {
	lc := p.logClient()
	cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	resp, err := lc.GetCheckpoint(cctx, &parleyv1.GetCheckpointRequest{})
	cancel()
	x.stats.checkpoints.Add(1)
	if err != nil {
		return fmt.Errorf("couldn't get %s's checkpoint: %w", p.id, err)
	}
	prove := func(ctx context.Context, from, to uint64) ([][]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		x.stats.checkpoints.Add(1)
		r, err := lc.GetConsistencyProof(ctx, &parleyv1.GetConsistencyProofRequest{FromSize: from, ToSize: to})
		if err != nil {
			return nil, fmt.Errorf("couldn't get %s's consistency proof from %d to %d: %w", p.id, from, to, err)
		}
		return r.GetHashes(), nil
	}
	return x.n.observeCheckpoint(ctx, p.id, resp.GetCheckpoint(), prove)
}

// observeCheckpoint checks raw, a checkpoint of party's log, and its
// consistency with the last one this node verified, asking prove for the
// proof. A verified, consistent checkpoint replaces the stored one; an
// inconsistent one is kept with the stored one as Fork evidence (and
// replaces it, so that one fork is reported once). An error means the
// checkpoint could not be judged.
func (n *Node) observeCheckpoint(ctx context.Context, party string, raw []byte, prove proveFunc) error {
	keys := n.exch.keys
	cp, err := keys.verify(party, raw)
	if err != nil {
		return fmt.Errorf("%s's checkpoint: %w", party, err)
	}
	n.exch.cpMu.Lock()
	defer n.exch.cpMu.Unlock()
	n.exch.stats.verified.Add(1)
	store := func() error {
		if err := n.store.SetPeerCheckpoint(cp.Origin, raw); err != nil {
			return fmt.Errorf("couldn't keep %s's checkpoint: %w", party, err)
		}
		return nil
	}
	oldRaw, ok, err := n.store.PeerCheckpoint(cp.Origin)
	if err != nil {
		return err
	}
	if !ok {
		return store()
	}
	old, err := keys.verify(party, oldRaw)
	if err != nil {
		// Kept under other keys or quorum: start again from this one.
		n.log.Warn("stored peer checkpoint no longer verifies; replacing it", "peer", party, "err", err)
		return store()
	}
	switch {
	case cp.Size == old.Size:
		if !bytes.Equal(cp.Hash, old.Hash) {
			n.keepFork(party, cp.Origin, oldRaw, raw, nil)
			return store()
		}
		return nil
	case cp.Size < old.Size:
		// An older view (a stale read or a rollback): it must be a prefix
		// of the stored one.
		hashes, err := prove(ctx, cp.Size, old.Size)
		if err != nil {
			n.log.Warn("peer serves a checkpoint smaller than one it published before and cannot prove it consistent", "peer", party, "size", cp.Size, "stored_size", old.Size, "err", err)
			return nil
		}
		if cp.Size > 0 {
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cp.Size, old.Size, hashes, cp.Hash, old.Hash); err != nil {
				n.keepFork(party, cp.Origin, oldRaw, raw, hashes)
			}
		}
		return nil
	default:
		if old.Size == 0 {
			return store()
		}
		hashes, err := prove(ctx, old.Size, cp.Size)
		if err != nil {
			return err
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, cp.Size, hashes, old.Hash, cp.Hash); err != nil {
			n.keepFork(party, cp.Origin, oldRaw, raw, hashes)
		}
		return store()
	}
}

// keepFork keeps two inconsistent checkpoints of one log as evidence and
// reports them to subscribers.
func (n *Node) keepFork(party, origin string, first, second []byte, hashes [][]byte) {
	ev := &parleyv1.Evidence{Kind: &parleyv1.Evidence_Fork{Fork: &parleyv1.Fork{
		Origin: origin, First: first, Second: second, Proof: hashes,
	}}}
	f, s := sha256.Sum256(first), sha256.Sum256(second)
	key := fmt.Sprintf("%s/%x/%x", origin, f, s)
	if err := n.store.AddEvidence("fork", key, mustMarshal(ev)); err != nil {
		n.log.Error("couldn't keep fork evidence", "peer", party, "err", err)
	}
	n.log.Error("fork: two checkpoints of one log are not consistent", "peer", party, "origin", origin)
	n.hub.publishEvidence()
}
