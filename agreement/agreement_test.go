package agreement_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"go.yaml.in/yaml/v3"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/agreement/agreementtest"
	"github.com/parley-dev/parley/keys"
)

// rawYAML encodes a without the defaults and checks of agreement.Create, so
// that Parse sees exactly what a hand-edited file would hold.
func rawYAML(t testing.TB, a *agreement.Agreement) []byte {
	t.Helper()
	data, err := yaml.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseValid(t *testing.T) {
	f := agreementtest.New(t, 3, 2)
	f.Agreement.WitnessQuorum = 0 // omitted: defaults to 1
	data := rawYAML(t, f.Agreement)
	file, err := agreement.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	a := file.Agreement
	if !bytes.Equal(file.Unsigned, data) {
		t.Errorf("got Unsigned different from the file bytes, want them equal")
	}
	if len(file.Signatures) != 0 {
		t.Errorf("got %d signatures, want 0", len(file.Signatures))
	}
	if got, want := file.Digest(), sha256.Sum256(data); got != want {
		t.Errorf("got digest %x, want %x", got, want)
	}
	if got, want := a.ID, "parley-test"; got != want {
		t.Errorf("got id %q, want %q", got, want)
	}
	if !a.EffectiveFrom.Equal(agreementtest.EffectiveFrom) {
		t.Errorf("got effective_from %v, want %v", a.EffectiveFrom, agreementtest.EffectiveFrom)
	}
	if got, want := a.WitnessQuorum, 1; got != want {
		t.Errorf("got witness quorum %d, want %d (default with mediators)", got, want)
	}
	if got, want := a.Rules.Set, agreement.SetVD2011; got != want {
		t.Errorf("got rule set %q, want %q", got, want)
	}
	if got, want := len(a.Parties), 3; got != want {
		t.Fatalf("got %d parties, want %d", got, want)
	}
	p, ok := a.Party("bravo")
	if !ok || p.ID != "bravo" {
		t.Fatalf("got Party(bravo) = %v, %v, want bravo", p, ok)
	}
	if _, ok := a.Party("zulu"); ok {
		t.Errorf("got Party(zulu) found, want not found")
	}
	m, ok := a.Mediator("mediator2")
	if !ok || m.ID != "mediator2" {
		t.Errorf("got Mediator(mediator2) = %v, %v, want mediator2", m, ok)
	}
	if _, ok := a.Mediator("alpha"); ok {
		t.Errorf("got Mediator(alpha) found, want not found")
	}
	if got, want := p.Keys[0].ID, f.Party(t, "bravo").Keys[0].ID; got != want {
		t.Errorf("got bravo key id %s, want %s", got, want)
	}
}

func TestParseWithoutMediators(t *testing.T) {
	f := agreementtest.New(t, 2, 0)
	file, err := agreement.Parse(rawYAML(t, f.Agreement))
	if err != nil {
		t.Fatal(err)
	}
	if got := file.Agreement.WitnessQuorum; got != 0 {
		t.Errorf("got witness quorum %d, want 0 without mediators", got)
	}
}

func TestParseTimeForms(t *testing.T) {
	f := agreementtest.New(t, 2, 0)
	data := f.Bytes(t)
	for _, tt := range []struct {
		name, value string
		want        time.Time
	}{
		{"rfc3339", "2026-03-01T12:00:00Z", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		{"offset", "2026-03-01T12:00:00+02:00", time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)},
		{"date", "2026-03-01", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"quoted", `"2026-03-01T12:00:00Z"`, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mod := bytes.Replace(data, []byte("effective_from: 2020-01-01T00:00:00Z"), []byte("effective_from: "+tt.value), 1)
			file, err := agreement.Parse(mod)
			if err != nil {
				t.Fatal(err)
			}
			if got := file.Agreement.EffectiveFrom; !got.Equal(tt.want) {
				t.Errorf("got effective_from %v, want %v", got, tt.want)
			}
		})
	}
}

type errorCase struct {
	name   string
	mutate func(t testing.TB, f *agreementtest.Fixture)
	want   string
}

