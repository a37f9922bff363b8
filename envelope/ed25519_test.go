package envelope

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	"filippo.io/edwards25519"
)

// order is the group order L, little-endian: L + S encodes the same scalar
// as S non-canonically.
var order = mustHex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// addLE returns a + b for little-endian 32-byte numbers (mod 2^256).
func addLE(a, b []byte) []byte {
	out := make([]byte, 32)
	carry := 0
	for i := range 32 {
		v := int(a[i]) + int(b[i]) + carry
		out[i], carry = byte(v), v>>8
	}
	return out
}

func TestVerifyEd25519MatchesStdlib(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("parley statement")
	sig := ed25519.Sign(priv, msg)
	identity := mustHex("0100000000000000000000000000000000000000000000000000000000000000")
	// A point of order 2: (0, −1).
	order2 := mustHex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	// y = p + 1 ≥ p: a non-canonical encoding of the identity.
	nonCanonicalIdentity := mustHex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	notAPoint := mustHex("0200000000000000000000000000000000000000000000000000000000000000")
	zeroS := func(r []byte) []byte { return append(bytes.Clone(r), make([]byte, 32)...) }

	tests := []struct {
		name     string
		pub, sig []byte
		msg      []byte
		want     bool
	}{
		{"valid", pub, sig, msg, true},
		{"other message", pub, sig, []byte("another"), false},
		{"flipped R bit", pub, flip(sig, 3), msg, false},
		{"flipped S bit", pub, flip(sig, 40), msg, false},
		{"S plus L (non-canonical S)", pub, append(bytes.Clone(sig[:32]), addLE(sig[32:], order)...), msg, false},
		{"top bits of S set", pub, flip(sig, 63*8+7), msg, false},
		{"short signature", pub, sig[:63], msg, false},
		{"long signature", pub, append(bytes.Clone(sig), 0), msg, false},
		{"empty signature", pub, nil, msg, false},
		{"key not a point", notAPoint, sig, msg, false},
		{"identity key, identity R, S = 0", identity, zeroS(identity), msg, true},
		// [k]A is A or the identity by the parity of k, which msg fixes.
		{"order-2 key, identity R, S = 0", order2, zeroS(identity), msg, false},
		{"non-canonical identity key", nonCanonicalIdentity, zeroS(identity), msg, true},
		{"identity key, non-canonical identity R", identity, zeroS(nonCanonicalIdentity), msg, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			std := ed25519.Verify(tt.pub, tt.msg, tt.sig)
			if std != tt.want {
				t.Fatalf("ed25519.Verify = %v, the table says %v", std, tt.want)
			}
			// The first call caches the key, the next use it, and from
			// the tableAfter-th on its table of multiples.
			for i := range tableAfter + 2 {
				if got := verifyEd25519(tt.pub, tt.msg, tt.sig); got != std {
					t.Fatalf("call %d: verifyEd25519 = %v, ed25519.Verify = %v", i+1, got, std)
				}
			}
			// The last calls did use a table (a key that is a point has
			// one by now), so both ways were compared.
			if k := cachedKey(tt.pub); k != nil && k.table.Load() == nil {
				t.Fatalf("no table of multiples after %d verifications", tableAfter+2)
			}
		})
	}
}

