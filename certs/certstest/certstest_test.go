package certstest_test

import (
	"bytes"
	"testing"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/certs/certstest"
)

func TestParty(t *testing.T) {
	alpha := certstest.NewParty(t, "alpha")
	next := certstest.NewParty(t, "alpha")
	osce := certstest.NewParty(t, "osce")

	pems := certstest.PEMs(alpha, next, osce)
	if got, want := pems["alpha"], append(alpha.CA.CertPEM(), next.CA.CertPEM()...); !bytes.Equal(got, want) {
		t.Errorf("PEMs[alpha]: got %d bytes, want both alpha CAs (%d bytes)", len(got), len(want))
	}

	cert := alpha.Leaf(t, certs.RoleOperator, "desk")
	id, err := certs.IdentityFromCert(cert.Leaf)
	if want := (certs.Identity{Party: "alpha", Role: certs.RoleOperator, Name: "desk"}); err != nil || id != want {
		t.Errorf("Leaf identity: got %+v, %v, want %+v", id, err, want)
	}
	if err := cert.Leaf.VerifyHostname("localhost"); err != nil {
		t.Errorf("Leaf VerifyHostname(localhost): %v", err)
	}
	if err := cert.Leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("Leaf VerifyHostname(127.0.0.1): %v", err)
	}
	if got, want := certstest.Bundle(t, alpha, next, osce).Domains(), 2; len(got) != want {
		t.Errorf("Bundle domains: got %q, want %d domains", got, want)
	}
	if path := alpha.WriteCA(t, t.TempDir()); path == "" {
		t.Errorf("WriteCA: got empty path")
	}
}