func runErrorCases(t *testing.T, cases []errorCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			f := agreementtest.New(t, 3, 2)
			tt.mutate(t, f)
			_, err := agreement.Parse(rawYAML(t, f.Agreement))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseAgreementErrors(t *testing.T) {
	runErrorCases(t, []errorCase{
		{"empty id", func(_ testing.TB, f *agreementtest.Fixture) { f.Agreement.ID = "" }, `id: "" is not a valid id`},
		{"upper-case id", func(_ testing.TB, f *agreementtest.Fixture) { f.Agreement.ID = "Treaty" }, `id: "Treaty" is not a valid id`},
		{"long id", func(_ testing.TB, f *agreementtest.Fixture) { f.Agreement.ID = strings.Repeat("a", 65) }, "is not a valid id (want 1-64 characters"},
		{"leading dash", func(_ testing.TB, f *agreementtest.Fixture) { f.Agreement.ID = "-x" }, `id: "-x" is not a valid id`},
		{"no title", func(_ testing.TB, f *agreementtest.Fixture) { f.Agreement.Title = " " }, "title: missing"},
		{"multi-line title", func(_ testing.TB, f *agreementtest.Fixture) { f.Agreement.Title = "a\nb" }, "title: contains control characters"},
		{"no effective_from", func(_ testing.TB, f *agreementtest.Fixture) { f.Agreement.EffectiveFrom = time.Time{} }, "effective_from: missing"},
		{"until before from", func(_ testing.TB, f *agreementtest.Fixture) {
			f.Agreement.EffectiveUntil = f.Agreement.EffectiveFrom.Add(-time.Hour)
		}, "effective_until: 2019-12-31T23:00:00Z is not after effective_from 2020-01-01T00:00:00Z"},
		{"one party", func(_ testing.TB, f *agreementtest.Fixture) { f.Agreement.Parties = f.Agreement.Parties[:1] }, "parties: 1 listed (want at least 2)"},
		{"negative quorum", func(_ testing.TB, f *agreementtest.Fixture) { f.Agreement.WitnessQuorum = -1 }, "witness_quorum: -1 is negative (want 0..2)"},
		{"quorum too large", func(_ testing.TB, f *agreementtest.Fixture) { f.Agreement.WitnessQuorum = 3 }, "witness_quorum: 3 is more than the 2 mediators listed (want 0..2)"},
	})
}

func TestParsePartyErrors(t *testing.T) {
	p := func(f *agreementtest.Fixture, i int) *agreement.Party { return &f.Agreement.Parties[i] }
	runErrorCases(t, []errorCase{
		{"bad id", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 1).ID = "bravo_1" }, `parties[1].id: "bravo_1" is not a valid party or mediator id`},
		{"dotted party id", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 1).ID = "bravo.one" }, `parties[1].id: "bravo.one" is not a valid party or mediator id`},
		{"duplicate id", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 1).ID = "alpha" }, `parties[1].id: id "alpha" is already used by parties[0].id`},
		{"no name", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 2).Name = "" }, "parties[2].name: missing"},
		{"no ca", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 0).CA = "" }, "parties[0].ca: missing"},
		{"ca not PEM", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 0).CA = "not a certificate" }, "parties[0].ca: unexpected data before the first PEM certificate"},
		{"ca wrong block", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 0).CA = p(f, 0).Keys[0].PublicKey }, `parties[0].ca: PEM block 1 is "PUBLIC KEY", want "CERTIFICATE"`},
		{"ca bad DER", func(_ testing.TB, f *agreementtest.Fixture) {
			p(f, 0).CA = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}}))
		}, "parties[0].ca: certificate 0: couldn't parse"},
		{"ca not a CA", func(t testing.TB, f *agreementtest.Fixture) { p(f, 0).CA = leafPEM(t) }, "parties[0].ca: certificate 0 (CN=leaf) is not a CA certificate"},
		{"ca trailing data", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 0).CA += "junk\n" }, "parties[0].ca: unexpected data after PEM certificate 1"},
		{"ca leading text", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 0).CA = "the CA of bravo:\n" + p(f, 0).CA }, "parties[0].ca: unexpected data before the first PEM certificate"},
		{"ca text between blocks", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 0).CA += "and also:\n" + p(f, 1).CA }, "parties[0].ca: unexpected data after PEM certificate 1"},
		{"ca malformed block", func(_ testing.TB, f *agreementtest.Fixture) {
			p(f, 0).CA = "-----BEGIN CERTIFICATE-----\n!!!\n" + p(f, 0).CA
		}, "parties[0].ca: malformed PEM block 1"},
		{"no endpoints", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 1).Endpoints = nil }, "parties[1].endpoints: none listed"},
		{"endpoint without port", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 1).Endpoints = []string{"bravo.example"} }, `parties[1].endpoints[0]: "bravo.example" is not host:port`},
		{"endpoint without host", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 1).Endpoints = []string{":8443"} }, `parties[1].endpoints[0]: ":8443" has no host`},
		{"endpoint port 0", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 1).Endpoints = []string{"b.example:0"} }, `parties[1].endpoints[0]: "b.example:0" has an invalid port (want 1..65535)`},
		{"endpoint port too large", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 1).Endpoints = []string{"b.example:65536"} }, "has an invalid port"},
		{"duplicate endpoint", func(_ testing.TB, f *agreementtest.Fixture) {
			p(f, 1).Endpoints = []string{"b.example:1", "b.example:1"}
		}, `parties[1].endpoints[1]: endpoint "b.example:1" is already used by parties[1].endpoints[0]`},
		{"tile endpoint http", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 0).TileEndpoint = "http://a.example/" }, `parties[0].tile_endpoint: "http://a.example/" does not use https`},
		{"tile endpoint query", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 0).TileEndpoint = "https://a.example/?x=1" }, "parties[0].tile_endpoint: \"https://a.example/?x=1\" has user info, a query or a fragment"},
		{"no log origin", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 0).LogOrigin = "" }, "parties[0].log_origin: missing"},
		{"log origin newline", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 0).LogOrigin = "a\nb" }, "parties[0].log_origin: \"a\\nb\" has leading or trailing space or control characters"},
		{"duplicate log origin", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 2).LogOrigin = p(f, 0).LogOrigin }, `parties[2].log_origin: log origin "parley.test/alpha" is already used by parties[0].log_origin`},
		{"no checkpoint key", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 0).CheckpointKey = "" }, "parties[0].checkpoint_key: missing"},
		{"bad checkpoint key", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 0).CheckpointKey = "alpha+00000000+AAAA" }, "parties[0].checkpoint_key: couldn't parse note verifier key"},
		{"duplicate checkpoint key", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 1).CheckpointKey = p(f, 0).CheckpointKey }, "parties[1].checkpoint_key: note verifier key"},
		{"empty territory", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 0).Territory = []string{""} }, "parties[0].territory[0]: missing"},
		{"shared territory", func(_ testing.TB, f *agreementtest.Fixture) { p(f, 1).Territory = []string{"ALPHALAND"} }, `parties[1].territory[0]: territory "alphaland" is already used by parties[0].territory[0]`},
	})
}

