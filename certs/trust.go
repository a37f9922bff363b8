package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// ErrUnknownTrustDomain is wrapped by verification errors when a certificate
// claims a trust domain that the trust bundle does not list.
var ErrUnknownTrustDomain = errors.New("unknown trust domain")

// TrustBundle maps each trust domain (a party id or a mediator id) to the CAs
// trusted for that domain and for no other. A domain usually has one CA; it
// has several while its CA is being rotated. A TrustBundle is immutable and
// safe for concurrent use.
type TrustBundle struct {
	domains map[string]*x509.CertPool
	cas     map[string][]*x509.Certificate
	// revocations, when set, are checked after the chain verifies.
	revocations *Revocations
}

// NewTrustBundle builds a trust bundle from PEM CA certificates keyed by trust
// domain. Each value holds one or more PEM certificates, each of which must be
// a CA whose name constraint permits exactly that trust domain.
func NewTrustBundle(pems map[string][]byte) (*TrustBundle, error) {
	b := &TrustBundle{domains: make(map[string]*x509.CertPool, len(pems)), cas: make(map[string][]*x509.Certificate, len(pems))}
	for _, domain := range slices.Sorted(maps.Keys(pems)) {
		if err := ValidateID(domain); err != nil {
			return nil, fmt.Errorf("couldn't build trust bundle: invalid trust domain: %w", err)
		}
		cas, err := parseCertsPEM(pems[domain])
		if err != nil {
			return nil, fmt.Errorf("couldn't build trust bundle: CAs of %q: %w", domain, err)
		}
		pool := x509.NewCertPool()
		for i, ca := range cas {
			got, err := caTrustDomain(ca)
			if err != nil {
				return nil, fmt.Errorf("couldn't build trust bundle: CA %d of %q: %w", i+1, domain, err)
			}
			if got != domain {
				return nil, fmt.Errorf("couldn't build trust bundle: CA %d listed for %q is constrained to trust domain %q", i+1, domain, got)
			}
			pool.AddCert(ca)
		}
		b.domains[domain] = pool
		b.cas[domain] = cas
	}
	return b, nil
}

// WithRevocations returns a copy of the bundle whose [TrustBundle.Verify]
// also refuses certificates that r lists as revoked. r stays live: after
// [Revocations.Reload], handshakes verified with the returned bundle use
// the new CRLs. A nil r checks no revocations.
func (b *TrustBundle) WithRevocations(r *Revocations) *TrustBundle {
	if b == nil {
		return nil
	}
	c := *b
	c.revocations = r
	return &c
}

// Domains returns the trust domains in the bundle, sorted.
func (b *TrustBundle) Domains() []string {
	if b == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(b.domains))
}

// Pool returns a copy of the CA pool of one trust domain, and whether the
// bundle lists that domain.
func (b *TrustBundle) Pool(domain string) (*x509.CertPool, bool) {
	if b == nil {
		return nil, false
	}
	pool, ok := b.domains[domain]
	if !ok {
		return nil, false
	}
	return pool.Clone(), true
}

// Verify authenticates a peer's certificate chain, leaf first, as presented in
// a TLS handshake. It reads the identity from the leaf's single URI SAN and
// verifies the chain, at the current time and for the extended key usage
// usage, against the CAs of that identity's trust domain only. It returns the
// verified identity.
func (b *TrustBundle) Verify(chain []*x509.Certificate, usage x509.ExtKeyUsage) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, fmt.Errorf("couldn't authenticate peer: no certificate presented")
	}
	leaf := chain[0]
	id, err := IdentityFromCert(leaf)
	if err != nil {
		return Identity{}, fmt.Errorf("couldn't authenticate peer: %w", err)
	}
	if b == nil {
		return Identity{}, fmt.Errorf("couldn't authenticate %s: no trust bundle configured", id)
	}
	roots, ok := b.domains[id.Party]
	if !ok {
		return Identity{}, fmt.Errorf("couldn't authenticate %s: %w %q (the trust bundle lists %s)",
			id, ErrUnknownTrustDomain, id.Party, strings.Join(b.Domains(), ", "))
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   time.Now(),
		KeyUsages:     []x509.ExtKeyUsage{usage},
	}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return Identity{}, fmt.Errorf("couldn't authenticate %s: certificate is not valid under the CAs of trust domain %q: %w", id, id.Party, err)
	}
	if err := b.revocations.Check(leaf); err != nil {
		return Identity{}, fmt.Errorf("couldn't authenticate %s: %w", id, err)
	}
	return id, nil
}
