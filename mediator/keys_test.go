package mediator

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"
)

func TestGenerateCosigningKey(t *testing.T) {
	const name = "parley.example/mediator/un"
	skey, vkey, err := GenerateCosigningKey(name)
	if err != nil {
		t.Fatal(err)
	}

	// The verifier key is a signed-note vkey of type 0x04 whose key ID is
	// SHA-256(name || "\n" || 0x04 || public key)[:4]
	// (c2sp.org/tlog-cosignature, Format).
	fields := strings.SplitN(vkey, "+", 3)
	if len(fields) != 3 || fields[0] != name {
		t.Fatalf("got vkey %q, want %s+<key id>+<key>", vkey, name)
	}
	pub, err := base64.StdEncoding.DecodeString(fields[2])
	if err != nil || len(pub) != 33 || pub[0] != 0x04 {
		t.Fatalf("got vkey key material %x (%v), want 0x04 and 32 bytes", pub, err)
	}
	sum := sha256.Sum256(append([]byte(name+"\n"), pub...))
	if got, want := fields[1], fmt.Sprintf("%08x", binary.BigEndian.Uint32(sum[:])); got != want {
		t.Errorf("got key id %s, want %s", got, want)
	}

	signer, err := NewCosigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if signer.Name() != verifier.Name() || signer.KeyHash() != verifier.KeyHash() {
		t.Errorf("signer %s+%08x does not match verifier %s+%08x", signer.Name(), signer.KeyHash(), verifier.Name(), verifier.KeyHash())
	}
	alpha := newTestLog(t, alphaOrigin, 3)
	cp := alpha.checkpoint(t, 3)
	n, err := note.Open(cp, note.VerifierList(alpha.verifier))
	if err != nil {
		t.Fatal(err)
	}
	n.Sigs = nil
	cosigned, err := note.Sign(n, signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(cosigned, note.VerifierList(verifier)); err != nil {
		t.Errorf("cosignature doesn't verify: %v", err)
	}

	// Nodes configure the witness in Tessera with the vkey.
	u, err := url.Parse("https://mediator.parley.example:8443/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tessera.NewWitness(vkey, u); err != nil {
		t.Errorf("tessera.NewWitness rejects the vkey: %v", err)
	}
	// A plain note verifier cannot be made from it, so it cannot be
	// mistaken for a checkpoint key.
	if _, err := note.NewVerifier(vkey); err == nil {
		t.Error("note.NewVerifier accepted a cosignature/v1 vkey")
	}
}

func TestGenerateCosigningKeyErrors(t *testing.T) {
	for _, name := range []string{"", "two words", "a+b", "tab\tname", "line\nbreak", "\xff"} {
		if _, _, err := GenerateCosigningKey(name); err == nil {
			t.Errorf("GenerateCosigningKey(%q): got no error, want one", name)
		}
	}
}

func TestNewCosignerErrors(t *testing.T) {
	noteKey, _, err := note.GenerateKey(rand.Reader, "parley.example/mediator/un")
	if err != nil {
		t.Fatal(err)
	}
	good, _, err := GenerateCosigningKey("parley.example/mediator/un")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.SplitN(good, "+", 5)
	for _, tc := range []struct {
		name, skey string
	}{
		{"empty", ""},
		{"verifier key", strings.Join(f[2:], "+")},
		{"plain note key", noteKey},
		{"wrong key id", strings.Join([]string{f[0], f[1], f[2], "00000000", f[4]}, "+")},
		{"other name", strings.Join([]string{f[0], f[1], "other", f[3], f[4]}, "+")},
		{"not base64", strings.Join([]string{f[0], f[1], f[2], f[3], "!!"}, "+")},
		{"short seed", strings.Join([]string{f[0], f[1], f[2], f[3], base64.StdEncoding.EncodeToString([]byte{4, 1, 2, 3})}, "+")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewCosigner(tc.skey); err == nil {
				t.Errorf("got no error, want one")
			}
		})
	}
}