func TestParseKeyErrors(t *testing.T) {
	k := func(f *agreementtest.Fixture, i, j int) *agreement.Key { return &f.Agreement.Parties[i].Keys[j] }
	runErrorCases(t, []errorCase{
		{"no keys", func(_ testing.TB, f *agreementtest.Fixture) { f.Agreement.Parties[1].Keys = nil }, "parties[1].keys: none listed"},
		{"id mismatch", func(_ testing.TB, f *agreementtest.Fixture) { k(f, 1, 0).ID = strings.Repeat("ab", 32) }, "parties[1].keys[0].id: " + strings.Repeat("ab", 32) + " does not match the public key (want "},
		{"id not hex", func(_ testing.TB, f *agreementtest.Fixture) { k(f, 1, 0).ID = "bravo-key" }, `parties[1].keys[0].id: "bravo-key" is not a key id (want 64 lowercase hex characters)`},
		{"id upper-case", func(_ testing.TB, f *agreementtest.Fixture) { k(f, 1, 0).ID = strings.ToUpper(k(f, 1, 0).ID) }, "parties[1].keys[0].id:"},
		{"no public key", func(_ testing.TB, f *agreementtest.Fixture) { k(f, 0, 0).PublicKey = "" }, "parties[0].keys[0].public_key: missing"},
		{"rsa key", func(t testing.TB, f *agreementtest.Fixture) { setKey(t, k(f, 0, 0), rsaPublic(t)) }, "parties[0].keys[0].public_key: unsupported key algorithm RSA"},
		{"p-384 key", func(t testing.TB, f *agreementtest.Fixture) { setKey(t, k(f, 0, 0), p384Public(t)) }, "parties[0].keys[0].public_key: unsupported ECDSA curve P-384 (want P-256)"},
		{"no not_before", func(_ testing.TB, f *agreementtest.Fixture) { k(f, 2, 0).NotBefore = time.Time{} }, "parties[2].keys[0].not_before: missing"},
		{"not_after before not_before", func(_ testing.TB, f *agreementtest.Fixture) {
			k(f, 1, 0).NotAfter = k(f, 1, 0).NotBefore.Add(-24 * time.Hour)
		}, "parties[1].keys[0].not_after: 2019-12-31T00:00:00Z is before not_before 2020-01-01T00:00:00Z"},
		{"not_after equals not_before", func(_ testing.TB, f *agreementtest.Fixture) { k(f, 1, 0).NotAfter = k(f, 1, 0).NotBefore }, "parties[1].keys[0].not_after: 2020-01-01T00:00:00Z equals not_before"},
		{"key of two parties", func(_ testing.TB, f *agreementtest.Fixture) { *k(f, 2, 0) = *k(f, 0, 0) }, "parties[2].keys[0].id: key id"},
		{"key twice", func(_ testing.TB, f *agreementtest.Fixture) {
			f.Agreement.Parties[0].Keys = append(f.Agreement.Parties[0].Keys, *k(f, 0, 0))
		}, "parties[0].keys[1].id: key id"},
	})
}

