package certs_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/certs/certstest"
)

// writeCRL writes a CRL of p's CA revoking leaves, numbered number, to path.
func writeCRL(t testing.TB, p *certstest.Party, path string, number int64, leaves ...*certs.Leaf) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, l := range leaves {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: l.Cert.SerialNumber, RevocationTime: time.Now()})
	}
	now := time.Now()
	crl, err := p.CA.RevocationList(entries, big.NewInt(number), now.Add(-time.Minute), now.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("RevocationList: %v", err)
	}
	if err := os.WriteFile(path, crl, 0o644); err != nil {
		t.Fatal(err)
	}
	return crl
}

func TestRevocations(t *testing.T) {
	alpha, bravo := certstest.NewParty(t, "alpha"), certstest.NewParty(t, "bravo")
	bundle := certstest.Bundle(t, alpha, bravo)
	dir := t.TempDir()
	alphaCRL := filepath.Join(dir, "alpha.crl")
	revokedLeaf := alpha.Issue(t, certs.IssueRequest{Role: certs.RoleOperator, Name: "lost"})
	goodLeaf := alpha.Issue(t, certs.IssueRequest{Role: certs.RoleOperator, Name: "ops"})
	bravoLeaf := bravo.Issue(t, certs.IssueRequest{Role: certs.RoleOperator, Name: "lost"})
	// bravo's leaf has alpha's leaf's serial: a CRL of alpha's CA must not
	// revoke it.
	bravoSame := bravo.Issue(t, certs.IssueRequest{Role: certs.RoleOperator, Name: "same"})
	bravoSame.Cert.SerialNumber = revokedLeaf.Cert.SerialNumber
	writeCRL(t, alpha, alphaCRL, 1, revokedLeaf)

	r, err := certs.LoadRevocations(bundle, map[string]string{"alpha": alphaCRL})
	if err != nil {
		t.Fatalf("LoadRevocations: %v", err)
	}
	checked := bundle.WithRevocations(r)
	tests := []struct {
		name    string
		leaf    *certs.Leaf
		revoked bool
	}{
		{"revoked alpha leaf", revokedLeaf, true},
		{"other alpha leaf", goodLeaf, false},
		{"bravo leaf, no bravo CRL", bravoLeaf, false},
		{"bravo leaf with a serial alpha revoked", bravoSame, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Check(tt.leaf.Cert)
			if got := errors.Is(err, certs.ErrRevoked); got != tt.revoked {
				t.Fatalf("Check: got %v, want revoked=%v", err, tt.revoked)
			}
			if tt.leaf == bravoSame {
				return // its signature no longer matches its edited serial
			}
			_, err = checked.Verify([]*x509.Certificate{tt.leaf.Cert}, x509.ExtKeyUsageClientAuth)
			if got := errors.Is(err, certs.ErrRevoked); got != tt.revoked {
				t.Fatalf("Verify: got %v, want revoked=%v", err, tt.revoked)
			}
			if _, err := bundle.Verify([]*x509.Certificate{tt.leaf.Cert}, x509.ExtKeyUsageClientAuth); err != nil {
				t.Fatalf("Verify without revocations: %v", err)
			}
		})
	}

	// A new CRL revokes goodLeaf too once reloaded.
	writeCRL(t, alpha, alphaCRL, 2, revokedLeaf, goodLeaf)
	if err := r.Check(goodLeaf.Cert); err != nil {
		t.Fatalf("before Reload: got %v, want not revoked", err)
	}
	if err := r.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if err := r.Check(goodLeaf.Cert); !errors.Is(err, certs.ErrRevoked) {
		t.Fatalf("after Reload: got %v, want ErrRevoked", err)
	}
	if st := r.Status(); len(st) != 1 || st[0].Domain != "alpha" || st[0].Revoked != 2 || st[0].Number.Int64() != 2 {
		t.Fatalf("Status: got %+v, want one alpha CRL number 2 with 2 serials", st)
	}
}

func TestRevocationsReloadErrors(t *testing.T) {
	alpha, bravo := certstest.NewParty(t, "alpha"), certstest.NewParty(t, "bravo")
	bundle := certstest.Bundle(t, alpha, bravo)
	dir := t.TempDir()
	path := filepath.Join(dir, "alpha.crl")
	lost := alpha.Issue(t, certs.IssueRequest{Role: certs.RoleOperator, Name: "lost"})
	good := writeCRL(t, alpha, path, 5, lost)
	r, err := certs.LoadRevocations(bundle, map[string]string{"alpha": path})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		write func(t *testing.T)
		want  string
	}{
		{"older CRL number", func(t *testing.T) { writeCRL(t, alpha, path, 4) }, "lower than"},
		{"signed by another party's CA", func(t *testing.T) { writeCRL(t, bravo, path, 6) }, "not signed by any CA"},
		{"not a CRL", func(t *testing.T) { os.WriteFile(path, alpha.CA.CertPEM(), 0o644) }, "want \"X509 CRL\""},
		{"tampered", func(t *testing.T) {
			block, _ := pem.Decode(good)
			block.Bytes[len(block.Bytes)-3] ^= 1
			os.WriteFile(path, pem.EncodeToMemory(block), 0o644)
		}, "not signed"},
		{"two CRLs of one CA", func(t *testing.T) {
			os.WriteFile(path, append(append([]byte{}, good...), good...), 0o644)
		}, "two CRLs"},
		{"missing file", func(t *testing.T) { os.Remove(path) }, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.write(t)
			err := r.Reload()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Reload: got %v, want an error containing %q", err, tt.want)
			}
			// The CRL in force is unchanged.
			if err := r.Check(lost.Cert); !errors.Is(err, certs.ErrRevoked) {
				t.Fatalf("after failed Reload: got %v, want the old CRL in force", err)
			}
		})
	}
	if _, err := certs.LoadRevocations(bundle, map[string]string{"charlie": path}); !errors.Is(err, certs.ErrUnknownTrustDomain) {
		t.Fatalf("LoadRevocations for an unknown domain: got %v, want ErrUnknownTrustDomain", err)
	}
}

func TestParseRevocationListsDER(t *testing.T) {
	alpha := certstest.NewParty(t, "alpha")
	crlPEM, err := alpha.CA.RevocationList(nil, big.NewInt(1), time.Now(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(crlPEM)
	crls, err := certs.ParseRevocationLists(block.Bytes)
	if err != nil || len(crls) != 1 {
		t.Fatalf("got %d CRLs, %v; want one", len(crls), err)
	}
	if domain, err := certs.VerifyRevocationList(crls[0], alpha.CA.Certificate()); err != nil || domain != "alpha" {
		t.Fatalf("VerifyRevocationList: got %q, %v; want alpha", domain, err)
	}
}
