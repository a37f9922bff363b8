package agreement_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/agreement/agreementtest"
	"github.com/parley-dev/parley/keys"
)

func TestSignVerify(t *testing.T) {
	f := agreementtest.New(t, 3, 1)
	for _, tt := range []struct {
		name    string
		signers []string
		signed  []string
		missing []string
	}{
		{"unsigned", nil, nil, []string{"alpha", "bravo", "charlie"}},
		{"one party", []string{"bravo"}, []string{"bravo"}, []string{"alpha", "charlie"}},
		{"two parties", []string{"charlie", "alpha"}, []string{"alpha", "charlie"}, []string{"bravo"}},
		{"all parties", []string{"alpha", "bravo", "charlie"}, []string{"alpha", "bravo", "charlie"}, nil},
		{"re-signed", []string{"alpha", "bravo", "alpha", "charlie"}, []string{"alpha", "bravo", "charlie"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := f.File(t, tt.signers...)
			// Through the file format and back.
			parsed, err := agreement.Parse(file.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(parsed.Unsigned, file.Unsigned) {
				t.Errorf("got signed text changed by Marshal and Parse, want it unchanged")
			}
			for _, file := range []*agreement.File{file, parsed} {
				st, err := file.Verify()
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(st.Signed, tt.signed) || !reflect.DeepEqual(st.Missing, tt.missing) || len(st.Bad) != 0 {
					t.Errorf("got status %+v, want signed %v, missing %v, no bad", st, tt.signed, tt.missing)
				}
				err = file.RequireAllSigned()
				if len(tt.missing) == 0 {
					if err != nil {
						t.Errorf("got %v, want nil", err)
					}
					continue
				}
				if !errors.Is(err, agreement.ErrNotSigned) {
					t.Errorf("got %v, want ErrNotSigned", err)
				}
				if want := "missing signatures of " + strings.Join(tt.missing, ", "); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("got %v, want it to contain %q", err, want)
				}
			}
			if got := len(parsed.Signatures); got != len(tt.signed) {
				t.Errorf("got %d signatures in the file, want %d", got, len(tt.signed))
			}
		})
	}
}

