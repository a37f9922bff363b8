package mediator

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// algEd25519CosignatureV1 is the signed-note signature type of Ed25519
// cosignature/v1 keys (c2sp.org/tlog-cosignature, Format; c2sp.org/signed-note,
// Signature types).
const algEd25519CosignatureV1 = 0x04

// GenerateCosigningKey generates an Ed25519 cosignature/v1 key pair for a
// witness named name (c2sp.org/tlog-cosignature). The name should be a
// schema-less URL identifying the mediator, e.g. "parley.example/mediator/un";
// it must be non-empty and contain no white space and no '+'.
//
// vkey is the verifier key ("<name>+<key id>+base64(0x04 || public key)"): it
// is what the agreement lists as the mediator's cosigning_key, what nodes
// give Tessera's NewWitness or NewWitnessGroupFromPolicy, and what clients
// verify cosignatures with (formats/note NewVerifierForCosignatureV1). skey is
// the secret signer key ("PRIVATE+KEY+<name>+<key id>+base64(0x04 || seed)")
// that [NewCosigner] reads; it must be kept secret.
func GenerateCosigningKey(name string) (skey, vkey string, err error) {
	if !validKeyName(name) {
		return "", "", fmt.Errorf("couldn't generate cosigning key: invalid key name %q (want non-empty, no white space, no '+')", name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("couldn't generate cosigning key: %w", err)
	}
	pubKey := append([]byte{algEd25519CosignatureV1}, pub...)
	// c2sp.org/tlog-cosignature, Format: "The key ID for Ed25519
	// cosignatures MUST be computed as
	// SHA-256(<name> || "\n" || 0x04 || 32-byte Ed25519 cosigner public key)[:4]".
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte("\n"))
	h.Write(pubKey)
	keyID := binary.BigEndian.Uint32(h.Sum(nil))
	privKey := append([]byte{algEd25519CosignatureV1}, priv.Seed()...)

	skey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, keyID, base64.StdEncoding.EncodeToString(privKey))
	vkey = fmt.Sprintf("%s+%08x+%s", name, keyID, base64.StdEncoding.EncodeToString(pubKey))
	return skey, vkey, nil
}

// NewCosigner returns the cosignature/v1 signer for an Ed25519 cosigning key
// made by [GenerateCosigningKey], for [WitnessConfig.Signer]. It accepts
// only signature type 0x04 keys, so that a plain note key (such as a log's
// checkpoint key) cannot be configured as a witness key by mistake.
//
// Cosignatures it makes carry the current time as their timestamp.
func NewCosigner(skey string) (note.Signer, error) {
	fields := strings.SplitN(skey, "+", 5)
	if len(fields) != 5 || fields[0] != "PRIVATE" || fields[1] != "KEY" {
		return nil, errors.New("couldn't parse cosigning key: not a note signer key (want PRIVATE+KEY+<name>+<key id>+<key>)")
	}
	key, err := base64.StdEncoding.DecodeString(fields[4])
	if err != nil || len(key) == 0 {
		return nil, errors.New("couldn't parse cosigning key: key material is not base64")
	}
	if key[0] != algEd25519CosignatureV1 {
		return nil, fmt.Errorf("couldn't parse cosigning key: signature type 0x%02x, want 0x%02x (Ed25519 cosignature/v1)", key[0], algEd25519CosignatureV1)
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse cosigning key: %w", err)
	}
	if got := fmt.Sprintf("%08x", s.KeyHash()); got != fields[3] {
		return nil, fmt.Errorf("couldn't parse cosigning key: key id %s does not match the key (want %s)", fields[3], got)
	}
	return s, nil
}

// validKeyName reports whether name is a valid signed-note key name:
// non-empty UTF-8 without Unicode white space and without '+'.
func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) &&
		strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}
