package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"slices"
	"time"
)

// clockSkew is how far NotBefore is backdated by default, so that a peer whose
// clock runs a little behind still accepts a certificate issued just now.
const clockSkew = 10 * time.Minute

// CA is the certificate authority of one trust domain: a party, or a mediator.
// Its certificate is self-signed and carries a critical name constraint that
// permits only URI SANs in spiffe://<party>. A CA is safe for concurrent use.
type CA struct {
	party string
	cert  *x509.Certificate
	key   *ecdsa.PrivateKey
}

// NewCA creates a new self-signed ECDSA P-256 CA for the trust domain party
// (a party id or a mediator id), valid from now for validity.
func NewCA(party string, validity time.Duration) (*CA, error) {
	if err := ValidateID(party); err != nil {
		return nil, fmt.Errorf("couldn't create CA: invalid party: %w", err)
	}
	if validity <= 0 {
		return nil, fmt.Errorf("couldn't create CA for %q: validity %v is not positive", party, validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("couldn't generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Parley"}, CommonName: party + " CA"},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		// The name constraint makes the CA unable to vouch for any other
		// trust domain, whoever verifies with it. Go matches URI constraints
		// on the URI's host, so "party" permits spiffe://party/... (and, per
		// RFC 5280, subdomains of it, which ParseIdentity never accepts).
		PermittedURIDomains: []string{party},
		// Marks the whole name constraints extension critical.
		PermittedDNSDomainsCritical: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("couldn't create CA certificate for %q: %w", party, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse new CA certificate for %q: %w", party, err)
	}
	return &CA{party: party, cert: cert, key: key}, nil
}

// LoadCA loads a CA from its PEM certificate and PEM private key (PKCS #8, or
// SEC 1 "EC PRIVATE KEY"), as written by [CA.CertPEM] and [CA.KeyPEM]. The
// certificate must be a CA whose name constraint permits exactly one trust
// domain, and the key must be its ECDSA P-256 key.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("couldn't load CA certificate: %w", err)
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("couldn't load CA certificate: got %d certificates, want 1", len(certs))
	}
	cert := certs[0]
	party, err := caTrustDomain(cert)
	if err != nil {
		return nil, fmt.Errorf("couldn't load CA certificate: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("couldn't load CA key for %q: %w", party, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("couldn't load CA for %q: the private key does not match the certificate", party)
	}
	return &CA{party: party, cert: cert, key: key}, nil
}

// caTrustDomain checks that cert is a Parley CA certificate and returns the
// single trust domain its name constraint permits.
func caTrustDomain(cert *x509.Certificate) (string, error) {
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return "", fmt.Errorf("certificate %q is not a CA", cert.Subject.CommonName)
	}
	if len(cert.PermittedURIDomains) != 1 {
		return "", fmt.Errorf("CA %q permits URI domains %q, want exactly one trust domain", cert.Subject.CommonName, cert.PermittedURIDomains)
	}
	party := cert.PermittedURIDomains[0]
	if err := ValidateID(party); err != nil {
		return "", fmt.Errorf("CA %q has an invalid trust domain in its name constraint: %w", cert.Subject.CommonName, err)
	}
	return party, nil
}

// Party returns the trust domain of the CA: its party id or mediator id.
func (ca *CA) Party() string { return ca.party }

// Certificate returns the CA certificate. The caller must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate, PEM encoded. This is what the agreement
// lists for the party and what goes into other parties' trust bundles.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// KeyPEM returns the CA private key as a PEM "PRIVATE KEY" (PKCS #8) block.
func (ca *CA) KeyPEM() ([]byte, error) {
	return keyPEM(ca.key)
}

// IssueRequest describes a leaf certificate for [CA.Issue].
type IssueRequest struct {
	// Role of the holder. A mediator's CA issues role mediator.
	Role Role
	// Name of the holder within the trust domain, a valid id (see ValidateID).
	Name string
	// DNSNames and IPs are added as DNS and IP SANs, for clients that verify
	// the server's host name (for example "localhost" and 127.0.0.1).
	DNSNames []string
	IPs      []net.IP
	// Validity is how long the certificate is valid from NotBefore (or from
	// now); it is cut short to the CA's own expiry. Required.
	Validity time.Duration
	// NotBefore is optional; when zero, the certificate is valid from now,
	// backdated by a few minutes to tolerate clock skew.
	NotBefore time.Time
}

