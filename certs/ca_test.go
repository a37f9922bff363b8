package certs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/certs/certstest"
)

// oidNameConstraints is the X.509 name constraints extension.
var oidNameConstraints = asn1.ObjectIdentifier{2, 5, 29, 30}

func newTestCA(tb testing.TB, party string) *certs.CA {
	tb.Helper()
	return certstest.NewParty(tb, party).CA
}

// issue issues a leaf from ca, valid for an hour unless req says otherwise.
func issue(tb testing.TB, ca *certs.CA, req certs.IssueRequest) *certs.Leaf {
	tb.Helper()
	if req.Validity == 0 {
		req.Validity = time.Hour
	}
	leaf, err := ca.Issue(req)
	if err != nil {
		tb.Fatalf("Issue(%+v): %v", req, err)
	}
	return leaf
}

// handmade signs a leaf with ca's key for the given URI SANs and extended key
// usages, bypassing Issue's checks. It returns the certificate as a TLS
// certificate.
func handmade(tb testing.TB, ca *certs.CA, uris []string, usages ...x509.ExtKeyUsage) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("GenerateKey: %v", err)
	}
	if usages == nil {
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "handmade"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			tb.Fatalf("url.Parse(%q): %v", s, err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	cert, err := ca.SignTemplate(tmpl, key.Public())
	if err != nil {
		tb.Fatalf("SignTemplate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

func TestNewCA(t *testing.T) {
	ca, err := certs.NewCA("alpha", 48*time.Hour)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	c := ca.Certificate()
	if got, want := ca.Party(), "alpha"; got != want {
		t.Errorf("Party(): got %q, want %q", got, want)
	}
	if !c.IsCA || !c.BasicConstraintsValid || !c.MaxPathLenZero || c.MaxPathLen != 0 {
		t.Errorf("basic constraints: got IsCA=%v valid=%v MaxPathLen=%d zero=%v, want a CA with path length 0", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("key usage: got %v, want CertSign", c.KeyUsage)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key: got %T, want ECDSA P-256", c.PublicKey)
	}
	if got, want := c.PermittedURIDomains, []string{"alpha"}; !slices.Equal(got, want) {
		t.Errorf("PermittedURIDomains: got %q, want %q", got, want)
	}
	if len(c.PermittedDNSDomains)+len(c.ExcludedDNSDomains)+len(c.ExcludedURIDomains) != 0 {
		t.Errorf("other name constraints: got DNS %q, excluded DNS %q, excluded URI %q, want none", c.PermittedDNSDomains, c.ExcludedDNSDomains, c.ExcludedURIDomains)
	}
	var found bool
	for _, ext := range c.Extensions {
		if ext.Id.Equal(oidNameConstraints) {
			found = true
			if !ext.Critical {
				t.Errorf("name constraints extension: got critical=false, want true")
			}
		}
	}
	if !found {
		t.Errorf("name constraints extension: got none, want one")
	}
	if got := time.Until(c.NotAfter); got < 47*time.Hour || got > 48*time.Hour {
		t.Errorf("remaining validity: got %v, want about 48h", got)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CheckSignatureFrom(self): got %v, want self-signed", err)
	}
}

func TestNewCAErrors(t *testing.T) {
	tests := []struct {
		name     string
		party    string
		validity time.Duration
		wantErr  string
	}{
		{"empty party", "", time.Hour, "invalid party"},
		{"upper case", "Alpha", time.Hour, "invalid party"},
		{"dotted", "alpha.example", time.Hour, "invalid party"},
		{"zero validity", "alpha", 0, "not positive"},
		{"negative validity", "alpha", -time.Hour, "not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := certs.NewCA(tt.party, tt.validity)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewCA(%q, %v): got error %v, want it to contain %q", tt.party, tt.validity, err, tt.wantErr)
			}
		})
	}
}

// TestNameConstraintSemantics pins down how crypto/x509 applies the CA's URI
// name constraint (PermittedURIDomains = ["alpha"]) to SPIFFE URIs: it
// matches the URI's host case-insensitively, whole labels only, and also
// permits subdomains, which ParseIdentity then refuses. IdentityFromCert only
// parses the SAN; the chain check is what rejects a foreign trust domain.
func TestNameConstraintSemantics(t *testing.T) {
	alpha := newTestCA(t, "alpha")
	roots := x509.NewCertPool()
	roots.AddCert(alpha.Certificate())

	tests := []struct {
		name           string
		uri            string
		wantChainOK    bool
		wantIdentityOK bool
	}{
		{"own trust domain", "spiffe://alpha/node/n1", true, true},
		{"other trust domain", "spiffe://bravo/operator/x", false, true},
		{"longer label", "spiffe://alphabet/node/n1", false, true},
		{"label suffix", "spiffe://beta-alpha/node/n1", false, true},
		{"prefix label", "spiffe://alpha.bravo/node/n1", false, false},
		{"subdomain", "spiffe://x.alpha/node/n1", true, false},
		{"upper case", "spiffe://ALPHA/node/n1", true, false},
		{"empty host", "spiffe:///node/n1", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// x509.CreateCertificate does not enforce the parent's name
			// constraints, so alpha's CA can sign any of these; Verify must
			// catch the ones the constraint forbids.
			leaf := handmade(t, alpha, []string{tt.uri}).Leaf
			_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			if gotOK := err == nil; gotOK != tt.wantChainOK {
				t.Errorf("Verify(%s): got error %v, want ok=%v", tt.uri, err, tt.wantChainOK)
			}
			var invalid x509.CertificateInvalidError
			if err != nil && (!errors.As(err, &invalid) || invalid.Reason != x509.CANotAuthorizedForThisName) {
				t.Errorf("Verify(%s): got error %v, want CANotAuthorizedForThisName", tt.uri, err)
			}
			_, err = certs.IdentityFromCert(leaf)
			if gotOK := err == nil; gotOK != tt.wantIdentityOK {
				t.Errorf("IdentityFromCert(%s): got error %v, want ok=%v", tt.uri, err, tt.wantIdentityOK)
			}
		})
	}
}

func TestIssue(t *testing.T) {
	alpha := newTestCA(t, "alpha")
	leaf := issue(t, alpha, certs.IssueRequest{
		Role:     certs.RoleNode,
		Name:     "node1",
		DNSNames: []string{"localhost", "node1.alpha.example"},
		IPs:      []net.IP{net.IPv4(127, 0, 0, 1)},
		Validity: 2 * time.Hour,
	})
	c := leaf.Cert
	want := certs.Identity{Party: "alpha", Role: certs.RoleNode, Name: "node1"}
	if leaf.Identity != want {
		t.Errorf("Identity: got %+v, want %+v", leaf.Identity, want)
	}
	if got, err := certs.IdentityFromCert(c); err != nil || got != want {
		t.Errorf("IdentityFromCert: got %+v, %v, want %+v", got, err, want)
	}
	if len(c.URIs) != 1 || c.URIs[0].String() != "spiffe://alpha/node/node1" {
		t.Errorf("URIs: got %v, want [spiffe://alpha/node/node1]", c.URIs)
	}
	if got, want := c.DNSNames, []string{"localhost", "node1.alpha.example"}; !slices.Equal(got, want) {
		t.Errorf("DNSNames: got %q, want %q", got, want)
	}
	if len(c.IPAddresses) != 1 || !c.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("IPAddresses: got %v, want [127.0.0.1]", c.IPAddresses)
	}
	wantEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if !slices.Equal(c.ExtKeyUsage, wantEKU) {
		t.Errorf("ExtKeyUsage: got %v, want %v", c.ExtKeyUsage, wantEKU)
	}
	if c.IsCA {
		t.Errorf("IsCA: got true, want false")
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key: got %T, want ECDSA P-256", c.PublicKey)
	}
	if got := time.Until(c.NotAfter); got < time.Hour || got > 2*time.Hour {
		t.Errorf("remaining validity: got %v, want about 2h", got)
	}
	if err := c.CheckSignatureFrom(alpha.Certificate()); err != nil {
		t.Errorf("CheckSignatureFrom(CA): %v", err)
	}
	tc, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatalf("TLSCertificate: %v", err)
	}
	if len(tc.Certificate) != 1 || tc.Leaf != c {
		t.Errorf("TLSCertificate: got %d certificates, want the leaf only", len(tc.Certificate))
	}
	block, _ := pem.Decode(leaf.CertPEM())
	if block == nil || block.Type != "CERTIFICATE" {
		t.Errorf("CertPEM: got %v, want a CERTIFICATE block", block)
	}
	keyPEM, err := leaf.KeyPEM()
	if err != nil {
		t.Fatalf("KeyPEM: %v", err)
	}
	if _, err := tls.X509KeyPair(leaf.CertPEM(), keyPEM); err != nil {
		t.Errorf("tls.X509KeyPair(CertPEM, KeyPEM): %v", err)
	}

	t.Run("clipped to CA expiry", func(t *testing.T) {
		long := issue(t, alpha, certs.IssueRequest{Role: certs.RoleOperator, Name: "long", Validity: 1000 * time.Hour})
		if got, want := long.Cert.NotAfter, alpha.Certificate().NotAfter; !got.Equal(want) {
			t.Errorf("NotAfter: got %v, want the CA's %v", got, want)
		}
	})
	t.Run("explicit NotBefore", func(t *testing.T) {
		start := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
		old := issue(t, alpha, certs.IssueRequest{Role: certs.RoleOperator, Name: "old", NotBefore: start, Validity: time.Hour})
		if !old.Cert.NotBefore.Equal(start) || !old.Cert.NotAfter.Equal(start.Add(time.Hour)) {
			t.Errorf("validity: got %v to %v, want %v to %v", old.Cert.NotBefore, old.Cert.NotAfter, start, start.Add(time.Hour))
		}
	})
}

