package keys_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/parley-dev/parley/keys"
)

// FuzzParsePublicPEM checks that ParsePublicPEM, which reads the parties'
// signing keys out of the agreement, never panics and accepts only one
// PUBLIC KEY block with nothing but white space around it, holding a key of
// an allowed algorithm, which encodes back to a PEM that parses to the same
// key with the same key id.
func FuzzParsePublicPEM(f *testing.F) {
	for _, alg := range []keys.Algorithm{keys.Ed25519, keys.ECDSAP256} {
		priv, err := keys.Generate(alg)
		if err != nil {
			f.Fatal(err)
		}
		b, err := keys.MarshalPublicPEM(priv.Public())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append(append([]byte("\n  "), b...), b...))
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		f.Fatal(err)
	}
	for _, pub := range []any{p384.Public(), rsaKey.Public()} {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pub, err := keys.ParsePublicPEM(data)
		if err != nil {
			if pub != nil {
				t.Fatalf("got key %v with error %v", pub, err)
			}
			return
		}
		if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN PUBLIC KEY-----")) || bytes.Count(data, []byte("-----BEGIN")) != 1 {
			t.Fatalf("accepted %q, which is not one PUBLIC KEY block and white space", data)
		}
		if _, err := keys.AlgorithmOf(pub); err != nil {
			t.Fatalf("accepted a key of a refused algorithm: %v", err)
		}
		id, err := keys.KeyID(pub)
		if err != nil {
			t.Fatalf("got no key id for an accepted key: %v", err)
		}
		out, err := keys.MarshalPublicPEM(pub)
		if err != nil {
			t.Fatalf("couldn't encode an accepted key: %v", err)
		}
		again, err := keys.ParsePublicPEM(out)
		if err != nil {
			t.Fatalf("got error %v parsing the re-encoded key, want it accepted", err)
		}
		if id2, _ := keys.KeyID(again); id2 != id {
			t.Fatalf("got key id %s after a round trip, want %s", id2, id)
		}
		type equaler interface{ Equal(x crypto.PublicKey) bool }
		if e, ok := pub.(equaler); !ok || !e.Equal(again) {
			t.Fatalf("got key %v after a round trip, want %v", again, pub)
		}
	})
}
