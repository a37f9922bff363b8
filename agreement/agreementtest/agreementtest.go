// Package agreementtest builds valid agreements for tests, together with
// every private key behind them: party CAs, signing keys, checkpoint keys
// and mediator cosigning keys. All key material is generated when the test
// runs; nothing is committed.
package agreementtest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/keys"
)

// EffectiveFrom is the start of fixture agreements and of their first keys.
var EffectiveFrom = time.Date(2020, time.January, 1, 0, 0, 0, 0, time.UTC)

// partyIDs are the ids given to the first parties; later ones are partyN.
var partyIDs = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}

// Fixture is a valid agreement with the private material of its parties and
// mediators. Change Agreement freely before calling Bytes or File.
type Fixture struct {
	Agreement *agreement.Agreement
	Parties   []*Party
	Mediators []*Mediator
}

// Party holds the private material of one party. Keys[i] is the private
// half of Agreement.Parties[n].Keys[i].
type Party struct {
	ID    string
	CA    *x509.Certificate
	CAKey crypto.Signer
	Keys  []SigningKey
	// CheckpointKey is the note signer key ("PRIVATE+KEY+...") of the
	// party's log; CheckpointSigner is a signer built from it.
	CheckpointKey    string
	CheckpointSigner note.Signer
}

// SigningKey is one evidence signing key of a party.
type SigningKey struct {
	ID      string
	Private crypto.Signer
	Signer  signature.Signer
}

// Mediator holds the private material of one mediator.
type Mediator struct {
	ID    string
	CA    *x509.Certificate
	CAKey crypto.Signer
	// CosigningKey is the note signer key ("PRIVATE+KEY+...") of the
	// mediator's witness; Cosigner is a signer built from it.
	CosigningKey string
	Cosigner     note.Signer
}

// New returns a fixture with the given number of parties (ids alpha, bravo,
// charlie, ...) and mediators (ids mediator1, mediator2, ...). Party i signs
// with Ed25519 when i is even and ECDSA P-256 when i is odd, so tests cover
// both algorithms. The witness quorum is 1 when there are mediators.
func New(tb testing.TB, parties, mediators int) *Fixture {
	tb.Helper()
	f := &Fixture{Agreement: &agreement.Agreement{
		ID:            "parley-test",
		Title:         "Parley test agreement",
		EffectiveFrom: EffectiveFrom,
	}}
	for i := range parties {
		id := fmt.Sprintf("party%d", i+1)
		if i < len(partyIDs) {
			id = partyIDs[i]
		}
		alg := keys.Ed25519
		if i%2 == 1 {
			alg = keys.ECDSAP256
		}
		caCert, caKey, caPEM := newCA(tb, id)
		origin := "parley.test/" + id
		skey, vkey, err := note.GenerateKey(rand.Reader, origin)
		if err != nil {
			tb.Fatalf("couldn't generate checkpoint key: %v", err)
		}
		cs, err := note.NewSigner(skey)
		if err != nil {
			tb.Fatalf("couldn't load checkpoint key: %v", err)
		}
		sk, key := newKey(tb, alg, EffectiveFrom)
		f.Parties = append(f.Parties, &Party{
			ID: id, CA: caCert, CAKey: caKey, Keys: []SigningKey{sk},
			CheckpointKey: skey, CheckpointSigner: cs,
		})
		f.Agreement.Parties = append(f.Agreement.Parties, agreement.Party{
			ID:            id,
			Name:          strings.ToUpper(id[:1]) + id[1:],
			CA:            caPEM,
			Endpoints:     []string{id + ".parley.test:8443"},
			TileEndpoint:  "https://" + id + ".parley.test:8444/",
			Keys:          []agreement.Key{key},
			LogOrigin:     origin,
			CheckpointKey: vkey,
			Territory:     []string{strings.ToUpper(id[:1]) + id[1:] + "land"},
		})
	}
	for i := range mediators {
		id := fmt.Sprintf("mediator%d", i+1)
		caCert, caKey, caPEM := newCA(tb, id)
		skey, vkey, err := note.GenerateKey(rand.Reader, id+".parley.test")
		if err != nil {
			tb.Fatalf("couldn't generate cosigning key: %v", err)
		}
		cs, err := note.NewSigner(skey)
		if err != nil {
			tb.Fatalf("couldn't load cosigning key: %v", err)
		}
		f.Mediators = append(f.Mediators, &Mediator{ID: id, CA: caCert, CAKey: caKey, CosigningKey: skey, Cosigner: cs})
		f.Agreement.Mediators = append(f.Agreement.Mediators, agreement.Mediator{
			ID:              id,
			Name:            "Mediator " + fmt.Sprint(i+1),
			CA:              caPEM,
			WitnessEndpoint: "https://" + id + ".parley.test:8445/",
			CosigningKey:    vkey,
		})
	}
	if mediators > 0 {
		f.Agreement.WitnessQuorum = 1
	}
	return f
}

