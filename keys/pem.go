package keys

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// PEM block types written and read by this package.
const (
	publicKeyPEMType          = string(cryptoutils.PublicKeyPEMType)                   // "PUBLIC KEY"
	privateKeyPEMType         = string(cryptoutils.PrivateKeyPEMType)                  // "PRIVATE KEY" (PKCS#8)
	ecPrivateKeyPEMType       = string(cryptoutils.ECPrivateKeyPEMType)                // "EC PRIVATE KEY" (SEC 1)
	encryptedPrivateKeyType   = string(cryptoutils.EncryptedSigstorePrivateKeyPEMType) // "ENCRYPTED SIGSTORE PRIVATE KEY"
	encryptedCosignPrivateKey = "ENCRYPTED COSIGN PRIVATE KEY"                         // same format, written by cosign
)

// ErrPassphraseRequired is returned when a private key is encrypted and no
// passphrase (or an empty one) was supplied.
var ErrPassphraseRequired = errors.New("private key is encrypted: a passphrase is required")

// MarshalPrivatePEM encodes a private key as PEM. With an empty passphrase it
// writes an unencrypted PKCS#8 "PRIVATE KEY" block; otherwise it writes an
// "ENCRYPTED SIGSTORE PRIVATE KEY" block (PKCS#8 encrypted with scrypt and
// NaCl secretbox, the sigstore and cosign format). The signer must be an
// ed25519.PrivateKey or an *ecdsa.PrivateKey on P-256.
func MarshalPrivatePEM(signer crypto.Signer, passphrase []byte) ([]byte, error) {
	priv, err := privateKey(signer)
	if err != nil {
		return nil, err
	}
	if len(passphrase) == 0 {
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, fmt.Errorf("couldn't encode private key: %w", err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: privateKeyPEMType, Bytes: der}), nil
	}
	der, err := cryptoutils.MarshalPrivateKeyToEncryptedDER(priv, cryptoutils.StaticPasswordFunc(passphrase))
	if err != nil {
		return nil, fmt.Errorf("couldn't encrypt private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: encryptedPrivateKeyType, Bytes: der}), nil
}

// ParsePrivatePEM decodes a private key written by [MarshalPrivatePEM] (or
// by cosign, or a plain PKCS#8 or SEC 1 EC key). passFunc is called only
// when the key is encrypted; it may be nil for unencrypted keys. An
// encrypted key with no passphrase yields [ErrPassphraseRequired]. Keys of
// other algorithms are refused.
func ParsePrivatePEM(data []byte, passFunc func() ([]byte, error)) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found (want a PRIVATE KEY or ENCRYPTED SIGSTORE PRIVATE KEY block)")
	}
	var (
		priv crypto.PrivateKey
		err  error
	)
	switch block.Type {
	case privateKeyPEMType:
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case ecPrivateKeyPEMType:
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	case encryptedPrivateKeyType, encryptedCosignPrivateKey:
		var pass []byte
		if passFunc != nil {
			if pass, err = passFunc(); err != nil {
				return nil, fmt.Errorf("couldn't read passphrase: %w", err)
			}
		}
		if len(pass) == 0 {
			return nil, ErrPassphraseRequired
		}
		priv, err = cryptoutils.UnmarshalPEMToPrivateKey(data, cryptoutils.StaticPasswordFunc(pass))
		if err != nil {
			return nil, fmt.Errorf("couldn't decrypt private key (wrong passphrase?): %w", err)
		}
	default:
		return nil, fmt.Errorf("unsupported PEM block %q (want PRIVATE KEY or ENCRYPTED SIGSTORE PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't parse private key: %w", err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", priv)
	}
	if _, err := privateKey(signer); err != nil {
		return nil, err
	}
	return signer, nil
}

// MarshalPublicPEM encodes a public key as a PKIX "PUBLIC KEY" PEM block.
// Keys of other algorithms than Ed25519 and ECDSA P-256 are refused.
func MarshalPublicPEM(pub crypto.PublicKey) ([]byte, error) {
	if _, err := AlgorithmOf(pub); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("couldn't encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: publicKeyPEMType, Bytes: der}), nil
}

// ParsePublicPEM decodes exactly one PKIX "PUBLIC KEY" PEM block (surrounding
// white space is allowed, other data is not) and returns an
// ed25519.PublicKey or an *ecdsa.PublicKey on P-256. Any other algorithm or
// curve is refused with an error that names it.
func ParsePublicPEM(data []byte) (crypto.PublicKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found (want a PUBLIC KEY block)")
	}
	if block.Type != publicKeyPEMType {
		return nil, fmt.Errorf("unsupported PEM block %q (want PUBLIC KEY)", block.Type)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("unexpected data after the PUBLIC KEY block (want exactly one key)")
	}
	// pem.Decode skips whatever precedes the block it returns, including
	// text and blocks it cannot parse (an indented one, say): a reader of
	// the agreement would see a key that is not the one used.
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN ")) || bytes.Count(data, []byte("-----BEGIN")) != 1 {
		return nil, errors.New("unexpected data before the PUBLIC KEY block (want exactly one key)")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse public key: %w", err)
	}
	if _, err := AlgorithmOf(pub); err != nil {
		return nil, err
	}
	return pub, nil
}
