package envelope

import (
	"crypto/ed25519"
	"crypto/fips140"
	"crypto/sha512"
	"crypto/subtle"
	"hash"
	"sync"
	"sync/atomic"

	"filippo.io/edwards25519"
)

// verifyEd25519 reports whether sig is pub's Ed25519 signature of msg,
// exactly as ed25519.Verify does, but with pub's point decompressed once
// and kept: ed25519.Verify decompresses it on every call (a square root
// in the field, about 6% of a verification), and an agreement has a
// handful of keys that sign every entry.
//
// The steps are those of RFC 8032 §5.1.7 as crypto/ed25519 implements
// them (cofactorless, S must be canonical, R compared by its encoding);
// FuzzVerifyEd25519 holds the two equal. In FIPS 140-3 mode, and for keys
// past the cache's bound, it is ed25519.Verify itself.
func verifyEd25519(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || fips140.Enabled() {
		return ed25519.Verify(pub, msg, sig)
	}
	k := cachedKey(pub)
	if k == nil {
		return ed25519.Verify(pub, msg, sig)
	}
	if len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
		return false
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	h := sha512Pool.Get().(hash.Hash)
	h.Reset()
	h.Write(sig[:32])
	h.Write(k.a[:])
	h.Write(msg)
	var digest [sha512.Size]byte
	h.Sum(digest[:0])
	sha512Pool.Put(h)
	kh, err := edwards25519.NewScalar().SetUniformBytes(digest[:])
	if err != nil {
		return false
	}
	// R = [S]B − [k]A, compared with the signature's R by encoding.
	var r edwards25519.Point
	r.VarTimeDoubleScalarBaseMult(kh, &k.negA, s)
	return subtle.ConstantTimeCompare(r.Bytes(), sig[:32]) == 1
}

// ed25519Key is a public key with its point decompressed and negated.
type ed25519Key struct {
	a    [ed25519.PublicKeySize]byte
	negA edwards25519.Point
}

var (
	sha512Pool = sync.Pool{New: func() any { return sha512.New() }}
	// keyCache maps a public key's 32 bytes to its *ed25519Key. Keys come
	// from agreements, so few are ever seen; keyCacheMax bounds it anyway.
	keyCache     sync.Map
	keyCacheSize atomic.Int64
)

const keyCacheMax = 4096

// cachedKey returns pub decompressed, or nil if pub is not a point's
// encoding or the cache is full (ed25519.Verify then judges).
func cachedKey(pub ed25519.PublicKey) *ed25519Key {
	id := [ed25519.PublicKeySize]byte(pub)
	if k, ok := keyCache.Load(id); ok {
		return k.(*ed25519Key)
	}
	if keyCacheSize.Load() >= keyCacheMax {
		return nil
	}
	a, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil
	}
	k := &ed25519Key{a: id}
	k.negA.Negate(a)
	if _, loaded := keyCache.LoadOrStore(id, k); !loaded {
		keyCacheSize.Add(1)
	}
	return k
}