func TestParseMediatorErrors(t *testing.T) {
	m := func(f *agreementtest.Fixture, i int) *agreement.Mediator { return &f.Agreement.Mediators[i] }
	runErrorCases(t, []errorCase{
		{"bad id", func(_ testing.TB, f *agreementtest.Fixture) { m(f, 0).ID = "Med" }, `mediators[0].id: "Med" is not a valid party or mediator id`},
		{"id of a party", func(_ testing.TB, f *agreementtest.Fixture) { m(f, 0).ID = "charlie" }, `mediators[0].id: id "charlie" is already used by parties[2].id`},
		{"duplicate id", func(_ testing.TB, f *agreementtest.Fixture) { m(f, 1).ID = "mediator1" }, `mediators[1].id: id "mediator1" is already used by mediators[0].id`},
		{"no name", func(_ testing.TB, f *agreementtest.Fixture) { m(f, 0).Name = "" }, "mediators[0].name: missing"},
		{"no ca", func(_ testing.TB, f *agreementtest.Fixture) { m(f, 1).CA = "" }, "mediators[1].ca: missing"},
		{"no witness endpoint", func(_ testing.TB, f *agreementtest.Fixture) { m(f, 0).WitnessEndpoint = "" }, "mediators[0].witness_endpoint: missing (want an https URL)"},
		{"witness endpoint not https", func(_ testing.TB, f *agreementtest.Fixture) { m(f, 0).WitnessEndpoint = "m1.example:443" }, "mediators[0].witness_endpoint:"},
		{"witness endpoint no host", func(_ testing.TB, f *agreementtest.Fixture) { m(f, 0).WitnessEndpoint = "https:///x" }, `mediators[0].witness_endpoint: "https:///x" has no host`},
		{"no cosigning key", func(_ testing.TB, f *agreementtest.Fixture) { m(f, 0).CosigningKey = "" }, "mediators[0].cosigning_key: missing"},
		{"bad cosigning key", func(_ testing.TB, f *agreementtest.Fixture) { m(f, 0).CosigningKey = "garbage" }, "mediators[0].cosigning_key: couldn't parse cosigning key"},
		{"cosigning key of a party", func(_ testing.TB, f *agreementtest.Fixture) {
			m(f, 0).CosigningKey = f.Agreement.Parties[0].CheckpointKey
		}, "mediators[0].cosigning_key: note verifier key"},
	})
}

func TestParseReportsEveryProblem(t *testing.T) {
	f := agreementtest.New(t, 2, 0)
	f.Agreement.Title = ""
	f.Agreement.Parties[0].Name = ""
	f.Agreement.Parties[1].Endpoints = nil
	_, err := agreement.Parse(rawYAML(t, f.Agreement))
	if err == nil {
		t.Fatal("got no error, want three problems")
	}
	for _, want := range []string{"title: missing", "parties[0].name: missing", "parties[1].endpoints: none listed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got error %q, want it to contain %q", err, want)
		}
	}
}

