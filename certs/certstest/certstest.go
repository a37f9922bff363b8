// Package certstest makes throwaway Parley PKI for tests: party and mediator
// CAs, leaf certificates and trust bundles, all generated in the test and
// never written to the repository.
package certstest

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/parley-dev/parley/certs"
)

// Validity is how long test CAs and leaves are valid.
const Validity = 24 * time.Hour

// Party is a test trust domain: a party or a mediator, with its CA.
type Party struct {
	// ID is the trust domain, a party id or mediator id.
	ID string
	// CA is the domain's CA.
	CA *certs.CA
}

// NewParty creates a party (or mediator) with a fresh CA. It fails the test
// on error.
func NewParty(tb testing.TB, party string) *Party {
	tb.Helper()
	ca, err := certs.NewCA(party, Validity)
	if err != nil {
		tb.Fatalf("couldn't create CA for %q: %v", party, err)
	}
	return &Party{ID: party, CA: ca}
}

// Issue issues a leaf from the party's CA. A zero req.Validity means
// [Validity]. It fails the test on error.
func (p *Party) Issue(tb testing.TB, req certs.IssueRequest) *certs.Leaf {
	tb.Helper()
	if req.Validity == 0 {
		req.Validity = Validity
	}
	leaf, err := p.CA.Issue(req)
	if err != nil {
		tb.Fatalf("couldn't issue certificate: %v", err)
	}
	return leaf
}

// Leaf issues a TLS certificate for spiffe://<party>/<role>/<name>, valid for
// the loopback names "localhost", 127.0.0.1 and ::1. It fails the test on
// error.
func (p *Party) Leaf(tb testing.TB, role certs.Role, name string) tls.Certificate {
	tb.Helper()
	leaf := p.Issue(tb, certs.IssueRequest{
		Role:     role,
		Name:     name,
		DNSNames: []string{"localhost"},
		IPs:      []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	})
	cert, err := leaf.TLSCertificate()
	if err != nil {
		tb.Fatalf("couldn't build TLS certificate: %v", err)
	}
	return cert
}

// WriteLeaf issues a loopback leaf like [Party.Leaf] and writes it to
// dir/<name>.crt and dir/<name>.key, returning both paths. It fails the test
// on error.
func (p *Party) WriteLeaf(tb testing.TB, dir string, role certs.Role, name string) (certPath, keyPath string) {
	tb.Helper()
	leaf := p.Issue(tb, certs.IssueRequest{
		Role:     role,
		Name:     name,
		DNSNames: []string{"localhost"},
		IPs:      []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	})
	key, err := leaf.KeyPEM()
	if err != nil {
		tb.Fatalf("couldn't encode key: %v", err)
	}
	certPath, keyPath, err = certs.WriteFiles(dir, name, leaf.CertPEM(), key)
	if err != nil {
		tb.Fatalf("couldn't write certificate files: %v", err)
	}
	return certPath, keyPath
}

// WriteCA writes the party's CA certificate to dir/<party>-ca.crt and returns
// its path. It fails the test on error.
func (p *Party) WriteCA(tb testing.TB, dir string) string {
	tb.Helper()
	path, _, err := certs.WriteFiles(dir, p.ID+"-ca", p.CA.CertPEM(), nil)
	if err != nil {
		tb.Fatalf("couldn't write CA certificate: %v", err)
	}
	return path
}

// PEMs returns the CA certificates of parties keyed by trust domain, as
// [certs.NewTrustBundle] and the agreement take them. Parties with the same
// ID are combined, as during a CA rotation.
func PEMs(parties ...*Party) map[string][]byte {
	pems := make(map[string][]byte, len(parties))
	for _, p := range parties {
		pems[p.ID] = append(pems[p.ID], p.CA.CertPEM()...)
	}
	return pems
}

// Bundle returns a trust bundle of the CAs of parties. It fails the test on
// error.
func Bundle(tb testing.TB, parties ...*Party) *certs.TrustBundle {
	tb.Helper()
	b, err := certs.NewTrustBundle(PEMs(parties...))
	if err != nil {
		tb.Fatalf("couldn't build trust bundle: %v", err)
	}
	return b
}

// ServerConfig returns a [certs.ServerConfig] presenting cert and trusting
// the CAs of parties.
func ServerConfig(tb testing.TB, cert tls.Certificate, parties ...*Party) *tls.Config {
	tb.Helper()
	return certs.ServerConfig(Bundle(tb, parties...), certs.Static(cert))
}

// ClientConfig returns a [certs.ClientConfig] presenting cert, trusting the
// CAs of parties and expecting a server of trust domain expectParty (any
// when empty).
func ClientConfig(tb testing.TB, cert tls.Certificate, expectParty string, parties ...*Party) *tls.Config {
	tb.Helper()
	return certs.ClientConfig(Bundle(tb, parties...), certs.Static(cert), expectParty)
}
