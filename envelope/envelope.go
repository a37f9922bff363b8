// Package envelope signs, parses and verifies the DSSE envelopes that carry
// Parley statements.
//
// An entry travels as the exact bytes its signer produced: a deterministically
// marshaled parleyv1.Envelope whose payload is a deterministically marshaled
// parleyv1.Statement. The entry digest is SHA-256 of those bytes, so [Parse]
// accepts only the canonical encoding of both messages. Were it to accept
// any other encoding, a relay could re-encode an honest envelope (reorder
// fields, append an unknown field, pad a varint) and so present two different
// digests for one signed statement: a false equivocation.
//
// Signatures are DSSE signatures over PAE(payload_type, payload), made and
// checked with sigstore signers and verifiers over the exact payload bytes,
// never over a re-serialized statement. The wire format is the DSSE protobuf
// message, so a Parley envelope verifies with any DSSE implementation.
package envelope

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"google.golang.org/protobuf/proto"

	"github.com/parley-dev/parley/keys"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

const (
	// PayloadType is the DSSE payload type of a Parley statement. It is the
	// only payload type [Parse] accepts.
	PayloadType = "application/vnd.parley.statement.v1+protobuf"

	// MaxSize is the largest envelope, in bytes, that [Parse] accepts and
	// [Sign] produces: 64 KiB less one byte, the largest entry a Tessera
	// log holds (its entry size limit is 65,535), so that every envelope
	// the verifier accepts can be logged.
	MaxSize = 64<<10 - 1

	// MaxSignatures is the largest number of signatures an envelope may
	// carry (the schema's limit).
	MaxSignatures = 4
)

var (
	// ErrTooLarge means an envelope is larger than MaxSize.
	ErrTooLarge = errors.New("envelope too large")
	// ErrMalformed means an envelope or its payload cannot be decoded or
	// lacks a required part.
	ErrMalformed = errors.New("malformed envelope")
	// ErrPayloadType means an envelope's payload type is not PayloadType.
	ErrPayloadType = errors.New("unsupported payload type")
	// ErrNonCanonical means an envelope or its payload decodes but is not
	// the deterministic encoding of what it decodes to.
	ErrNonCanonical = errors.New("non-canonical encoding")
	// ErrBadSignature means no signature by a known key verifies.
	ErrBadSignature = errors.New("bad signature")
	// ErrUnknownKey means no signature of an envelope names a known key.
	ErrUnknownKey = errors.New("unknown signing key")
)

// marshal is the one encoding Parley signs and accepts.
var marshal = proto.MarshalOptions{Deterministic: true}

// unmarshal drops unknown fields (including known field numbers with the
// wrong wire type), so that the re-encoding differs from the input whenever
// the input carries any.
var unmarshal = proto.UnmarshalOptions{DiscardUnknown: true}

// PAE returns the DSSE pre-authentication encoding of a payload:
//
//	"DSSEv1" SP LEN(payloadType) SP payloadType SP LEN(payload) SP payload
//
// where LEN is the length in bytes as an ASCII decimal number. Signatures
// are made over these bytes.
func PAE(payloadType string, payload []byte) []byte {
	return appendPAE(make([]byte, 0, len("DSSEv1 ")+2*20+3+len(payloadType)+len(payload)), payloadType, payload)
}

