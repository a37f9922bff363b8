package certs_test

import (
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/certs/certstest"
)

func TestTrustBundle(t *testing.T) {
	alpha := certstest.NewParty(t, "alpha")
	alphaNext := certstest.NewParty(t, "alpha") // the CA alpha rotates to
	osce := certstest.NewParty(t, "osce")
	bundle := certstest.Bundle(t, alpha, alphaNext, osce)

	if got, want := bundle.Domains(), []string{"alpha", "osce"}; !slices.Equal(got, want) {
		t.Errorf("Domains(): got %q, want %q", got, want)
	}
	if _, ok := bundle.Pool("alpha"); !ok {
		t.Errorf("Pool(alpha): got false, want true")
	}
	if _, ok := bundle.Pool("bravo"); ok {
		t.Errorf("Pool(bravo): got true, want false")
	}

	tests := []struct {
		name string
		p    *certstest.Party
		role certs.Role
	}{
		{"current CA", alpha, certs.RoleOperator},
		{"next CA", alphaNext, certs.RoleNode},
		{"mediator", osce, certs.RoleMediator},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf := tt.p.Leaf(t, tt.role, "n1").Leaf
			want := certs.Identity{Party: tt.p.ID, Role: tt.role, Name: "n1"}
			got, err := bundle.Verify([]*x509.Certificate{leaf}, x509.ExtKeyUsageClientAuth)
			if err != nil || got != want {
				t.Errorf("Verify: got %+v, %v, want %+v", got, err, want)
			}
		})
	}

	t.Run("unknown domain", func(t *testing.T) {
		leaf := certstest.NewParty(t, "bravo").Leaf(t, certs.RoleNode, "n1").Leaf
		_, err := bundle.Verify([]*x509.Certificate{leaf}, x509.ExtKeyUsageClientAuth)
		if !errors.Is(err, certs.ErrUnknownTrustDomain) {
			t.Errorf("Verify: got error %v, want ErrUnknownTrustDomain", err)
		}
	})
	t.Run("empty chain", func(t *testing.T) {
		if _, err := bundle.Verify(nil, x509.ExtKeyUsageClientAuth); err == nil {
			t.Errorf("Verify(nil): got nil error, want error")
		}
	})
	t.Run("nil bundle", func(t *testing.T) {
		var nilBundle *certs.TrustBundle
		leaf := alpha.Leaf(t, certs.RoleNode, "n1").Leaf
		if _, err := nilBundle.Verify([]*x509.Certificate{leaf}, x509.ExtKeyUsageClientAuth); err == nil {
			t.Errorf("Verify with nil bundle: got nil error, want error")
		}
	})
}

func TestNewTrustBundleErrors(t *testing.T) {
	alpha := certstest.NewParty(t, "alpha")
	bravo := certstest.NewParty(t, "bravo")
	leaf := alpha.Issue(t, certs.IssueRequest{Role: certs.RoleNode, Name: "n1"})
	keyPEM, err := alpha.CA.KeyPEM()
	if err != nil {
		t.Fatalf("KeyPEM: %v", err)
	}
	tests := []struct {
		name    string
		pems    map[string][]byte
		wantErr string
	}{
		{"invalid domain", map[string][]byte{"Alpha": alpha.CA.CertPEM()}, "invalid trust domain"},
		{"CA of another domain", map[string][]byte{"alpha": bravo.CA.CertPEM()}, `constrained to trust domain "bravo"`},
		{"rotation with a foreign CA", map[string][]byte{"alpha": append(alpha.CA.CertPEM(), bravo.CA.CertPEM()...)}, `CA 2 listed for "alpha"`},
		{"leaf instead of CA", map[string][]byte{"alpha": leaf.CertPEM()}, "not a CA"},
		{"no PEM", map[string][]byte{"alpha": []byte("not PEM")}, "unexpected data"},
		{"empty", map[string][]byte{"alpha": nil}, "no PEM certificate"},
		{"private key", map[string][]byte{"alpha": keyPEM}, `want "CERTIFICATE"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := certs.NewTrustBundle(tt.pems)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewTrustBundle: got error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