// TestKeyTableMul holds a table's multiplication equal to the library's
// for points of every kind and scalars at the edges of the digits.
func TestKeyTableMul(t *testing.T) {
	lMinus1 := mustHex("ecd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	top := make([]byte, 32)
	top[31] = 0x10                           // 2^252
	eights := bytes.Repeat([]byte{0x88}, 31) // every digit 8: carries all the way
	points := map[string][]byte{
		"base point": edwards25519.NewGeneratorPoint().Bytes(),
		"identity":   mustHex("0100000000000000000000000000000000000000000000000000000000000000"),
		"order 2":    mustHex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
		"random":     edwards25519.NewGeneratorPoint().ScalarBaseMult(scalar(t, bytes.Repeat([]byte{9}, 64))).Bytes(),
	}
	scalars := map[string][]byte{
		"0": make([]byte, 32), "1": append([]byte{1}, make([]byte, 31)...), "15": append([]byte{15}, make([]byte, 31)...),
		"16": append([]byte{16}, make([]byte, 31)...), "L-1": lMinus1, "2^252": top, "0x88…": append(eights, 0x08),
	}
	for pn, pb := range points {
		p, err := new(edwards25519.Point).SetBytes(pb)
		if err != nil {
			t.Fatal(pn, err)
		}
		table := newKeyTable(p)
		for sn, sb := range scalars {
			x, err := edwards25519.NewScalar().SetCanonicalBytes(sb)
			if err != nil {
				t.Fatal(sn, err)
			}
			var got edwards25519.Point
			if want := new(edwards25519.Point).ScalarMult(x, p); table.mul(&got, x).Equal(want) != 1 {
				t.Errorf("[%s]%s: got %x, want %x", sn, pn, got.Bytes(), want.Bytes())
			}
		}
	}
}

// scalar reduces 64 bytes to a scalar.
func scalar(tb testing.TB, b []byte) *edwards25519.Scalar {
	x, err := edwards25519.NewScalar().SetUniformBytes(b)
	if err != nil {
		tb.Fatal(err)
	}
	return x
}

// FuzzKeyTableMul holds a table's multiplication equal to the library's
// on points [a]B and scalars reduced from the input.
func FuzzKeyTableMul(f *testing.F) {
	f.Add([]byte("point"), []byte("scalar"))
	f.Add([]byte{}, bytes.Repeat([]byte{0xff}, 64))
	f.Fuzz(func(t *testing.T, a, x []byte) {
		p := new(edwards25519.Point).ScalarBaseMult(scalar(t, append(bytes.Clone(a), make([]byte, 64)...)[:64]))
		k := scalar(t, append(bytes.Clone(x), make([]byte, 64)...)[:64])
		var got edwards25519.Point
		if want := new(edwards25519.Point).ScalarMult(k, p); newKeyTable(p).mul(&got, k).Equal(want) != 1 {
			t.Fatalf("[%x]P: got %x, want %x", k.Bytes(), got.Bytes(), want.Bytes())
		}
	})
}

func flip(b []byte, bit int) []byte {
	out := bytes.Clone(b)
	out[bit/8] ^= 1 << (bit % 8)
	return out
}

// FuzzVerifyEd25519 holds verifyEd25519 equal to ed25519.Verify: on a
// signature made by a key from seed, with one bit of the signature or key
// flipped (or none), and on raw keys and signatures as given.
func FuzzVerifyEd25519(f *testing.F) {
	f.Add([]byte("seed"), []byte("message"), uint16(0), false, []byte{}, []byte{})
	f.Add([]byte("seed"), []byte("message"), uint16(300), true, []byte{}, []byte{})
	f.Add([]byte("x"), []byte{}, uint16(700), true, []byte{}, []byte{})
	f.Add([]byte{}, []byte("m"), uint16(0), false,
		mustHex("0100000000000000000000000000000000000000000000000000000000000000"),
		append(mustHex("0100000000000000000000000000000000000000000000000000000000000000"), make([]byte, 32)...))
	f.Fuzz(func(t *testing.T, seed, msg []byte, bit uint16, mutate bool, rawPub, rawSig []byte) {
		pub, sig := rawPub, rawSig
		if len(rawPub) != ed25519.PublicKeySize {
			s := make([]byte, ed25519.SeedSize)
			copy(s, seed)
			priv := ed25519.NewKeyFromSeed(s)
			pub, sig = priv.Public().(ed25519.PublicKey), ed25519.Sign(priv, msg)
			if mutate {
				// Bits 0–511 of the signature, then 512–767 of the key.
				if b := int(bit) % 768; b < 512 {
					sig = flip(sig, b)
				} else {
					pub = flip(pub, b-512)
				}
			}
		}
		want := ed25519.Verify(pub, msg, sig)
		for range 2 {
			if got := verifyEd25519(pub, msg, sig); got != want {
				t.Fatalf("verifyEd25519(%x, %x, %x) = %v, ed25519.Verify = %v", pub, msg, sig, got, want)
			}
		}
		// And with the key's table of multiples, which only keys used
		// many times get.
		if k, err := newEd25519Key(pub); err == nil {
			if got := verifyWith(k, newKeyTable(&k.negA), msg, sig); got != want {
				t.Fatalf("verifyWith(%x, table, %x, %x) = %v, ed25519.Verify = %v", pub, msg, sig, got, want)
			}
		}
	})
}

func BenchmarkVerifyEd25519(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := bytes.Repeat([]byte{1}, 300)
	sig := ed25519.Sign(priv, msg)
	b.Run("crypto/ed25519", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("cached key", func(b *testing.B) {
		for b.Loop() {
			if !verifyEd25519(pub, msg, sig) {
				b.Fatal("does not verify")
			}
		}
	})
}