// Issue issues a leaf certificate for spiffe://<ca party>/<role>/<name> with a
// fresh ECDSA P-256 key, usable for both TLS server and client
// authentication.
func (ca *CA) Issue(req IssueRequest) (*Leaf, error) {
	id := Identity{Party: ca.party, Role: req.Role, Name: req.Name}
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("couldn't issue certificate: %w", err)
	}
	if req.Validity <= 0 {
		return nil, fmt.Errorf("couldn't issue certificate for %s: validity %v is not positive", id, req.Validity)
	}
	for _, name := range req.DNSNames {
		if name == "" {
			return nil, fmt.Errorf("couldn't issue certificate for %s: empty DNS name", id)
		}
	}
	notBefore, notAfter := req.NotBefore, req.NotBefore.Add(req.Validity)
	if req.NotBefore.IsZero() {
		now := time.Now()
		notBefore, notAfter = now.Add(-clockSkew), now.Add(req.Validity)
	}
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	if !notAfter.After(notBefore) {
		return nil, fmt.Errorf("couldn't issue certificate for %s: CA %q expires at %v, before the certificate's start %v", id, ca.party, ca.cert.NotAfter, notBefore)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("couldn't generate key for %s: %w", id, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Parley"}, OrganizationalUnit: []string{ca.party}, CommonName: id.Name},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{id.URI()},
		DNSNames:              slices.Clone(req.DNSNames),
		IPAddresses:           slices.Clone(req.IPs),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("couldn't create certificate for %s: %w", id, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse new certificate for %s: %w", id, err)
	}
	return &Leaf{Identity: id, Cert: cert, Key: key}, nil
}

// Leaf is an issued leaf certificate and its private key.
type Leaf struct {
	// Identity is the SPIFFE identity in the certificate's URI SAN.
	Identity Identity
	// Cert is the parsed certificate.
	Cert *x509.Certificate
	// Key is the certificate's private key.
	Key *ecdsa.PrivateKey
}

// CertPEM returns the leaf certificate, PEM encoded.
func (l *Leaf) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: l.Cert.Raw})
}

// KeyPEM returns the leaf private key as a PEM "PRIVATE KEY" (PKCS #8) block.
func (l *Leaf) KeyPEM() ([]byte, error) {
	return keyPEM(l.Key)
}

// TLSCertificate returns the leaf as a certificate for a [tls.Config].
func (l *Leaf) TLSCertificate() (tls.Certificate, error) {
	if l.Cert == nil || l.Key == nil {
		return tls.Certificate{}, fmt.Errorf("couldn't build TLS certificate: leaf has no certificate or key")
	}
	if !l.Key.PublicKey.Equal(l.Cert.PublicKey) {
		return tls.Certificate{}, fmt.Errorf("couldn't build TLS certificate for %s: the key does not match the certificate", l.Identity)
	}
	return tls.Certificate{
		Certificate: [][]byte{l.Cert.Raw},
		PrivateKey:  l.Key,
		Leaf:        l.Cert,
	}, nil
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("couldn't generate serial number: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}

// keyPEM encodes key as a PKCS #8 "PRIVATE KEY" PEM block.
func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("couldn't marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseKeyPEM parses a single PEM ECDSA P-256 private key, PKCS #8 or SEC 1.
func parseKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && !bytes.HasPrefix(t, []byte("-----BEGIN ")) {
		return nil, fmt.Errorf("unexpected data before the PEM private key")
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no PEM private key found")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("unexpected data after the PEM private key")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, want \"PRIVATE KEY\"", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't parse private key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("private key is %T, want ECDSA P-256", key)
	}
	return ec, nil
}

// parseCertsPEM parses one or more PEM certificates. Any other PEM block, or
// trailing data that is not PEM, is an error.
func parseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	ders, err := PEMBlocks(data, "CERTIFICATE", "certificate")
	if err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, 0, len(ders))
	for i, der := range ders {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("couldn't parse certificate %d: %w", i+1, err)
		}
		certs = append(certs, cert)
	}
	return certs, nil
}
