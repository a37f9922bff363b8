package client_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/parley-dev/parley/client"
)

// proofTreeSize is the size of the reference tree the proof fuzzers check
// against: odd, so that trees of every size up to it have ragged right
// edges.
const proofTreeSize = 23

// proofTree is a reference log built with transparency-dev/merkle's own
// test tree, independent of the code under test.
type proofTree struct {
	tree   *testonly.Tree
	leaves [][]byte
}

func newProofTree() *proofTree {
	t := &proofTree{tree: testonly.New(rfc6962.DefaultHasher)}
	for i := range proofTreeSize {
		leaf := fmt.Appendf(nil, "envelope %d", i)
		t.leaves = append(t.leaves, leaf)
		t.tree.AppendData(leaf)
	}
	return t
}

// checkpoint returns the true checkpoint of the tree's first size leaves.
func (p *proofTree) checkpoint(size uint64) *client.Checkpoint {
	return &client.Checkpoint{Origin: testOrigin, Size: size, Hash: p.tree.HashAt(size)}
}

// joinHashes and splitHashes carry a proof as one fuzzed byte string. A
// trailing piece shorter than a hash is kept, so that proofs with hashes of
// the wrong length are tried too.
func joinHashes(hashes [][]byte) []byte { return bytes.Join(hashes, nil) }

func splitHashes(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := min(len(b), 32)
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// FuzzVerifyInclusion checks that VerifyInclusion never panics and never
// accepts a wrong leaf: against the true checkpoint of a reference tree,
// whatever the index, envelope and proof, it accepts only the envelope
// actually at that index.
func FuzzVerifyInclusion(f *testing.F) {
	p := newProofTree()
	for _, size := range []uint64{1, 2, 7, 8, 16, proofTreeSize} {
		for _, index := range []uint64{0, size / 2, size - 1} {
			proof, err := p.tree.InclusionProof(index, size)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(size), index, p.leaves[index], joinHashes(proof))
			// The right proof for a neighbour, and the wrong index.
			f.Add(uint8(size), index+1, p.leaves[index], joinHashes(proof))
			// An interior node given as the leaf (second preimage).
			if len(proof) > 0 {
				f.Add(uint8(size), index/2, proof[0], joinHashes(proof[1:]))
			}
		}
	}
	f.Add(uint8(0), uint64(0), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, size uint8, index uint64, leaf, proof []byte) {
		cp := p.checkpoint(uint64(size) % (proofTreeSize + 1))
		err := client.VerifyInclusion(cp, index, leaf, splitHashes(proof))
		if err != nil {
			if !errors.Is(err, client.ErrProof) {
				t.Fatalf("got error %v, want one wrapping ErrProof", err)
			}
			return
		}
		if index >= cp.Size {
			t.Fatalf("accepted index %d in a tree of size %d", index, cp.Size)
		}
		if !bytes.Equal(leaf, p.leaves[index]) {
			t.Fatalf("accepted %q as the leaf at index %d, want %q", leaf, index, p.leaves[index])
		}
	})
}

// FuzzVerifyConsistency checks that VerifyConsistency never panics and
// never accepts an older root that is not the reference tree's: with the
// newer checkpoint true, whatever the older root, the sizes and the proof, it
// accepts only the true older root. With the older checkpoint true, a fuzzed
// newer root may well be accepted: a proof shows that some tree of the newer
// size extends the older one, and any new leaves make one (the fuzzer finds
// such proofs by copying the hash it is compared with). Then only a newer
// root of the same size must be the true one. From the empty tree, every
// tree is consistent, whatever the roots claimed: RFC 6962 needs no proof.
func FuzzVerifyConsistency(f *testing.F) {
	p := newProofTree()
	for _, sizes := range [][2]uint64{{0, 5}, {1, 1}, {1, 2}, {3, 7}, {4, 8}, {6, 13}, {7, proofTreeSize}, {proofTreeSize, proofTreeSize}} {
		proof, err := p.tree.ConsistencyProof(sizes[0], sizes[1])
		if err != nil {
			f.Fatal(err)
		}
		for _, older := range []bool{true, false} {
			root := p.tree.HashAt(sizes[1])
			if older {
				root = p.tree.HashAt(sizes[0])
			}
			f.Add(uint8(sizes[0]), uint8(sizes[1]), older, root, joinHashes(proof))
			// Sizes swapped, and the proof of another pair.
			f.Add(uint8(sizes[1]), uint8(sizes[0]), older, root, joinHashes(proof))
			f.Add(uint8(sizes[0]+1), uint8(sizes[1]), older, root, joinHashes(proof))
		}
	}
	f.Fuzz(func(t *testing.T, m, n uint8, fuzzOlder bool, root, proof []byte) {
		older := p.checkpoint(uint64(m) % (proofTreeSize + 1))
		newer := p.checkpoint(uint64(n) % (proofTreeSize + 1))
		if fuzzOlder {
			older.Hash = root
		} else {
			newer.Hash = root
		}
		err := client.VerifyConsistency(older, newer, splitHashes(proof))
		if err != nil {
			if !errors.Is(err, client.ErrProof) {
				t.Fatalf("got error %v, want one wrapping ErrProof", err)
			}
			return
		}
		if older.Size > newer.Size {
			t.Fatalf("accepted size %d as a prefix of size %d", older.Size, newer.Size)
		}
		switch {
		case older.Size == 0:
		case fuzzOlder || older.Size == newer.Size:
			if want := p.tree.HashAt(older.Size); !bytes.Equal(older.Hash, want) || !bytes.Equal(newer.Hash, p.tree.HashAt(newer.Size)) {
				t.Fatalf("accepted roots %x (size %d) and %x (size %d), want %x and %x",
					older.Hash, older.Size, newer.Hash, newer.Size, want, p.tree.HashAt(newer.Size))
			}
		}
	})
}
