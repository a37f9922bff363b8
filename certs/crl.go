package certs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrRevoked is wrapped by verification errors for a certificate that the CA
// which issued it has revoked.
var ErrRevoked = errors.New("certificate revoked")

// crlPEMType is the PEM block type of a certificate revocation list.
const crlPEMType = "X509 CRL"

// RevocationList returns a CRL (RFC 5280) signed by the CA that lists
// entries, PEM encoded ("X509 CRL"). number is the CRL number, which must
// grow with every CRL the CA issues: [Revocations.Reload] refuses a CRL whose
// number is lower than the one in force. The CRL is valid from thisUpdate;
// nextUpdate says when the next one is due.
func (ca *CA) RevocationList(entries []x509.RevocationListEntry, number *big.Int, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	if number == nil || number.Sign() < 0 {
		return nil, fmt.Errorf("couldn't create CRL for %q: CRL number must be zero or more", ca.party)
	}
	if !nextUpdate.After(thisUpdate) {
		return nil, fmt.Errorf("couldn't create CRL for %q: next update %v is not after this update %v", ca.party, nextUpdate, thisUpdate)
	}
	tmpl := &x509.RevocationList{
		RevokedCertificateEntries: slices.Clone(entries),
		Number:                    number,
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		return nil, fmt.Errorf("couldn't create CRL for %q: %w", ca.party, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: crlPEMType, Bytes: der}), nil
}

// ParseRevocationLists parses one or more PEM "X509 CRL" blocks, or a single
// DER CRL. It does not check signatures; see [VerifyRevocationList].
func ParseRevocationLists(data []byte) ([]*x509.RevocationList, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		crl, err := x509.ParseRevocationList(data)
		if err != nil {
			return nil, fmt.Errorf("couldn't parse DER CRL: %w", err)
		}
		return []*x509.RevocationList{crl}, nil
	}
	ders, err := PEMBlocks(data, crlPEMType, "CRL")
	if err != nil {
		return nil, err
	}
	var crls []*x509.RevocationList
	for i, der := range ders {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("couldn't parse CRL %d: %w", i+1, err)
		}
		crls = append(crls, crl)
	}
	return crls, nil
}

// VerifyRevocationList checks that crl was issued and signed by ca, a CA
// allowed to sign CRLs, and returns ca's trust domain.
func VerifyRevocationList(crl *x509.RevocationList, ca *x509.Certificate) (string, error) {
	domain, err := caTrustDomain(ca)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(crl.RawIssuer, ca.RawSubject) {
		return "", fmt.Errorf("CRL issuer %q is not CA %q", crl.Issuer, ca.Subject)
	}
	if len(crl.AuthorityKeyId) > 0 && len(ca.SubjectKeyId) > 0 && !bytes.Equal(crl.AuthorityKeyId, ca.SubjectKeyId) {
		return "", fmt.Errorf("CRL authority key id %x is not the key id %x of CA %q", crl.AuthorityKeyId, ca.SubjectKeyId, ca.Subject)
	}
	if err := crl.CheckSignatureFrom(ca); err != nil {
		return "", fmt.Errorf("CRL is not signed by CA %q of trust domain %q: %w", ca.Subject, domain, err)
	}
	return domain, nil
}

// CRLStatus describes one CRL in force, for logs and metrics.
type CRLStatus struct {
	// Domain is the trust domain whose CA signed the CRL.
	Domain string
	// File is the file it was read from.
	File string
	// Number is the CRL number, nil if the CRL has none.
	Number *big.Int
	// ThisUpdate and NextUpdate are the CRL's validity. A CRL past its
	// NextUpdate stays in force until a newer one is loaded.
	ThisUpdate, NextUpdate time.Time
	// Revoked is the number of serial numbers it lists.
	Revoked int
}

// Revocations is the set of CRLs in force, read from one file per trust
// domain. Each file holds the CRLs (PEM, or one DER CRL) of that domain's
// CAs; every CRL must be signed by one of the CAs the trust bundle lists
// for the domain. A certificate is revoked when the CRL of the CA that
// issued it lists its serial number.
//
// Revocations is safe for concurrent use. [Revocations.Reload] replaces the
// whole set at once, and only if every file is valid: a check sees either
// the old set or the new one, never a mix.
type Revocations struct {
	bundle *TrustBundle
	files  map[string]string // trust domain → file

	reload sync.Mutex // serializes Reload
	set    atomic.Pointer[crlSet]
}

// crlSet is an immutable set of verified CRLs.
type crlSet struct {
	domains map[string][]*loadedCRL
}

// loadedCRL is one verified CRL and the CA that signed it.
type loadedCRL struct {
	file    string
	ca      *x509.Certificate
	crl     *x509.RevocationList
	revoked map[string]x509.RevocationListEntry // by serial, hex
}

