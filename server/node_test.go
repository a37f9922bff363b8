package server_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/certs/certstest"
	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
	"github.com/parley-dev/parley/internal/localnet/localnettest"
	"github.com/parley-dev/parley/keys"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// startNetwork runs a real network on loopback for the test.
func startNetwork(t testing.TB, opts localnet.Options) *localnet.Running {
	t.Helper()
	return localnettest.Start(t, opts)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func operator(t testing.TB, run *localnet.Running, party string) *client.Client {
	t.Helper()
	return localnettest.Operator(t, run.Network, party)
}

// dialWith dials party's node presenting cert, trusting the agreement CAs.
func dialWith(t testing.TB, run *localnet.Running, party string, cert *tls.Certificate) *client.Client {
	t.Helper()
	bundle, err := config.TrustBundle(run.Agreement.Agreement)
	if err != nil {
		t.Fatal(err)
	}
	getCert := func() (*tls.Certificate, error) {
		if cert == nil {
			return &tls.Certificate{}, nil
		}
		return cert, nil
	}
	c, err := client.DialTLS(context.Background(), run.Parties[party].Address, credentials.NewTLS(certs.ClientConfig(bundle, getCert, party)), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func loadCA(t testing.TB, run *localnet.Running, party string) *certs.CA {
	t.Helper()
	p := run.Parties[party]
	cert, key := readFile(t, p.CAFile), readFile(t, p.CAFile[:len(p.CAFile)-len(".crt")]+".key")
	ca, err := certs.LoadCA(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func leaf(t testing.TB, ca *certs.CA, role certs.Role, name string) *tls.Certificate {
	t.Helper()
	l, err := ca.Issue(certs.IssueRequest{Role: role, Name: name, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

func notification(troops uint32) *parleyv1.ActivityNotification {
	return localnettest.Notification(troops)
}

func TestSubmitAndReadBack(t *testing.T) {
	run := startNetwork(t, localnet.Options{NoMediators: true})
	ctx := context.Background()
	alpha := operator(t, run, "alpha")
	for i := range 3 {
		e, err := alpha.Notify(ctx, notification(9000+uint32(i)))
		if err != nil {
			t.Fatalf("Notify %d: %v", i, err)
		}
		if e.GetSeq() != uint64(i+1) || e.GetSender() != "alpha" {
			t.Fatalf("got %s/%d, want alpha/%d", e.GetSender(), e.GetSeq(), i+1)
		}
		got, err := alpha.Entry(ctx, "alpha", e.GetSeq())
		if err != nil {
			t.Fatalf("Entry: %v", err)
		}
		if string(got.GetEnvelope()) != string(e.GetEnvelope()) {
			t.Fatalf("read back a different envelope for seq %d", e.GetSeq())
		}
		p, err := envelope.Parse(got.GetEnvelope())
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if p.Statement.GetBody().GetNotification().GetForces().GetTroops() != 9000+uint32(i) {
			t.Fatalf("got troops %d, want %d", p.Statement.GetBody().GetNotification().GetForces().GetTroops(), 9000+i)
		}
	}
	// A checkpoint that covers the three entries (peers' receipts may sit
	// between them in alpha's log) verifies and proves each.
	var entries []*parleyv1.LogEntry
	var last uint64
	for seq := uint64(1); seq <= 3; seq++ {
		e, err := alpha.Entry(ctx, "alpha", seq)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
		last = max(last, e.GetIndex())
	}
	var cp *client.Checkpoint
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, _, err := alpha.Checkpoint(ctx, run.LogKeys("alpha"))
		if err == nil && c.Size > last {
			cp = c
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covering index %d: %v", last, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, e := range entries {
		if err := alpha.ProveInclusion(ctx, cp, e); err != nil {
			t.Fatalf("ProveInclusion(%d): %v", e.GetSeq(), err)
		}
	}
}

func TestAccessControl(t *testing.T) {
	run := startNetwork(t, localnet.Options{NoMediators: true})
	ctx := context.Background()
	alphaCA, bravoCA := loadCA(t, run, "alpha"), loadCA(t, run, "bravo")
	rogue := certstest.NewParty(t, "alpha") // a CA the agreement does not list
	tests := []struct {
		name string
		cert *tls.Certificate
		want codes.Code
	}{
		{"own operator", leaf(t, alphaCA, certs.RoleOperator, "ops2"), codes.OK},
		{"no client certificate", nil, codes.Unavailable},
		{"unknown CA claiming alpha", func() *tls.Certificate { c := rogue.Leaf(t, certs.RoleOperator, "ops"); return &c }(), codes.Unavailable},
		{"alpha's CA claiming bravo", leaf(t, alphaCA, certs.RoleOperator, "x"), codes.OK}, // replaced below
		{"bravo operator to alpha", leaf(t, bravoCA, certs.RoleOperator, "ops"), codes.PermissionDenied},
		{"alpha node as operator", leaf(t, alphaCA, certs.RoleNode, "node2"), codes.PermissionDenied},
		{"party CA issuing a mediator cert", leaf(t, alphaCA, certs.RoleMediator, "m"), codes.PermissionDenied},
	}
	// A certificate from alpha's CA whose SAN claims bravo: Issue refuses to
	// make it, so sign the template by hand.
	tests[3].cert = crossPartyLeaf(t, run)
	tests[3].want = codes.Unavailable
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialWith(t, run, "alpha", tt.cert)
			_, err := c.Notify(ctx, notification(100))
			if got := status.Code(err); got != tt.want {
				t.Fatalf("got %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}

// crossPartyLeaf is a certificate issued by alpha's CA for spiffe://bravo/operator/x.
func crossPartyLeaf(t testing.TB, run *localnet.Running) *tls.Certificate {
	t.Helper()
	bravo := certstest.NewParty(t, "bravo")
	// Re-sign bravo's leaf with alpha's CA key: the chain is alpha's, the
	// SAN says bravo.
	l := bravo.Issue(t, certs.IssueRequest{Role: certs.RoleOperator, Name: "x", Validity: time.Hour})
	ca := loadCA(t, run, "alpha")
	tmpl := *l.Cert
	der, err := signWithCA(ca, &tmpl, l.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: l.Key}
}

func TestEnvelopeOutcomes(t *testing.T) {
	run := startNetwork(t, localnet.Options{NoMediators: true})
	ctx := context.Background()
	alpha := operator(t, run, "alpha")
	signer, err := keys.LoadSigner(ctx, run.Parties["alpha"].SigningKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := signer.PublicKey()
	keyID, _ := keys.KeyID(pub)
	e1, err := alpha.Notify(ctx, notification(9000))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(seq uint64, prev []byte, troops uint32) []byte {
		st := &parleyv1.Statement{
			Header: &parleyv1.Header{AgreementId: run.Agreement.Agreement.ID, Sender: "alpha", Seq: seq, Prev: prev, IssuedAt: timestamppb.Now()},
			Body:   &parleyv1.Body{Kind: &parleyv1.Body_Notification{Notification: notification(troops)}},
		}
		raw, err := envelope.Sign(ctx, st, signer, keyID)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	// alpha's own feed: the other parties' receipts of e1 arrive meanwhile.
	heads := func() string {
		h, err := alpha.Exchange.FeedHeads(ctx, &parleyv1.FeedHeadsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, fh := range h.GetHeads() {
			if fh.GetSender() == "alpha" {
				return fh.String()
			}
		}
		return ""
	}
	before := heads()
	forged := sign(2, e1.GetDigest(), 5)
	forged[len(forged)-5] ^= 0xff // inside the signature bytes
	tests := []struct {
		name    string
		raw     []byte
		want    codes.Code
		wantDup bool
	}{
		{"replay of a logged entry", e1.GetEnvelope(), codes.OK, true},
		{"forged signature", forged, codes.InvalidArgument, false},
		{"gap", sign(5, e1.GetDigest(), 1), codes.FailedPrecondition, false},
		{"equivocation at seq 1", sign(1, nil, 12345), codes.AlreadyExists, false},
		{"wrong prev", sign(2, make([]byte, 32), 1), codes.FailedPrecondition, false},
		{"not an envelope", []byte("hello"), codes.InvalidArgument, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := alpha.SubmitEnvelope(ctx, tt.raw)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("got %v (%v), want %v", got, err, tt.want)
			}
			if err == nil && resp.GetDuplicate() != tt.wantDup {
				t.Fatalf("got duplicate=%v, want %v", resp.GetDuplicate(), tt.wantDup)
			}
			if after := heads(); after != before {
				t.Fatalf("feed heads changed: got %s, want %s", after, before)
			}
		})
	}
	ev, err := alpha.Evidence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != 1 || ev[0].GetEquivocation().GetSeq() != 1 {
		t.Fatalf("got evidence %v, want one equivocation at seq 1", ev)
	}
	// A correctly chained pre-signed envelope is accepted.
	resp, err := alpha.SubmitEnvelope(ctx, sign(2, e1.GetDigest(), 7))
	if err != nil || resp.GetEntry().GetSeq() != 2 {
		t.Fatalf("got %v, %v; want seq 2 accepted", resp, err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signWithCA signs tmpl with ca's key, bypassing Issue's checks.
func signWithCA(ca *certs.CA, tmpl *x509.Certificate, pub any) ([]byte, error) {
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if key, err = x509.ParseECPrivateKey(block.Bytes); err != nil {
			return nil, err
		}
	}
	return x509.CreateCertificate(rand.Reader, tmpl, ca.Certificate(), pub, key)
}

// TestSubmitWithExpiredKeyRefused checks that a node whose signing key's
// validity window in the agreement has ended refuses to sign new
// statements (no verifier would accept them), and logs nothing.
func TestSubmitWithExpiredKeyRefused(t *testing.T) {
	run := startNetwork(t, localnet.Options{NoMediators: true, Parties: []string{"alpha", "bravo"}, KeyNotAfter: time.Now().Add(-time.Hour)})
	ctx := context.Background()
	_, err := operator(t, run, "alpha").Notify(ctx, notification(9000))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "outside its validity window") {
		t.Fatalf("Notify with an expired key: got %v, want InvalidArgument naming the key's validity window", err)
	}
	entries, err := operator(t, run, "alpha").Entries(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("the log holds %d entries, want none", len(entries))
	}
}