func TestParseDecodeErrors(t *testing.T) {
	f := agreementtest.New(t, 2, 0)
	good := f.Bytes(t)
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"unknown top-level field", append([]byte("colour: red\n"), good...), "field colour not found in type agreement.Agreement"},
		{"unknown party field", bytes.Replace(good, []byte("    name: Bravo\n"), []byte("    name: Bravo\n    nmae: Bravo\n"), 1), "field nmae not found in type agreement.Party"},
		{"unknown key field", bytes.Replace(good, []byte("        not_before:"), []byte("        algorithm: ed25519\n        not_before:"), 1), "field algorithm not found in type agreement.Key"},
		{"unknown rules field", bytes.Replace(good, []byte("  clock_skew_seconds: 300\n"), []byte("  clock_skew: 300\n"), 1), "field clock_skew not found in type agreement.Rules"},
		{"unknown vd2011 field", bytes.Replace(good, []byte("    lead_time_days: 42\n"), []byte("    lead_time_weeks: 6\n"), 1), "field lead_time_weeks not found in type agreement.VD2011"},
		{"duplicate key", append(good, []byte("title: again\n")...), `mapping key "title" already defined`},
		{"wrong type", bytes.Replace(good, []byte("  clock_skew_seconds: 300\n"), []byte("  clock_skew_seconds: five\n"), 1), "cannot unmarshal !!str `five` into int"},
		{"second document", append(append([]byte{}, good...), []byte("---\nid: other\n")...), "a second YAML document starts at line"},
		{"empty", nil, "agreement is empty"},
		{"only comments", []byte("# nothing\n"), "agreement is empty"},
		{"not a mapping", []byte("- a\n- b\n"), "couldn't decode agreement"},
		{"syntax error", []byte("id: [\n"), "couldn't decode agreement"},
		{"too large", make([]byte, agreement.MaxSize+1), "bytes (want at most 1048576)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := agreement.Parse(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCreate(t *testing.T) {
	f := agreementtest.New(t, 3, 2)
	f.Agreement.WitnessQuorum = 0
	f.Agreement.Rules = agreement.Rules{VD2011: &agreement.VD2011{LeadTimeDays: 30}}
	before := *f.Agreement
	data, err := agreement.Create(f.Agreement)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, *f.Agreement) {
		t.Errorf("got the input agreement modified by Create, want it unchanged")
	}
	file, err := agreement.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	a := file.Agreement
	if got, want := a.WitnessQuorum, 1; got != want {
		t.Errorf("got witness quorum %d, want %d", got, want)
	}
	if got, want := a.Rules.Set, agreement.SetVD2011; got != want {
		t.Errorf("got rule set %q, want %q", got, want)
	}
	want := agreement.DefaultVD2011()
	want.LeadTimeDays = 30
	if a.Rules.VD2011 == nil || *a.Rules.VD2011 != want {
		t.Errorf("got written vd2011 parameters %+v, want every parameter written out: %+v", a.Rules.VD2011, want)
	}
	if a.Rules.ClockSkewSeconds != 300 || a.Rules.ReceiptWindowSeconds != 3600 {
		t.Errorf("got clock_skew_seconds %d and receipt_window_seconds %d, want 300 and 3600 written out", a.Rules.ClockSkewSeconds, a.Rules.ReceiptWindowSeconds)
	}
	for i := range a.Parties {
		got, want := a.Parties[i], f.Agreement.Parties[i]
		if got.ID != want.ID || got.CA != want.CA || got.LogOrigin != want.LogOrigin ||
			!reflect.DeepEqual(got.Endpoints, want.Endpoints) || !reflect.DeepEqual(got.Territory, want.Territory) ||
			len(got.Keys) != len(want.Keys) || got.Keys[0].ID != want.Keys[0].ID || got.Keys[0].PublicKey != want.Keys[0].PublicKey {
			t.Errorf("got party %d %+v after round trip, want %+v", i, got, want)
		}
	}
	again, err := agreement.Create(a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Errorf("got different text from Create of the parsed agreement:\n%s\nwant:\n%s", again, data)
	}

	f.Agreement.Parties[0].Name = ""
	if _, err := agreement.Create(f.Agreement); err == nil || !strings.Contains(err.Error(), "parties[0].name: missing") {
		t.Errorf("got error %v creating an invalid agreement, want parties[0].name: missing", err)
	}
	if _, err := agreement.Create(nil); err == nil {
		t.Errorf("got no error creating a nil agreement, want one")
	}
}

