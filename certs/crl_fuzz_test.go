package certs_test

import (
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/certs/certstest"
)

// FuzzParseRevocationLists checks that a CRL file, which a node reads for
// every trust domain and which another party writes, never panics the
// parser and never verifies without the CA's signature: every CRL that
// parses and verifies against the test CA must be one the CA signed.
func FuzzParseRevocationLists(f *testing.F) {
	alpha, rogue := certstest.NewParty(f, "alpha"), certstest.NewParty(f, "alpha")
	leaf := alpha.Issue(f, certs.IssueRequest{Role: certs.RoleOperator, Name: "ops"})
	signed := map[string]bool{}
	now := time.Now()
	crl := func(p *certstest.Party, number int64, entries ...x509.RevocationListEntry) []byte {
		b, err := p.CA.RevocationList(entries, big.NewInt(number), now.Add(-time.Minute), now.Add(time.Hour))
		if err != nil {
			f.Fatal(err)
		}
		if p == alpha {
			block, _ := pem.Decode(b)
			parsed, err := x509.ParseRevocationList(block.Bytes)
			if err != nil {
				f.Fatal(err)
			}
			signed[string(parsed.RawTBSRevocationList)] = true
		}
		return b
	}
	revoked := x509.RevocationListEntry{SerialNumber: leaf.Cert.SerialNumber, RevocationTime: now}
	empty, one, other := crl(alpha, 1, revoked), crl(alpha, 2), crl(rogue, 3, revoked)
	block, _ := pem.Decode(one)
	for _, seed := range [][]byte{
		empty, one, other, block.Bytes,
		append(append([]byte{}, empty...), one...),
		append(append([]byte{}, one...), "trailing"...),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}),
		{},
	} {
		f.Add(seed)
	}
	ca := alpha.CA.Certificate()
	f.Fuzz(func(t *testing.T, data []byte) {
		crls, err := certs.ParseRevocationLists(data)
		if err != nil {
			if crls != nil {
				t.Fatalf("got %d CRLs with error %v", len(crls), err)
			}
			return
		}
		if len(crls) == 0 {
			t.Fatal("got no CRL and no error")
		}
		for i, c := range crls {
			domain, err := certs.VerifyRevocationList(c, ca)
			if err != nil {
				continue
			}
			if domain != "alpha" {
				t.Fatalf("CRL %d: got trust domain %q, want alpha", i, domain)
			}
			if !signed[string(c.RawTBSRevocationList)] {
				t.Fatalf("CRL %d verifies against alpha's CA, which never signed it", i)
			}
		}
	})
}
