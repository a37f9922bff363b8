// Package keys creates, stores and loads the signing keys that back Parley
// evidence: entries, receipts and the agreement itself.
//
// Only two algorithms are accepted anywhere in Parley: Ed25519 (the default)
// and ECDSA on the NIST P-256 curve with SHA-256. Every function of this
// package that takes or returns a key refuses anything else (RSA, other
// curves, Ed25519ph), so the verifier never has to decide which algorithm a
// party meant.
//
// A key is named by its key id, the lowercase hex SHA-256 of the DER-encoded
// PKIX SubjectPublicKeyInfo of its public key (see [KeyID]). The id is stable:
// it depends only on the public key, never on a file name or a KMS resource
// name, so an agreement can list a key before its holder decides where the
// private half lives.
//
// Private keys are stored as PKCS#8 PEM, optionally encrypted with a
// passphrase in the sigstore format ("ENCRYPTED SIGSTORE PRIVATE KEY", scrypt
// and NaCl secretbox), which cosign also reads. A signing key can instead live
// in a cloud KMS or HashiCorp Vault; see [LoadSigner].
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
)

// Algorithm names a signing algorithm allowed for Parley evidence.
type Algorithm string

const (
	// Ed25519 is pure Ed25519 (RFC 8032). It is the default.
	Ed25519 Algorithm = "ed25519"
	// ECDSAP256 is ECDSA over NIST P-256 with SHA-256, ASN.1 DER signatures.
	ECDSAP256 Algorithm = "ecdsa-p256"
)

// DefaultAlgorithm is the algorithm used when none is named.
const DefaultAlgorithm = Ed25519

// ParseAlgorithm returns the Algorithm named s. The empty string selects
// [DefaultAlgorithm].
func ParseAlgorithm(s string) (Algorithm, error) {
	switch Algorithm(s) {
	case "":
		return DefaultAlgorithm, nil
	case Ed25519, ECDSAP256:
		return Algorithm(s), nil
	}
	return "", fmt.Errorf("unsupported key algorithm %q (want %q or %q)", s, Ed25519, ECDSAP256)
}

// Generate creates a new private key for alg using crypto/rand. The empty
// Algorithm selects [DefaultAlgorithm]. The returned signer is an
// ed25519.PrivateKey or an *ecdsa.PrivateKey.
func Generate(alg Algorithm) (crypto.Signer, error) {
	alg, err := ParseAlgorithm(string(alg))
	if err != nil {
		return nil, err
	}
	switch alg {
	case Ed25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("couldn't generate ed25519 key: %w", err)
		}
		return priv, nil
	default: // ECDSAP256
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("couldn't generate ecdsa-p256 key: %w", err)
		}
		return priv, nil
	}
}

// AlgorithmOf returns the algorithm of a public key, or an error that names
// the key type when it is not one Parley accepts. It accepts
// ed25519.PublicKey and *ecdsa.PublicKey on P-256.
func AlgorithmOf(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", fmt.Errorf("invalid ed25519 public key: %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		return Ed25519, nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return "", fmt.Errorf("invalid ecdsa public key: no curve")
		}
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("unsupported ECDSA curve %s (want P-256)", k.Curve.Params().Name)
		}
		return ECDSAP256, nil
	case *rsa.PublicKey:
		return "", fmt.Errorf("unsupported key algorithm RSA (want %s or %s)", Ed25519, ECDSAP256)
	case nil:
		return "", fmt.Errorf("no public key")
	default:
		return "", fmt.Errorf("unsupported public key type %T (want %s or %s)", pub, Ed25519, ECDSAP256)
	}
}

// KeyID returns the stable id of a public key: the lowercase hex encoding of
// the SHA-256 digest of the key's DER-encoded PKIX SubjectPublicKeyInfo
// (64 characters). The agreement lists keys by this id and every signature
// carries it. It returns an error for keys of an algorithm Parley does not
// accept.
func KeyID(pub crypto.PublicKey) (string, error) {
	if _, err := AlgorithmOf(pub); err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("couldn't encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// privateKey checks that signer is a private key of an allowed algorithm
// held in memory and returns it as the concrete key type.
func privateKey(signer crypto.Signer) (crypto.PrivateKey, error) {
	switch k := signer.(type) {
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("invalid ed25519 private key: %d bytes, want %d", len(k), ed25519.PrivateKeySize)
		}
		return k, nil
	case *ecdsa.PrivateKey:
		if _, err := AlgorithmOf(&k.PublicKey); err != nil {
			return nil, err
		}
		return k, nil
	case nil:
		return nil, fmt.Errorf("no private key")
	default:
		if _, err := AlgorithmOf(signer.Public()); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("unsupported private key type %T (want ed25519.PrivateKey or *ecdsa.PrivateKey)", signer)
	}
}