// LoadRevocations reads the CRL files, keyed by trust domain, and verifies
// each CRL against the CAs that bundle lists for its domain. An empty files
// map revokes nothing.
func LoadRevocations(bundle *TrustBundle, files map[string]string) (*Revocations, error) {
	if bundle == nil {
		return nil, errors.New("couldn't load CRLs: no trust bundle")
	}
	for _, domain := range slices.Sorted(maps.Keys(files)) {
		if _, ok := bundle.cas[domain]; !ok {
			return nil, fmt.Errorf("couldn't load CRLs: %w %q for CRL file %s (the trust bundle lists %s)", ErrUnknownTrustDomain, domain, files[domain], bundle.Domains())
		}
	}
	r := &Revocations{bundle: bundle, files: maps.Clone(files)}
	r.set.Store(&crlSet{})
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Files returns the CRL files, sorted, for a caller that watches them.
func (r *Revocations) Files() []string {
	if r == nil {
		return nil
	}
	return slices.Sorted(maps.Values(r.files))
}

// Reload reads every CRL file again and, if all of them are valid, puts
// the new set in force. A CRL must be signed by a CA of its file's trust
// domain, at most one CRL per CA, and a CRL may not replace one of the same
// CA with a higher CRL number (a replayed, older CRL could un-revoke a
// certificate). On error the previous set stays in force.
func (r *Revocations) Reload() error {
	r.reload.Lock()
	defer r.reload.Unlock()
	old := r.set.Load()
	next := &crlSet{domains: map[string][]*loadedCRL{}}
	for _, domain := range slices.Sorted(maps.Keys(r.files)) {
		loaded, err := r.loadFile(domain, r.files[domain], old)
		if err != nil {
			return err
		}
		next.domains[domain] = loaded
	}
	r.set.Store(next)
	return nil
}

// loadFile reads and verifies the CRL file of one trust domain.
func (r *Revocations) loadFile(domain, file string, old *crlSet) ([]*loadedCRL, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the CRL of %q: %w", domain, err)
	}
	crls, err := ParseRevocationLists(data)
	if err != nil {
		return nil, fmt.Errorf("couldn't load the CRL of %q from %s: %w", domain, file, err)
	}
	var out []*loadedCRL
	for i, crl := range crls {
		ca, err := r.issuer(domain, crl)
		if err != nil {
			return nil, fmt.Errorf("couldn't load CRL %d of %q from %s: %w", i+1, domain, file, err)
		}
		for _, l := range out {
			if l.ca == ca {
				return nil, fmt.Errorf("couldn't load the CRL of %q from %s: two CRLs of CA %q", domain, file, ca.Subject)
			}
		}
		for _, prev := range old.domains[domain] {
			if prev.ca == ca && prev.crl.Number != nil && crl.Number != nil && crl.Number.Cmp(prev.crl.Number) < 0 {
				return nil, fmt.Errorf("couldn't load the CRL of %q from %s: its number %v is lower than the %v in force (an older CRL)", domain, file, crl.Number, prev.crl.Number)
			}
		}
		l := &loadedCRL{file: file, ca: ca, crl: crl, revoked: make(map[string]x509.RevocationListEntry, len(crl.RevokedCertificateEntries))}
		for _, e := range crl.RevokedCertificateEntries {
			l.revoked[e.SerialNumber.Text(16)] = e
		}
		out = append(out, l)
	}
	return out, nil
}

// issuer returns the CA of domain that signed crl.
func (r *Revocations) issuer(domain string, crl *x509.RevocationList) (*x509.Certificate, error) {
	var errs []error
	for _, ca := range r.bundle.cas[domain] {
		_, err := VerifyRevocationList(crl, ca)
		if err == nil {
			return ca, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("not signed by any CA of trust domain %q: %w", domain, errors.Join(errs...))
}

// Check reports whether leaf, a certificate already verified against the
// trust bundle, is revoked: it returns an error wrapping [ErrRevoked] if the
// CRL in force of the CA that issued it lists its serial number. The issuing
// CA is found by the leaf's authority key id (or, without one, its issuer
// name).
func (r *Revocations) Check(leaf *x509.Certificate) error {
	if r == nil || leaf == nil {
		return nil
	}
	id, err := IdentityFromCert(leaf)
	if err != nil {
		return err
	}
	return r.check(leaf, id, leaf.SerialNumber.Text(16))
}

// CheckPeer is Check of the leaf certificate of the TLS peer of a gRPC call
// or stream, if it has one. On connections served with [ServerCredentials]
// it uses the identity and serial number read at the handshake.
func (r *Revocations) CheckPeer(ctx context.Context) error {
	a, _ := peerAuthInfo(ctx)
	leaf := a.leaf()
	if r == nil || leaf == nil {
		return nil
	}
	if a.identityErr != nil {
		return a.identityErr
	}
	return r.check(leaf, a.identity, a.serial)
}

// check is Check of leaf, whose identity is id and serial number, in
// hexadecimal, serial.
func (r *Revocations) check(leaf *x509.Certificate, id Identity, serial string) error {
	for _, l := range r.set.Load().domains[id.Party] {
		if !issuedBy(leaf, l.ca) {
			continue
		}
		if e, ok := l.revoked[serial]; ok {
			return fmt.Errorf("%w: %s (serial %s) was revoked by the CA of %q on %s", ErrRevoked, id, serial, id.Party, e.RevocationTime.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// issuedBy reports whether leaf names ca as its issuer.
func issuedBy(leaf, ca *x509.Certificate) bool {
	if len(leaf.AuthorityKeyId) > 0 && len(ca.SubjectKeyId) > 0 {
		return bytes.Equal(leaf.AuthorityKeyId, ca.SubjectKeyId)
	}
	return bytes.Equal(leaf.RawIssuer, ca.RawSubject)
}

// Status describes the CRLs in force, sorted by trust domain.
func (r *Revocations) Status() []CRLStatus {
	if r == nil {
		return nil
	}
	set := r.set.Load()
	var out []CRLStatus
	for _, domain := range slices.Sorted(maps.Keys(set.domains)) {
		for _, l := range set.domains[domain] {
			out = append(out, CRLStatus{
				Domain: domain, File: l.file, Number: l.crl.Number,
				ThisUpdate: l.crl.ThisUpdate, NextUpdate: l.crl.NextUpdate,
				Revoked: len(l.revoked),
			})
		}
	}
	return out
}
