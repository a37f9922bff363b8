package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
)

// ServerConfig returns a TLS 1.3 server configuration that presents the
// certificate returned by getCert and requires a client certificate on every
// connection. The client is authenticated by [TrustBundle.Verify]: its
// identity is read from the leaf's single URI SAN and its chain must verify,
// for client authentication, against the CAs of that identity's own trust
// domain. Any role is accepted; authorization is up to the caller (see
// [PeerIdentity]).
//
// getCert is called on every handshake, so it may return a reloaded
// certificate (see [KeyPair.Certificate] and [Static]).
func ServerConfig(bundle *TrustBundle, getCert func() (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if getCert == nil {
				return nil, fmt.Errorf("couldn't get server certificate: none configured")
			}
			return getCert()
		},
		// RequireAnyClientCert makes crypto/tls demand a certificate but leave
		// its verification to VerifyConnection, because the CA pool to verify
		// against depends on the trust domain the certificate claims.
		ClientAuth: tls.RequireAnyClientCert,
		// VerifyConnection also runs on resumed sessions, unlike
		// VerifyPeerCertificate, so every connection is checked again.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if _, err := bundle.Verify(cs.PeerCertificates, x509.ExtKeyUsageClientAuth); err != nil {
				return fmt.Errorf("couldn't verify client certificate: %w", err)
			}
			return nil
		},
	}
}

// ClientConfig returns a TLS 1.3 client configuration that presents the
// certificate returned by getCert (nil getCert presents none, which Parley
// servers refuse) and authenticates the server by [TrustBundle.Verify]: its
// chain must verify, for server authentication, against the CAs of the trust
// domain in its own URI SAN. The server must have role node or mediator and,
// if expectParty is not empty, belong to trust domain expectParty.
//
// When the connection has a server name (tls.Config.ServerName, which gRPC
// fills from the target's host name), the server certificate must also match
// it by DNS SAN. crypto/tls does not report an IP address server name in the
// connection state (IPs are never sent as SNI), so IP SANs are not checked;
// the SPIFFE identity is what authenticates the server either way.
func ClientConfig(bundle *TrustBundle, getCert func() (*tls.Certificate, error), expectParty string) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		// InsecureSkipVerify turns off only crypto/tls's built-in verification,
		// which checks the chain against a single RootCAs pool that would let
		// any party's CA vouch for any name. VerifyConnection below does the
		// complete verification instead: chain to the CAs of the trust domain
		// the server claims, key usage, expiry, role, expected party and host
		// name. It runs on every handshake, including resumed ones.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServer(bundle, cs, expectParty)
		},
	}
	if getCert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return getCert()
		}
	}
	return cfg
}

// verifyServer is the client-side VerifyConnection of ClientConfig.
func verifyServer(bundle *TrustBundle, cs tls.ConnectionState, expectParty string) error {
	id, err := bundle.Verify(cs.PeerCertificates, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return fmt.Errorf("couldn't verify server certificate: %w", err)
	}
	if id.Role != RoleNode && id.Role != RoleMediator {
		return fmt.Errorf("couldn't verify server certificate: server is %s, whose role %q may not serve; want %q or %q", id, id.Role, RoleNode, RoleMediator)
	}
	if expectParty != "" && id.Party != expectParty {
		return fmt.Errorf("couldn't verify server certificate: server is %s, want a server of trust domain %q", id, expectParty)
	}
	if cs.ServerName != "" {
		if err := cs.PeerCertificates[0].VerifyHostname(cs.ServerName); err != nil {
			return fmt.Errorf("couldn't verify server certificate: server %s is not valid for host name %q: %w", id, cs.ServerName, err)
		}
	}
	return nil
}

// Static returns a getCert function for [ServerConfig] and [ClientConfig]
// that always returns cert.
func Static(cert tls.Certificate) func() (*tls.Certificate, error) {
	return func() (*tls.Certificate, error) { return &cert, nil }
}

// KeyPair is a certificate and key loaded from PEM files that can be reloaded,
// for example after the files were renewed. It is safe for concurrent use:
// handshakes always see either the old or the new pair.
type KeyPair struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// LoadKeyPair loads a PEM certificate and PEM private key from files. The
// certificate must carry a valid Parley identity.
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	kp := &KeyPair{certFile: certFile, keyFile: keyFile}
	if err := kp.Reload(); err != nil {
		return nil, err
	}
	return kp, nil
}

// Reload reads the files again. On error the previous pair stays in use.
func (kp *KeyPair) Reload() error {
	cert, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		return fmt.Errorf("couldn't load key pair %s: %w", kp.certFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("couldn't parse certificate %s: %w", kp.certFile, err)
		}
	}
	if _, err := IdentityFromCert(cert.Leaf); err != nil {
		return fmt.Errorf("couldn't load key pair %s: %w", kp.certFile, err)
	}
	kp.cert.Store(&cert)
	return nil
}

// Files returns the certificate and key files, for a caller that watches
// them to call Reload when they change.
func (kp *KeyPair) Files() []string {
	return []string{kp.certFile, kp.keyFile}
}

// Identity returns the identity of the current certificate.
func (kp *KeyPair) Identity() Identity {
	c := kp.cert.Load()
	if c == nil {
		return Identity{}
	}
	// Reload only stores certificates with a valid identity.
	id, _ := IdentityFromCert(c.Leaf)
	return id
}

// Certificate returns the current certificate. It has the getCert signature of
// [ServerConfig] and [ClientConfig].
func (kp *KeyPair) Certificate() (*tls.Certificate, error) {
	c := kp.cert.Load()
	if c == nil {
		return nil, fmt.Errorf("couldn't get certificate: none loaded, use LoadKeyPair")
	}
	return c, nil
}

// GetCertificate returns the current certificate, for tls.Config.GetCertificate.
func (kp *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return kp.Certificate()
}

// GetClientCertificate returns the current certificate, for
// tls.Config.GetClientCertificate.
func (kp *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return kp.Certificate()
}
