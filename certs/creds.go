package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// ServerCredentials returns gRPC transport credentials for cfg (made with
// [ServerConfig]) that read the client's identity once per connection, when
// its handshake ends, instead of at every call: [PeerIdentity] then returns
// it from the connection's [AuthInfo]. A busy node's interceptors (metrics,
// call log, rate limit, authorization) ask for the identity four times a
// call.
func ServerCredentials(cfg *tls.Config) credentials.TransportCredentials {
	return identityCreds{credentials.NewTLS(cfg)}
}

// identityCreds wraps TLS transport credentials; see ServerCredentials.
type identityCreds struct {
	credentials.TransportCredentials
}

// ServerHandshake runs the TLS handshake and returns an AuthInfo that
// carries the verified leaf's identity.
func (c identityCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		return conn, info, err
	}
	if ti, ok := info.(credentials.TLSInfo); ok {
		return conn, newAuthInfo(ti), nil
	}
	return conn, info, nil
}

// Clone returns a copy that still reads identities at the handshake.
func (c identityCreds) Clone() credentials.TransportCredentials {
	return identityCreds{c.TransportCredentials.Clone()}
}

// AuthInfo is the TLS information of a connection served with
// [ServerCredentials], with its peer's identity read at the handshake.
type AuthInfo struct {
	credentials.TLSInfo
	identity Identity
	// identityErr is why the leaf has no identity, or nil.
	identityErr error
	// serial is the leaf's serial number in hexadecimal, as CRLs are
	// looked up.
	serial string
}

// errNoLeaf is the identity error of a peer that sent no certificate.
var errNoLeaf = errors.New("no client certificate")

// newAuthInfo reads the identity and serial number of ti's leaf.
func newAuthInfo(ti credentials.TLSInfo) AuthInfo {
	a := AuthInfo{TLSInfo: ti, identityErr: errNoLeaf}
	if leaf := a.leaf(); leaf != nil {
		a.identity, a.identityErr = IdentityFromCert(leaf)
		a.serial = leaf.SerialNumber.Text(16)
	}
	return a
}

// leaf is the peer's leaf certificate, or nil.
func (a AuthInfo) leaf() *x509.Certificate {
	if len(a.State.PeerCertificates) == 0 {
		return nil
	}
	return a.State.PeerCertificates[0]
}

// peerAuthInfo returns the TLS information of the peer of a gRPC call or
// stream: what was read at the handshake on a connection served with
// ServerCredentials, or read now from plain TLS information.
func peerAuthInfo(ctx context.Context) (AuthInfo, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return AuthInfo{}, false
	}
	switch info := p.AuthInfo.(type) {
	case AuthInfo:
		return info, true
	case credentials.TLSInfo:
		return newAuthInfo(info), true
	}
	return AuthInfo{}, false
}

// PeerIdentity returns the identity of the TLS peer of a gRPC call or stream,
// from the leaf certificate of the connection (State.PeerCertificates[0]),
// read at the handshake on connections served with [ServerCredentials].
//
// PeerIdentity does not verify the certificate again: it is only meaningful
// when the connection was established with [ServerConfig] or [ClientConfig],
// whose handshake verified that leaf against the trust bundle. It returns
// false when ctx carries no TLS peer or the leaf has no valid identity.
func PeerIdentity(ctx context.Context) (Identity, bool) {
	a, ok := peerAuthInfo(ctx)
	if !ok || a.identityErr != nil {
		return Identity{}, false
	}
	return a.identity, true
}

// PeerCertificate returns the leaf certificate of the TLS peer of a gRPC
// call or stream. Like [PeerIdentity], it is meaningful only on connections
// made with [ServerConfig] or [ClientConfig], whose handshake verified it.
func PeerCertificate(ctx context.Context) (*x509.Certificate, bool) {
	a, _ := peerAuthInfo(ctx)
	leaf := a.leaf()
	return leaf, leaf != nil
}