func TestIssueErrors(t *testing.T) {
	alpha := newTestCA(t, "alpha")
	tests := []struct {
		name    string
		req     certs.IssueRequest
		wantErr string
	}{
		{"no role", certs.IssueRequest{Name: "n1", Validity: time.Hour}, "invalid role"},
		{"unknown role", certs.IssueRequest{Role: "admin", Name: "n1", Validity: time.Hour}, "invalid role"},
		{"no name", certs.IssueRequest{Role: certs.RoleNode, Validity: time.Hour}, "invalid name"},
		{"bad name", certs.IssueRequest{Role: certs.RoleNode, Name: "n/1", Validity: time.Hour}, "invalid name"},
		{"no validity", certs.IssueRequest{Role: certs.RoleNode, Name: "n1"}, "not positive"},
		{"empty DNS name", certs.IssueRequest{Role: certs.RoleNode, Name: "n1", Validity: time.Hour, DNSNames: []string{""}}, "empty DNS name"},
		{"after CA expiry", certs.IssueRequest{Role: certs.RoleNode, Name: "n1", Validity: time.Hour, NotBefore: time.Now().Add(100 * 24 * time.Hour)}, "expires"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := alpha.Issue(tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Issue(%+v): got error %v, want it to contain %q", tt.req, err, tt.wantErr)
			}
		})
	}
}

