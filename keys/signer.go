package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// kmsSchemes lists the key reference schemes [LoadSigner] hands to
// sigstore's KMS providers. Any other "scheme://" reference is refused.
//
// sigstore's kms.Get falls back, for a reference that no compiled-in
// provider claims, to running a plugin program named "sigstore-kms-<scheme>"
// found on $PATH. Parley never lets that happen: a reference is passed to
// kms.Get only when its scheme is in this list and a provider registered for
// it is compiled into the binary.
var kmsSchemes = []string{"awskms://", "gcpkms://", "azurekms://", "hashivault://"}

// KMSSchemes returns the KMS key URI schemes [LoadSigner] accepts:
// awskms://, gcpkms://, azurekms:// and hashivault://.
func KMSSchemes() []string {
	return slices.Clone(kmsSchemes)
}

// uriScheme matches a reference that starts with "scheme://". Such a
// reference is never read as a file path.
var uriScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// LoadSigner returns the signer named by ref, which is either
//
//   - a path to a PEM private key file (see [ParsePrivatePEM]); passFunc is
//     called only when the key is encrypted and may be nil otherwise; or
//   - a KMS key URI with one of the schemes of [KMSSchemes], such as
//     "awskms:///arn:..." or "hashivault://transit-key", handled by the
//     sigstore KMS provider for that scheme. The provider must be compiled
//     into the binary (by importing it); Parley links none by default.
//
// Any other "scheme://" reference is refused without running anything. The
// key, wherever it lives, must be Ed25519 or ECDSA P-256; an ECDSA signer
// hashes with SHA-256. ctx bounds the KMS calls made while loading.
func LoadSigner(ctx context.Context, ref string, passFunc func() ([]byte, error)) (signature.Signer, error) {
	if ref == "" {
		return nil, fmt.Errorf("no signing key given (want a PEM file path or a KMS URI)")
	}
	if m := uriScheme.FindString(ref); m != "" {
		return loadKMSSigner(ctx, ref, m)
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("couldn't read signing key: %w", err)
	}
	priv, err := ParsePrivatePEM(data, passFunc)
	if err != nil {
		return nil, fmt.Errorf("couldn't load signing key %s: %w", ref, err)
	}
	return NewSigner(priv)
}

func loadKMSSigner(ctx context.Context, ref, scheme string) (signature.Signer, error) {
	if !slices.Contains(kmsSchemes, scheme) {
		return nil, fmt.Errorf("key reference scheme %q is not allowed (want a PEM file path or one of %s)",
			strings.TrimSuffix(scheme, "://"), strings.Join(kmsSchemes, ", "))
	}
	// kms.Get runs a plugin from $PATH when no registered provider prefix
	// matches ref. Check first that one does: providers are only ever
	// added, so the match still holds when kms.Get looks.
	registered := false
	for _, prefix := range kms.SupportedProviders() {
		if strings.HasPrefix(ref, prefix) {
			registered = true
			break
		}
	}
	if !registered {
		return nil, fmt.Errorf("KMS provider for %s keys is not compiled into this binary", scheme)
	}
	sv, err := kms.Get(ctx, ref, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("couldn't load KMS key %s: %w", ref, err)
	}
	pub, err := sv.PublicKey(options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("couldn't get public key of KMS key %s: %w", ref, err)
	}
	if _, err := AlgorithmOf(pub); err != nil {
		return nil, fmt.Errorf("KMS key %s: %w", ref, err)
	}
	return sv, nil
}

// NewSigner wraps an in-memory private key (an ed25519.PrivateKey or an
// *ecdsa.PrivateKey on P-256) as a sigstore signer: pure Ed25519, or ECDSA
// with SHA-256.
func NewSigner(priv crypto.Signer) (signature.Signer, error) {
	k, err := privateKey(priv)
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case ed25519.PrivateKey:
		s, err := signature.LoadED25519Signer(k)
		if err != nil {
			return nil, fmt.Errorf("couldn't load ed25519 signer: %w", err)
		}
		return s, nil
	default:
		s, err := signature.LoadECDSASigner(k.(*ecdsa.PrivateKey), crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("couldn't load ecdsa signer: %w", err)
		}
		return s, nil
	}
}

// LoadVerifier returns a sigstore verifier for pub: pure Ed25519, or ECDSA
// P-256 with SHA-256. Other algorithms are refused. The verifier is safe for
// concurrent use.
func LoadVerifier(pub crypto.PublicKey) (signature.Verifier, error) {
	if _, err := AlgorithmOf(pub); err != nil {
		return nil, err
	}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		v, err := signature.LoadED25519Verifier(k)
		if err != nil {
			return nil, fmt.Errorf("couldn't load ed25519 verifier: %w", err)
		}
		return v, nil
	default:
		v, err := signature.LoadECDSAVerifier(k.(*ecdsa.PublicKey), crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("couldn't load ecdsa verifier: %w", err)
		}
		return v, nil
	}
}