func TestVerifyTampered(t *testing.T) {
	f := agreementtest.New(t, 3, 0)
	signed := f.SignedFile(t).Marshal()
	for _, tt := range []struct {
		name   string
		tamper func(data []byte) []byte
		bad    []string
	}{
		{"one byte of the title", func(d []byte) []byte {
			return bytes.Replace(d, []byte("title: Parley test agreement"), []byte("title: Parley test agreemenT"), 1)
		}, []string{"alpha", "bravo", "charlie"}},
		{"a rule parameter", func(d []byte) []byte {
			return bytes.Replace(d, []byte("lead_time_days: 42"), []byte("lead_time_days: 41"), 1)
		}, []string{"alpha", "bravo", "charlie"}},
		{"a comment", func(d []byte) []byte { return append([]byte("# reviewed\n"), d...) }, []string{"alpha", "bravo", "charlie"}},
		{"trailing space before the separator", func(d []byte) []byte {
			return bytes.Replace(d, []byte("\n"+agreement.Separator), []byte(" \n"+agreement.Separator), 1)
		}, []string{"alpha", "bravo", "charlie"}},
		{"a signature byte", func(d []byte) []byte {
			file, err := agreement.Parse(d)
			if err != nil {
				t.Fatal(err)
			}
			file.Signatures[1].Sig[5] ^= 1
			return file.Marshal()
		}, []string{"bravo"}},
		{"signatures swapped", func(d []byte) []byte {
			file, err := agreement.Parse(d)
			if err != nil {
				t.Fatal(err)
			}
			file.Signatures[0].Sig, file.Signatures[2].Sig = file.Signatures[2].Sig, file.Signatures[0].Sig
			return file.Marshal()
		}, []string{"alpha", "charlie"}},
		{"key id of another party", func(d []byte) []byte {
			file, err := agreement.Parse(d)
			if err != nil {
				t.Fatal(err)
			}
			file.Signatures[0].KeyID = file.Signatures[1].KeyID
			return file.Marshal()
		}, []string{"alpha"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file, err := agreement.Parse(tt.tamper(bytes.Clone(signed)))
			if err != nil {
				t.Fatal(err)
			}
			st, err := file.Verify()
			if err != nil {
				t.Fatal(err)
			}
			var bad []string
			for _, b := range st.Bad {
				bad = append(bad, b.Party)
				if b.Err == nil {
					t.Errorf("got bad signature of %s without a reason", b.Party)
				}
			}
			if !reflect.DeepEqual(bad, tt.bad) {
				t.Errorf("got bad signatures of %v, want %v", bad, tt.bad)
			}
			if got, want := len(st.Signed), 3-len(tt.bad); got != want {
				t.Errorf("got %d good signatures, want %d", got, want)
			}
			err = file.RequireAllSigned()
			if !errors.Is(err, agreement.ErrNotSigned) || !strings.Contains(err.Error(), "bad signatures: party "+tt.bad[0]) {
				t.Errorf("got %v, want ErrNotSigned naming %s", err, tt.bad[0])
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	f := agreementtest.New(t, 2, 0)
	other, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, err := keys.NewSigner(other)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		party string
		key   func() signature.Signer
		want  string
	}{
		{"unknown party", "zulu", func() signature.Signer { return f.Party(t, "alpha").Signer() }, `"zulu" is not a party to agreement "parley-test"`},
		{"key of another party", "bravo", func() signature.Signer { return f.Party(t, "alpha").Signer() }, "is not listed for party \"bravo\""},
		{"unlisted key", "alpha", func() signature.Signer { return otherSigner }, "is not listed for party \"alpha\""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := f.File(t)
			err := file.Sign(context.Background(), tt.party, tt.key())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want it to contain %q", err, tt.want)
			}
			if len(file.Signatures) != 0 {
				t.Errorf("got %d signatures after a failed Sign, want 0", len(file.Signatures))
			}
		})
	}
}

func TestRotationSignatures(t *testing.T) {
	f := agreementtest.New(t, 2, 0)
	old := f.Party(t, "alpha").Keys[0]
	f.RotateKey(t, "alpha", time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), keys.ECDSAP256)
	for _, tt := range []struct {
		name string
		key  func() signature.Signer
	}{
		{"expired key", func() signature.Signer { return old.Signer }},
		{"new key", func() signature.Signer { return f.Party(t, "alpha").Signer() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := f.File(t, "bravo")
			if err := file.Sign(context.Background(), "alpha", tt.key()); err != nil {
				t.Fatal(err)
			}
			parsed, err := agreement.Parse(file.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if err := parsed.RequireAllSigned(); err != nil {
				t.Errorf("got %v, want a signature with any listed key to count", err)
			}
		})
	}
}

func TestSeparator(t *testing.T) {
	f := agreementtest.New(t, 2, 0)
	unsigned := f.Bytes(t)
	signed := f.SignedFile(t).Marshal()
	sigDoc := signed[len(unsigned)+len(agreement.Separator)+1:]
	for _, tt := range []struct {
		name     string
		data     []byte
		wantSigs int
		wantErr  string
	}{
		{"no separator", unsigned, 0, ""},
		{"separator at the end without a line break", append(bytes.Clone(unsigned), agreement.Separator...), 0, ""},
		{"empty signatures document", append(bytes.Clone(unsigned), agreement.Separator+"\n"...), 0, ""},
		{"empty signature list", append(bytes.Clone(unsigned), agreement.Separator+"\nsignatures: []\n"...), 0, ""},
		{"signed", signed, 2, ""},
		{"trailing space", append(append(bytes.Clone(unsigned), agreement.Separator+" \n"...), sigDoc...), 0, "a second YAML document starts at line"},
		{"indented", append(append(bytes.Clone(unsigned), " "+agreement.Separator+"\n"...), sigDoc...), 0, "couldn't decode agreement"},
		{"CRLF", append(append(bytes.Clone(unsigned), agreement.Separator+"\r\n"...), sigDoc...), 0, "a second YAML document starts at line"},
		{"only a separator", []byte(agreement.Separator + "\n"), 0, "agreement is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file, err := agreement.Parse(tt.data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(file.Signatures); got != tt.wantSigs {
				t.Errorf("got %d signatures, want %d", got, tt.wantSigs)
			}
			if !bytes.Equal(file.Unsigned, unsigned) {
				t.Errorf("got signed text %q, want the bytes before the separator", file.Unsigned)
			}
		})
	}
}