func TestLoadCA(t *testing.T) {
	alpha := newTestCA(t, "alpha")
	keyPEM, err := alpha.KeyPEM()
	if err != nil {
		t.Fatalf("KeyPEM: %v", err)
	}
	loaded, err := certs.LoadCA(alpha.CertPEM(), keyPEM)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if got, want := loaded.Party(), "alpha"; got != want {
		t.Errorf("Party(): got %q, want %q", got, want)
	}
	if !loaded.Certificate().Equal(alpha.Certificate()) {
		t.Errorf("Certificate(): got a different certificate, want the original")
	}
	leaf := issue(t, loaded, certs.IssueRequest{Role: certs.RoleNode, Name: "n1"})
	if err := leaf.Cert.CheckSignatureFrom(alpha.Certificate()); err != nil {
		t.Errorf("leaf of loaded CA: got %v, want signed by the original CA", err)
	}

	t.Run("SEC 1 key", func(t *testing.T) {
		block, _ := pem.Decode(keyPEM)
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		sec1 := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
		if _, err := certs.LoadCA(alpha.CertPEM(), sec1); err != nil {
			t.Errorf("LoadCA with SEC 1 key: %v", err)
		}
	})

	bravo := newTestCA(t, "bravo")
	bravoKey, err := bravo.KeyPEM()
	if err != nil {
		t.Fatalf("KeyPEM: %v", err)
	}
	leafKey, err := leaf.KeyPEM()
	if err != nil {
		t.Fatalf("KeyPEM: %v", err)
	}
	tests := []struct {
		name    string
		cert    []byte
		key     []byte
		wantErr string
	}{
		{"other CA's key", alpha.CertPEM(), bravoKey, "does not match"},
		{"leaf as CA", leaf.CertPEM(), leafKey, "not a CA"},
		{"no certificate", nil, keyPEM, "no PEM certificate"},
		{"two certificates", append(alpha.CertPEM(), bravo.CertPEM()...), keyPEM, "want 1"},
		{"trailing garbage", append(alpha.CertPEM(), "junk"...), keyPEM, "unexpected data"},
		{"key as certificate", keyPEM, keyPEM, "want \"CERTIFICATE\""},
		{"no key", alpha.CertPEM(), nil, "no PEM private key"},
		{"certificate as key", alpha.CertPEM(), alpha.CertPEM(), "want \"PRIVATE KEY\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := certs.LoadCA(tt.cert, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("LoadCA: got error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestIdentityFromCertErrors(t *testing.T) {
	alpha := newTestCA(t, "alpha")
	tests := []struct {
		name    string
		uris    []string
		wantErr string
	}{
		{"no URI SAN", nil, "0 URI SANs"},
		{"two URI SANs", []string{"spiffe://alpha/node/a", "spiffe://alpha/node/b"}, "2 URI SANs"},
		{"not SPIFFE", []string{"https://alpha/node/a"}, "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf := handmade(t, alpha, tt.uris).Leaf
			_, err := certs.IdentityFromCert(leaf)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("IdentityFromCert: got error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	if _, err := certs.IdentityFromCert(nil); err == nil {
		t.Errorf("IdentityFromCert(nil): got nil error, want error")
	}
}
