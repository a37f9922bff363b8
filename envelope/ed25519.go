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
// A key that has verified tableAfter signatures also gets a table of
// multiples of its point (see keyTable), and R is then computed as
// [S]B + [k](−A) from the table and the library's fixed-base tables
// instead of by a double-scalar multiplication: the same point, in about
// two thirds of the time.
//
// The steps are those of RFC 8032 §5.1.7 as crypto/ed25519 implements
// them (cofactorless, S must be canonical, R compared by its encoding);
// FuzzVerifyEd25519 holds the two equal, with and without a table, and
// FuzzKeyTableMul holds the table's multiplication equal to the
// library's. In FIPS 140-3 mode, and for keys past the cache's bound, it
// is ed25519.Verify itself.
func verifyEd25519(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || fips140.Enabled() {
		return ed25519.Verify(pub, msg, sig)
	}
	k := cachedKey(pub)
	if k == nil {
		return ed25519.Verify(pub, msg, sig)
	}
	return verifyWith(k, k.multiples(), msg, sig)
}

// verifyWith is verifyEd25519 with pub decompressed as k and, unless t is
// nil, its table of multiples t.
func verifyWith(k *ed25519Key, t *keyTable, msg, sig []byte) bool {
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
	if t != nil {
		var sb edwards25519.Point
		sb.ScalarBaseMult(s)
		t.mul(&r, kh)
		r.Add(&r, &sb)
	} else {
		r.VarTimeDoubleScalarBaseMult(kh, &k.negA, s)
	}
	return subtle.ConstantTimeCompare(r.Bytes(), sig[:32]) == 1
}

// ed25519Key is a public key with its point decompressed and negated.
type ed25519Key struct {
	a    [ed25519.PublicKeySize]byte
	negA edwards25519.Point
	// uses counts verifications under the key until its table is built;
	// table holds its multiples once it has been used tableAfter times
	// (and fewer than tablesMax keys have one).
	uses  atomic.Int64
	table atomic.Pointer[keyTable]
}

// A key that signs many entries gets a table of multiples of its point,
// with which [k]A takes at most 64 point additions and no doublings,
// where a double-scalar multiplication needs 253 doublings: verification
// takes about two thirds of the time. Building the table costs about as
// much as ten verifications, and it takes 80 KB, so only a key used
// tableAfter times gets one, and at most tablesMax keys do.
const (
	tableAfter = 16
	tablesMax  = 64
)

var tables atomic.Int64

// multiples returns k's table, building it if k has been used enough, or
// nil.
func (k *ed25519Key) multiples() *keyTable {
	if t := k.table.Load(); t != nil {
		return t
	}
	if k.uses.Add(1) != tableAfter {
		return nil
	}
	if tables.Add(1) > tablesMax {
		return nil
	}
	t := newKeyTable(&k.negA)
	k.table.Store(t)
	return t
}

// identity is the neutral point, which mul starts from.
var identity = edwards25519.NewIdentityPoint()

// keyTable holds the multiples j·16^i·P of a point P for j = 1 to 8 and
// i = 0 to 63: t[i][j-1] = j·16^i·P.
type keyTable [64][8]edwards25519.Point

func newKeyTable(p *edwards25519.Point) *keyTable {
	t := new(keyTable)
	var base edwards25519.Point
	base.Set(p)
	for i := range t {
		t[i][0].Set(&base)
		for j := 1; j < 8; j++ {
			t[i][j].Add(&t[i][j-1], &base)
		}
		base.Add(&t[i][7], &t[i][7]) // 16·16^i·P
	}
	return t
}

// mul sets v to [x]P, P the table's point, and returns v. It runs in time
// that depends on x, as verification may.
func (t *keyTable) mul(v *edwards25519.Point, x *edwards25519.Scalar) *edwards25519.Point {
	v.Set(identity)
	for i, d := range signedRadix16(x.Bytes()) {
		switch {
		case d > 0:
			v.Add(v, &t[i][d-1])
		case d < 0:
			v.Subtract(v, &t[i][-d-1])
		}
	}
	return v
}

// signedRadix16 returns the digits d[i] in [−8, 8] with x = Σ d[i]·16^i,
// for x, little-endian, below 2^255 (a canonical scalar is below 2^253).
func signedRadix16(x []byte) [64]int8 {
	var d [64]int8
	for i, b := range x[:32] {
		d[2*i] = int8(b & 15)
		d[2*i+1] = int8(b >> 4)
	}
	for i := range 63 {
		carry := (d[i] + 8) >> 4
		d[i] -= carry << 4
		d[i+1] += carry
	}
	return d
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
	k, err := newEd25519Key(pub)
	if err != nil {
		return nil
	}
	if _, loaded := keyCache.LoadOrStore(id, k); !loaded {
		keyCacheSize.Add(1)
	}
	return k
}

// newEd25519Key decompresses pub and negates its point; it fails, as
// SetBytes does, on anything but a point's 32-byte encoding.
func newEd25519Key(pub []byte) (*ed25519Key, error) {
	a, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, err
	}
	k := &ed25519Key{a: [ed25519.PublicKeySize]byte(pub)}
	k.negA.Negate(a)
	return k, nil
}