// Party returns the private material of the party with the given id.
func (f *Fixture) Party(tb testing.TB, id string) *Party {
	tb.Helper()
	for _, p := range f.Parties {
		if p.ID == id {
			return p
		}
	}
	tb.Fatalf("no party %q in the fixture", id)
	return nil
}

// Signer returns the signer of the party's newest key.
func (p *Party) Signer() signature.Signer {
	return p.Keys[len(p.Keys)-1].Signer
}

// RotateKey ends the validity of the party's newest key at `at` and adds a
// new key of algorithm alg valid from `at`, open-ended. It returns the new
// key.
func (f *Fixture) RotateKey(tb testing.TB, party string, at time.Time, alg keys.Algorithm) SigningKey {
	tb.Helper()
	p := f.Party(tb, party)
	ap, ok := f.Agreement.Party(party)
	if !ok {
		tb.Fatalf("no party %q in the fixture agreement", party)
	}
	ap.Keys[len(ap.Keys)-1].NotAfter = at
	sk, key := newKey(tb, alg, at)
	ap.Keys = append(ap.Keys, key)
	p.Keys = append(p.Keys, sk)
	return sk
}

// Bytes returns the unsigned agreement file made by agreement.Create.
func (f *Fixture) Bytes(tb testing.TB) []byte {
	tb.Helper()
	data, err := agreement.Create(f.Agreement)
	if err != nil {
		tb.Fatalf("couldn't create agreement: %v", err)
	}
	return data
}

// File returns the parsed agreement signed by the named parties (with their
// newest keys), in that order. With no names it is unsigned.
func (f *Fixture) File(tb testing.TB, signers ...string) *agreement.File {
	tb.Helper()
	file, err := agreement.Parse(f.Bytes(tb))
	if err != nil {
		tb.Fatalf("couldn't parse agreement: %v", err)
	}
	for _, id := range signers {
		if err := file.Sign(context.Background(), id, f.Party(tb, id).Signer()); err != nil {
			tb.Fatalf("couldn't sign agreement as %s: %v", id, err)
		}
	}
	return file
}

// SignedFile returns the parsed agreement signed by every party.
func (f *Fixture) SignedFile(tb testing.TB) *agreement.File {
	tb.Helper()
	ids := make([]string, len(f.Parties))
	for i, p := range f.Parties {
		ids[i] = p.ID
	}
	return f.File(tb, ids...)
}

// newKey generates a signing key valid from notBefore, open-ended.
func newKey(tb testing.TB, alg keys.Algorithm, notBefore time.Time) (SigningKey, agreement.Key) {
	tb.Helper()
	priv, err := keys.Generate(alg)
	if err != nil {
		tb.Fatalf("couldn't generate key: %v", err)
	}
	signer, err := keys.NewSigner(priv)
	if err != nil {
		tb.Fatalf("couldn't load signer: %v", err)
	}
	id, err := keys.KeyID(priv.Public())
	if err != nil {
		tb.Fatalf("couldn't compute key id: %v", err)
	}
	pub, err := keys.MarshalPublicPEM(priv.Public())
	if err != nil {
		tb.Fatalf("couldn't encode public key: %v", err)
	}
	return SigningKey{ID: id, Private: priv, Signer: signer},
		agreement.Key{ID: id, PublicKey: string(pub), NotBefore: notBefore}
}

// newCA makes a self-signed ECDSA P-256 CA certificate for the trust
// domain id, name-constrained to spiffe://id URIs, valid for a day.
func newCA(tb testing.TB, id string) (*x509.Certificate, crypto.Signer, string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("couldn't generate CA key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatalf("couldn't generate serial: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: id + " test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		PermittedURIDomains:   []string{id},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatalf("couldn't create CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("couldn't parse CA certificate: %v", err)
	}
	return cert, key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
