package tlog

import (
	"crypto/rand"
	"fmt"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// GenerateKey makes a new Ed25519 checkpoint key for the log of the given
// origin, as note keys: skey (secret, for [NewSigner]) and vkey (public, for
// the agreement and [note.NewVerifier]).
func GenerateKey(origin string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", "", fmt.Errorf("couldn't generate checkpoint key for origin %q: %w", origin, err)
	}
	return skey, vkey, nil
}

// NewSigner parses an Ed25519 note signer key made by GenerateKey and
// returns its signer and the matching verifier. Other algorithms are refused.
func NewSigner(skey string) (note.Signer, note.Verifier, error) {
	s, v, err := fnote.NewEd25519SignerVerifier(skey)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't parse checkpoint signer key: %w", err)
	}
	return s, v, nil
}

// VerifyCheckpoint checks that raw is a checkpoint note signed by v with the
// given origin, and returns its parsed body. Other signatures on the note,
// such as witness cosignatures, are ignored here.
func VerifyCheckpoint(raw []byte, origin string, v note.Verifier) (log.Checkpoint, error) {
	cp, _, _, err := log.ParseCheckpoint(raw, origin, v)
	if err != nil {
		return log.Checkpoint{}, fmt.Errorf("couldn't verify checkpoint: %w", err)
	}
	return *cp, nil
}