func TestSignTextWithoutFinalLineBreak(t *testing.T) {
	f := agreementtest.New(t, 2, 0)
	text := bytes.TrimSuffix(f.Bytes(t), []byte("\n"))
	file, err := agreement.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"alpha", "bravo"} {
		if err := file.Sign(context.Background(), id, f.Party(t, id).Signer()); err != nil {
			t.Fatal(err)
		}
	}
	parsed, err := agreement.Parse(file.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := parsed.RequireAllSigned(); err != nil {
		t.Errorf("got %v, want a fully signed agreement", err)
	}
	if want := append(bytes.Clone(text), '\n'); !bytes.Equal(parsed.Unsigned, want) {
		t.Errorf("got signed text %q, want the text with a final line break", parsed.Unsigned)
	}
}

func TestParseSignatureErrors(t *testing.T) {
	f := agreementtest.New(t, 2, 0)
	file := f.SignedFile(t)
	head := append(bytes.Clone(file.Unsigned), agreement.Separator+"\n"...)
	alpha := file.Signatures[0]
	sig := base64.StdEncoding.EncodeToString(alpha.Sig)
	entry := func(party, keyID, sig string) string {
		return "  - party: " + party + "\n    keyid: " + keyID + "\n    sig: " + sig + "\n"
	}
	for _, tt := range []struct{ name, doc, want string }{
		{"unknown party", "signatures:\n" + entry("zulu", alpha.KeyID, sig), `signatures[0].party: "zulu" is not a party to agreement "parley-test"`},
		{"two signatures of a party", "signatures:\n" + entry("alpha", alpha.KeyID, sig) + entry("alpha", alpha.KeyID, sig), `signatures[1].party: second signature of party "alpha", after signatures[0]`},
		{"bad key id", "signatures:\n" + entry("alpha", "abc", sig), `signatures[0].keyid: "abc" is not a key id`},
		{"bad base64", "signatures:\n" + entry("alpha", alpha.KeyID, "not*base64"), "signatures[0].sig: not valid base64"},
		{"empty sig", "signatures:\n" + entry("alpha", alpha.KeyID, `""`), "signatures[0].sig: missing"},
		{"unknown field", "signatures:\n" + entry("alpha", alpha.KeyID, sig) + "    comment: hi\n", "field comment not found"},
		{"unknown top-level field", "sigs: []\n", "field sigs not found"},
		{"second document", "signatures: []\n---\nsignatures: []\n", "more than one YAML document after the separator"},
		{"not YAML", "signatures: [\n", "couldn't decode signatures"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := agreement.Parse(append(bytes.Clone(head), tt.doc...))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// ed25519Verifier adapts crypto/ed25519 to the DSSE library's Verifier.
type ed25519Verifier struct {
	id  string
	pub ed25519.PublicKey
}

func (v ed25519Verifier) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(v.pub, data, sig) {
		return errors.New("ed25519: invalid signature")
	}
	return nil
}
func (v ed25519Verifier) KeyID() (string, error)   { return v.id, nil }
func (v ed25519Verifier) Public() crypto.PublicKey { return v.pub }

// ecdsaVerifier adapts crypto/ecdsa (SHA-256, ASN.1) to the DSSE Verifier.
type ecdsaVerifier struct {
	id  string
	pub *ecdsa.PublicKey
}

func (v ecdsaVerifier) Verify(_ context.Context, data, sig []byte) error {
	h := sha256.Sum256(data)
	if !ecdsa.VerifyASN1(v.pub, h[:], sig) {
		return errors.New("ecdsa: invalid signature")
	}
	return nil
}
func (v ecdsaVerifier) KeyID() (string, error)   { return v.id, nil }
func (v ecdsaVerifier) Public() crypto.PublicKey { return v.pub }

// ed25519Signer adapts crypto/ed25519 to the DSSE library's Signer.
type ed25519Signer struct {
	id   string
	priv ed25519.PrivateKey
}

func (s ed25519Signer) Sign(_ context.Context, data []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, data), nil
}
func (s ed25519Signer) KeyID() (string, error) { return s.id, nil }

// TestDSSEInterop checks agreement signatures against an independent DSSE
// implementation, in both directions.
func TestDSSEInterop(t *testing.T) {
	f := agreementtest.New(t, 2, 0) // alpha: Ed25519, bravo: ECDSA P-256
	file, err := agreement.Parse(f.SignedFile(t).Marshal())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, s := range file.Signatures {
		t.Run("verify "+s.Party, func(t *testing.T) {
			priv := f.Party(t, s.Party).Keys[0].Private
			var v dsse.Verifier
			switch pub := priv.Public().(type) {
			case ed25519.PublicKey:
				v = ed25519Verifier{id: s.KeyID, pub: pub}
			case *ecdsa.PublicKey:
				v = ecdsaVerifier{id: s.KeyID, pub: pub}
			}
			env := &dsse.Envelope{
				PayloadType: agreement.PayloadType,
				Payload:     base64.StdEncoding.EncodeToString(file.Unsigned),
				Signatures:  []dsse.Signature{{KeyID: s.KeyID, Sig: base64.StdEncoding.EncodeToString(s.Sig)}},
			}
			ev, err := dsse.NewEnvelopeVerifier(v)
			if err != nil {
				t.Fatal(err)
			}
			accepted, err := ev.Verify(ctx, env)
			if err != nil {
				t.Fatalf("got error %v from the DSSE library, want the signature accepted", err)
			}
			if len(accepted) != 1 || accepted[0].KeyID != s.KeyID {
				t.Errorf("got accepted keys %+v, want %s", accepted, s.KeyID)
			}
			// And the library rejects it over other bytes.
			env.Payload = base64.StdEncoding.EncodeToString(append(bytes.Clone(file.Unsigned), ' '))
			if _, err := ev.Verify(ctx, env); err == nil {
				t.Errorf("got a signature accepted over changed bytes, want it rejected")
			}
		})
	}

	t.Run("sign with the DSSE library", func(t *testing.T) {
		alpha := f.Party(t, "alpha").Keys[0]
		es, err := dsse.NewEnvelopeSigner(ed25519Signer{id: alpha.ID, priv: alpha.Private.(ed25519.PrivateKey)})
		if err != nil {
			t.Fatal(err)
		}
		env, err := es.SignPayload(ctx, agreement.PayloadType, file.Unsigned)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
		if err != nil {
			t.Fatal(err)
		}
		other, err := agreement.Parse(file.Unsigned)
		if err != nil {
			t.Fatal(err)
		}
		other.Signatures = []agreement.Signature{{Party: "alpha", KeyID: env.Signatures[0].KeyID, Sig: sig}}
		st, err := other.Verify()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(st.Signed, []string{"alpha"}) || len(st.Bad) != 0 {
			t.Errorf("got status %+v, want alpha's DSSE library signature accepted", st)
		}
	})
}

func TestPAE(t *testing.T) {
	for _, tt := range []struct {
		name, typ string
		body      []byte
	}{
		{"empty", "", nil},
		{"agreement", agreement.PayloadType, []byte("id: x\n")},
		{"spec example", "http://example.com/HelloWorld", []byte("hello world")},
		{"binary", "t", []byte{0, 1, 2, 0xff, ' ', '\n'}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := agreement.PAE(tt.typ, tt.body), dsse.PAE(tt.typ, tt.body); !bytes.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
	if got, want := string(agreement.PAE("http://example.com/HelloWorld", []byte("hello world"))),
		"DSSEv1 29 http://example.com/HelloWorld 11 hello world"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
