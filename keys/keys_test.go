package keys_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/kms/fake"

	"github.com/parley-dev/parley/keys"
)

var algorithms = []keys.Algorithm{keys.Ed25519, keys.ECDSAP256}

func TestGenerate(t *testing.T) {
	for _, tt := range []struct {
		name string
		alg  keys.Algorithm
		want keys.Algorithm
	}{
		{name: "default", alg: "", want: keys.Ed25519},
		{name: "ed25519", alg: keys.Ed25519, want: keys.Ed25519},
		{name: "ecdsa-p256", alg: keys.ECDSAP256, want: keys.ECDSAP256},
	} {
		t.Run(tt.name, func(t *testing.T) {
			priv, err := keys.Generate(tt.alg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := keys.AlgorithmOf(priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got algorithm %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	for _, alg := range []keys.Algorithm{"rsa", "ecdsa-p384", "Ed25519"} {
		t.Run(string(alg), func(t *testing.T) {
			if _, err := keys.Generate(alg); err == nil || !strings.Contains(err.Error(), "unsupported key algorithm") {
				t.Errorf("got error %v, want unsupported key algorithm", err)
			}
		})
	}
}

func TestKeyID(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			priv, err := keys.Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			der, err := x509.MarshalPKIXPublicKey(priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(der)
			want := hex.EncodeToString(sum[:])
			got, err := keys.KeyID(priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("got key id %s, want %s", got, want)
			}
			// Stable through a PEM round trip.
			p, err := keys.MarshalPublicPEM(priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			pub, err := keys.ParsePublicPEM(p)
			if err != nil {
				t.Fatal(err)
			}
			if got2, _ := keys.KeyID(pub); got2 != want {
				t.Errorf("got key id %s after PEM round trip, want %s", got2, want)
			}
		})
	}
}

func TestPrivatePEMRoundTrip(t *testing.T) {
	for _, alg := range algorithms {
		for _, pass := range []string{"", "correct horse"} {
			name := string(alg) + "/plain"
			if pass != "" {
				name = string(alg) + "/encrypted"
			}
			t.Run(name, func(t *testing.T) {
				priv, err := keys.Generate(alg)
				if err != nil {
					t.Fatal(err)
				}
				data, err := keys.MarshalPrivatePEM(priv, []byte(pass))
				if err != nil {
					t.Fatal(err)
				}
				block, _ := pem.Decode(data)
				wantType := "PRIVATE KEY"
				if pass != "" {
					wantType = "ENCRYPTED SIGSTORE PRIVATE KEY"
				}
				if block == nil || block.Type != wantType {
					t.Fatalf("got PEM %q, want a %s block", data, wantType)
				}
				calls := 0
				got, err := keys.ParsePrivatePEM(data, func() ([]byte, error) {
					calls++
					return []byte(pass), nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if wantCalls := map[bool]int{true: 1, false: 0}[pass != ""]; calls != wantCalls {
					t.Errorf("got %d passphrase calls, want %d", calls, wantCalls)
				}
				if !got.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(priv.Public()) {
					t.Errorf("got a different key after round trip")
				}
			})
		}
	}
}

func TestEncryptedPEMErrors(t *testing.T) {
	priv, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	data, err := keys.MarshalPrivatePEM(priv, []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		passFunc func() ([]byte, error)
		want     string
	}{
		{name: "wrong passphrase", passFunc: static("wrong"), want: "couldn't decrypt private key (wrong passphrase?)"},
		{name: "no passFunc", passFunc: nil, want: "a passphrase is required"},
		{name: "empty passphrase", passFunc: static(""), want: "a passphrase is required"},
		{name: "passFunc error", passFunc: func() ([]byte, error) { return nil, errors.New("no tty") }, want: "couldn't read passphrase: no tty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keys.ParsePrivatePEM(data, tt.passFunc)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := keys.ParsePrivatePEM(data, nil); !errors.Is(err, keys.ErrPassphraseRequired) {
		t.Errorf("got error %v, want ErrPassphraseRequired", err)
	}
}

func static(s string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(s), nil }
}

// otherKeys returns private keys of algorithms Parley refuses.
func otherKeys(t testing.TB) map[string]crypto.Signer {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{"RSA": rsaKey, "P-384": p384}
}

func TestRejectedAlgorithms(t *testing.T) {
	for name, priv := range otherKeys(t) {
		t.Run(name, func(t *testing.T) {
			pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
			privDER, err := x509.MarshalPKCS8PrivateKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})

			checks := map[string]func() error{
				"ParsePublicPEM":    func() error { _, err := keys.ParsePublicPEM(pubPEM); return err },
				"ParsePrivatePEM":   func() error { _, err := keys.ParsePrivatePEM(privPEM, nil); return err },
				"MarshalPublicPEM":  func() error { _, err := keys.MarshalPublicPEM(priv.Public()); return err },
				"MarshalPrivatePEM": func() error { _, err := keys.MarshalPrivatePEM(priv, nil); return err },
				"KeyID":             func() error { _, err := keys.KeyID(priv.Public()); return err },
				"LoadVerifier":      func() error { _, err := keys.LoadVerifier(priv.Public()); return err },
				"NewSigner":         func() error { _, err := keys.NewSigner(priv); return err },
			}
			for fn, check := range checks {
				err := check()
				if err == nil || !strings.Contains(err.Error(), name) {
					t.Errorf("%s: got error %v, want one naming %s", fn, err, name)
				}
			}
		})
	}
}

func TestParsePublicPEMErrors(t *testing.T) {
	priv, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	good, err := keys.MarshalPublicPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{name: "empty", data: nil, want: "no PEM block found"},
		{name: "garbage", data: []byte("hello"), want: "no PEM block found"},
		{name: "wrong type", data: bytes.Replace(good, []byte("PUBLIC KEY"), []byte("CERTIFICATE"), 2), want: `unsupported PEM block "CERTIFICATE"`},
		{name: "two keys", data: append(append([]byte{}, good...), good...), want: "want exactly one key"},
		{name: "bad DER", data: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), want: "couldn't parse public key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keys.ParsePublicPEM(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	msg := []byte("notification of a military activity")
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			priv, err := keys.Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			s, err := keys.NewSigner(priv)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.SignMessage(bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			v, err := keys.LoadVerifier(priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err != nil {
				t.Errorf("got error %v verifying a good signature, want nil", err)
			}
			if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(append(msg, '!'))); err == nil {
				t.Errorf("got nil error verifying a signature over other bytes, want an error")
			}
			// Cross-check with the standard library.
			switch pub := priv.Public().(type) {
			case ed25519.PublicKey:
				if !ed25519.Verify(pub, msg, sig) {
					t.Errorf("crypto/ed25519 rejects the signature")
				}
			case *ecdsa.PublicKey:
				h := sha256.Sum256(msg)
				if !ecdsa.VerifyASN1(pub, h[:], sig) {
					t.Errorf("crypto/ecdsa rejects the signature")
				}
			}
		})
	}
}

func TestLoadSignerFromFile(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range algorithms {
		for _, pass := range []string{"", "s3cret"} {
			name := string(alg) + "/" + map[bool]string{true: "encrypted", false: "plain"}[pass != ""]
			t.Run(name, func(t *testing.T) {
				priv, err := keys.Generate(alg)
				if err != nil {
					t.Fatal(err)
				}
				data, err := keys.MarshalPrivatePEM(priv, []byte(pass))
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, strings.ReplaceAll(name, "/", "-")+".pem")
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
				s, err := keys.LoadSigner(context.Background(), path, static(pass))
				if err != nil {
					t.Fatal(err)
				}
				pub, err := s.PublicKey()
				if err != nil {
					t.Fatal(err)
				}
				if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(priv.Public()) {
					t.Errorf("got a signer for another key")
				}
				if pass != "" {
					if _, err := keys.LoadSigner(context.Background(), path, static("wrong")); err == nil {
						t.Errorf("got nil error with a wrong passphrase, want an error")
					}
				}
			})
		}
	}
	if _, err := keys.LoadSigner(context.Background(), filepath.Join(dir, "missing.pem"), nil); err == nil || !strings.Contains(err.Error(), "couldn't read signing key") {
		t.Errorf("got error %v for a missing file, want couldn't read signing key", err)
	}
}

// TestLoadSignerRefusesPlugins puts sigstore KMS plugin programs on $PATH
// that would leave a mark if run, and checks that no reference runs them.
func TestLoadSignerRefusesPlugins(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "ran")
	for _, scheme := range []string{"pkcs11", "foo", "awskms", "gcpkms", "azurekms"} {
		script := "#!/bin/sh\necho " + scheme + " >> " + mark + "\nexit 1\n"
		if err := os.WriteFile(filepath.Join(dir, "sigstore-kms-"+scheme), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)

	for _, tt := range []struct {
		ref  string
		want string
	}{
		{ref: "pkcs11://x", want: `key reference scheme "pkcs11" is not allowed`},
		{ref: "foo://x", want: `key reference scheme "foo" is not allowed`},
		{ref: "fakekms://x", want: `key reference scheme "fakekms" is not allowed`},
		{ref: "awskms:///arn:aws:kms:eu-west-1:1:key/x", want: "KMS provider for awskms:// keys is not compiled into this binary"},
		{ref: "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k", want: "KMS provider for gcpkms:// keys is not compiled into this binary"},
		{ref: "azurekms://vault.example/key", want: "KMS provider for azurekms:// keys is not compiled into this binary"},
	} {
		t.Run(tt.ref, func(t *testing.T) {
			_, err := keys.LoadSigner(context.Background(), tt.ref, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want %q", err, tt.want)
			}
		})
	}
	if ran, err := os.ReadFile(mark); err == nil {
		t.Errorf("got plugin programs run: %q, want none", ran)
	}

	// Control: sigstore's kms.Get on its own does run the plugin, so the
	// trap above would have caught it.
	sv, err := kms.Get(context.Background(), "foo://x", crypto.SHA256)
	if err != nil {
		t.Fatalf("control: got error %v from kms.Get, want a plugin client", err)
	}
	_, _ = sv.PublicKey()
	if ran, _ := os.ReadFile(mark); string(ran) != "foo\n" {
		t.Errorf("control: got plugin marks %q, want %q", ran, "foo\n")
	}
}

// TestLoadSignerKMS registers a provider for one allowed scheme, as linking
// a real provider module would.
func TestLoadSignerKMS(t *testing.T) {
	priv, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	kms.AddProvider("hashivault://", func(ctx context.Context, _ string, hf crypto.Hash, _ ...signature.RPCOption) (kms.SignerVerifier, error) {
		return fake.LoadSignerVerifier(context.WithValue(ctx, fake.KmsCtxKey{}, crypto.PrivateKey(priv)), hf)
	})
	s, err := keys.LoadSigner(context.Background(), "hashivault://parley", nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello")
	sig, err := s.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	v, err := keys.LoadVerifier(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err != nil {
		t.Errorf("got error %v verifying a KMS signature, want nil", err)
	}
}

func TestParseAlgorithm(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want keys.Algorithm
		err  bool
	}{
		{in: "", want: keys.Ed25519},
		{in: "ed25519", want: keys.Ed25519},
		{in: "ecdsa-p256", want: keys.ECDSAP256},
		{in: "rsa", err: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := keys.ParseAlgorithm(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("got error %v, want error %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKMSSchemes(t *testing.T) {
	got := keys.KMSSchemes()
	want := []string{"awskms://", "gcpkms://", "azurekms://", "hashivault://"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	got[0] = "pkcs11://"
	if keys.KMSSchemes()[0] != "awskms://" {
		t.Errorf("got the allow-list changed through the returned slice, want a copy")
	}
}