// appendPAE appends PAE(payloadType, payload) to b.
func appendPAE(b []byte, payloadType string, payload []byte) []byte {
	const prefix = "DSSEv1 "
	b = append(b, prefix...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

// Digest returns the entry digest of an envelope: SHA-256 of its bytes
// exactly as signed, logged and delivered.
func Digest(raw []byte) [32]byte {
	return sha256.Sum256(raw)
}

// Sign marshals st deterministically, signs PAE(PayloadType, payload) with
// signer and returns the deterministically marshaled envelope. The returned
// bytes are the entry: log and deliver them unchanged.
//
// keyID is the key id recorded with the signature; when empty it is derived
// from the signer's public key with keys.KeyID. ctx bounds calls to a remote
// (KMS) signer. Sign checks that the result parses with [Parse], so it
// refuses statements that carry unknown fields or exceed MaxSize.
func Sign(ctx context.Context, st *parleyv1.Statement, signer signature.Signer, keyID string) ([]byte, error) {
	if st == nil {
		return nil, fmt.Errorf("couldn't sign: no statement")
	}
	if signer == nil {
		return nil, fmt.Errorf("couldn't sign: no signer")
	}
	if keyID == "" {
		pub, err := signer.PublicKey(options.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("couldn't get signer's public key: %w", err)
		}
		if keyID, err = keys.KeyID(pub); err != nil {
			return nil, fmt.Errorf("couldn't compute key id: %w", err)
		}
	}
	payload, err := marshal.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("couldn't marshal statement: %w", err)
	}
	sig, err := signer.SignMessage(bytes.NewReader(PAE(PayloadType, payload)), options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("couldn't sign statement: %w", err)
	}
	raw, err := marshal.Marshal(&parleyv1.Envelope{
		Payload:     payload,
		PayloadType: PayloadType,
		Signatures:  []*parleyv1.Signature{{Sig: sig, Keyid: keyID}},
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't marshal envelope: %w", err)
	}
	if _, err := Parse(raw); err != nil {
		return nil, fmt.Errorf("couldn't sign statement: signed envelope does not parse: %w", err)
	}
	return raw, nil
}

// Parsed is an envelope that [Parse] accepted. Its signatures are not yet
// verified: call [VerifySignature] before trusting Statement.
type Parsed struct {
	// Raw is the envelope exactly as given to Parse (not copied).
	Raw []byte
	// Digest is SHA-256 of Raw: the entry digest.
	Digest [32]byte
	// Envelope is the decoded envelope.
	Envelope *parleyv1.Envelope
	// Statement is the decoded payload.
	Statement *parleyv1.Statement
	// PayloadDigest is SHA-256 of the payload bytes. Two envelopes with the
	// same payload digest carry the same signed statement, even when their
	// signatures differ (ECDSA signatures are randomized).
	PayloadDigest [32]byte
}

// Parse decodes an envelope and its statement payload, checking the size
// limit, the payload type, the number of signatures and that both the
// envelope and the payload are canonically encoded. It does not verify
// signatures or validate the statement's content. Parsed.Raw aliases raw.
//
// Errors wrap ErrTooLarge, ErrMalformed, ErrPayloadType or ErrNonCanonical.
func Parse(raw []byte) (*Parsed, error) {
	if len(raw) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, want at most %d", ErrTooLarge, len(raw), MaxSize)
	}
	env := new(parleyv1.Envelope)
	if err := unmarshal.Unmarshal(raw, env); err != nil {
		return nil, fmt.Errorf("%w: couldn't decode envelope: %w", ErrMalformed, err)
	}
	if !canonical(env, raw) {
		return nil, fmt.Errorf("%w: envelope is not deterministically encoded or has unknown fields", ErrNonCanonical)
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("%w: got %q, want %q", ErrPayloadType, truncate(env.PayloadType, 128), PayloadType)
	}
	if n := len(env.Signatures); n < 1 || n > MaxSignatures {
		return nil, fmt.Errorf("%w: got %d signatures, want 1 to %d", ErrMalformed, n, MaxSignatures)
	}
	for i, s := range env.Signatures {
		if len(s.Sig) == 0 || s.Keyid == "" {
			return nil, fmt.Errorf("%w: signature %d has an empty sig or keyid", ErrMalformed, i)
		}
	}
	if len(env.Payload) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrMalformed)
	}
	st := new(parleyv1.Statement)
	if err := unmarshal.Unmarshal(env.Payload, st); err != nil {
		return nil, fmt.Errorf("%w: couldn't decode statement: %w", ErrMalformed, err)
	}
	if !canonical(st, env.Payload) {
		return nil, fmt.Errorf("%w: statement is not deterministically encoded or has unknown fields", ErrNonCanonical)
	}
	return &Parsed{
		Raw:           raw,
		Digest:        sha256.Sum256(raw),
		Envelope:      env,
		Statement:     st,
		PayloadDigest: sha256.Sum256(env.Payload),
	}, nil
}

// VerifySignature checks that at least one signature of p whose key id is a
// key of verifiers verifies over PAE of the exact payload bytes, and returns
// that key id. Signatures by other keys are ignored.
//
// It returns an error wrapping ErrUnknownKey when no signature names a key
// of verifiers, and one wrapping ErrBadSignature when some do but none of
// them verifies.
func VerifySignature(p *Parsed, verifiers map[string]signature.Verifier) (keyID string, err error) {
	if p == nil || p.Envelope == nil {
		return "", fmt.Errorf("%w: no envelope", ErrMalformed)
	}
	var pae []byte
	var failed []string
	for _, s := range p.Envelope.Signatures {
		v, ok := verifiers[s.Keyid]
		if !ok || v == nil {
			continue
		}
		if pae == nil {
			bp := paePool.Get().(*[]byte)
			pae = appendPAE((*bp)[:0], p.Envelope.PayloadType, p.Envelope.Payload)
			defer func() {
				if cap(pae) <= MaxSize+1024 {
					*bp = pae[:0]
					paePool.Put(bp)
				}
			}()
		}
		if err := verify(v, s.Sig, pae); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", s.Keyid, err))
			continue
		}
		return s.Keyid, nil
	}
	if len(failed) > 0 {
		return "", fmt.Errorf("%w: %s", ErrBadSignature, strings.Join(failed, "; "))
	}
	ids := make([]string, len(p.Envelope.Signatures))
	for i, s := range p.Envelope.Signatures {
		ids[i] = strconv.Quote(truncate(s.Keyid, 64))
	}
	return "", fmt.Errorf("%w: signed by key ids [%s], want one of the %d known keys", ErrUnknownKey, strings.Join(ids, " "), len(verifiers))
}

// paePool holds the buffers VerifySignature builds PAE in. Verifiers do not
// keep the message.
var paePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// verify checks sig over msg with v. For sigstore's Ed25519 verifier it
// verifies directly (verifyEd25519, ed25519.Verify with the key's point
// kept), which is what that verifier does after copying both inputs out
// of readers; other verifiers go through sigstore.
func verify(v signature.Verifier, sig, msg []byte) error {
	if ev, ok := v.(*signature.ED25519Verifier); ok {
		if pub, err := ev.PublicKey(); err == nil {
			if pub, ok := pub.(ed25519.PublicKey); ok && len(pub) == ed25519.PublicKeySize {
				if !verifyEd25519(pub, msg, sig) {
					return errors.New("failed to verify signature")
				}
				return nil
			}
		}
	}
	return v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg))
}

// truncate shortens attacker-supplied strings quoted in error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