func TestCreateMissile(t *testing.T) {
	f := agreementtest.New(t, 2, 0)
	f.Agreement.Rules = agreement.Rules{Set: agreement.SetMissile1988}
	file, err := agreement.Parse(f.Bytes(t))
	if err != nil {
		t.Fatal(err)
	}
	r := file.Agreement.Rules
	if r.VD2011 != nil {
		t.Errorf("got vd2011 parameters %+v written for set missile1988, want none", r.VD2011)
	}
	if r.Missile1988 == nil || *r.Missile1988 != agreement.DefaultMissile1988() {
		t.Errorf("got missile1988 parameters %+v, want %+v", r.Missile1988, agreement.DefaultMissile1988())
	}
}

func TestLoad(t *testing.T) {
	f := agreementtest.New(t, 2, 1)
	want := f.SignedFile(t)
	path := filepath.Join(t.TempDir(), "agreement.yaml")
	if err := os.WriteFile(path, want.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := agreement.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.RequireAllSigned(); err != nil {
		t.Errorf("got %v, want a fully signed agreement", err)
	}
	if got.Digest() != want.Digest() {
		t.Errorf("got digest %x, want %x", got.Digest(), want.Digest())
	}
	if _, err := agreement.Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "couldn't read agreement") {
		t.Errorf("got error %v, want couldn't read agreement", err)
	}
	if err := os.WriteFile(path, []byte("id: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := agreement.Load(path); err == nil || !strings.Contains(err.Error(), "couldn't load agreement "+path) {
		t.Errorf("got error %v, want it to name the file", err)
	}
}

func TestKeysAt(t *testing.T) {
	f := agreementtest.New(t, 2, 0)
	rotation := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	oldID := f.Party(t, "alpha").Keys[0].ID
	newKey := f.RotateKey(t, "alpha", rotation, keys.ECDSAP256)
	file, err := agreement.Parse(f.Bytes(t))
	if err != nil {
		t.Fatal(err)
	}
	alpha, _ := file.Agreement.Party("alpha")
	for _, tt := range []struct {
		name string
		at   time.Time
		want []string
	}{
		{"before the agreement", agreementtest.EffectiveFrom.Add(-time.Second), nil},
		{"first key", rotation.Add(-time.Second), []string{oldID}},
		{"rotation instant", rotation, []string{oldID, newKey.ID}},
		{"after rotation", rotation.Add(time.Second), []string{newKey.ID}},
		{"far future", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), []string{newKey.ID}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, k := range alpha.KeysAt(tt.at) {
				got = append(got, k.ID)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got keys %v at %v, want %v", got, tt.at, tt.want)
			}
		})
	}
}

func TestKeyVerifierConcurrent(t *testing.T) {
	f := agreementtest.New(t, 2, 0)
	file := f.SignedFile(t)
	bravo, _ := file.Agreement.Party("bravo")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := bravo.KeysAt(time.Now())[0].Verifier(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()

	// A Key built by hand, or changed after Parse, is parsed afresh.
	k := bravo.Keys[0]
	k.PublicKey = "garbage"
	if _, err := k.Verifier(); err == nil {
		t.Errorf("got a verifier for a changed, invalid public key, want an error")
	}
	if _, err := (&agreement.Key{PublicKey: f.Agreement.Parties[0].Keys[0].PublicKey}).Verifier(); err != nil {
		t.Errorf("got error %v for a hand-built key, want a verifier", err)
	}
}

func setKey(t testing.TB, k *agreement.Key, der []byte) {
	t.Helper()
	k.PublicKey = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func rsaPublic(t testing.TB) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func p384Public(t testing.TB) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// leafPEM returns a self-signed certificate that is not a CA.
func leafPEM(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "leaf"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestCosigningKeyForms(t *testing.T) {
	f := agreementtest.New(t, 2, 1)
	v1, err := fnote.VKeyToCosignatureV1(f.Agreement.Mediators[0].CosigningKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, key string }{
		{"ed25519 note key", f.Agreement.Mediators[0].CosigningKey},
		{"cosignature/v1 key", v1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.Agreement.Mediators[0].CosigningKey = tt.key
			if _, err := agreement.Parse(rawYAML(t, f.Agreement)); err != nil {
				t.Errorf("got error %v, want the key accepted", err)
			}
		})
	}
	// A checkpoint key must be a plain Ed25519 note key.
	f.Agreement.Parties[0].CheckpointKey = v1
	if _, err := agreement.Parse(rawYAML(t, f.Agreement)); err == nil || !strings.Contains(err.Error(), "parties[0].checkpoint_key: couldn't parse note verifier key") {
		t.Errorf("got error %v, want a cosignature/v1 key refused as checkpoint key", err)
	}
}
