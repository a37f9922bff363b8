package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
	ti, ok := info.(credentials.TLSInfo)
	if !ok {
		return conn, info, nil
	}
	a := AuthInfo{TLSInfo: ti}
	if len(ti.State.PeerCertificates) > 0 {
		leaf := ti.State.PeerCertificates[0]
		a.identity, a.identityErr = IdentityFromCert(leaf)
		a.hasIdentity = a.identityErr == nil
		a.serial = leaf.SerialNumber.Text(16)
	}
	return conn, a, nil
}

// Clone returns a copy that still reads identities at the handshake.
func (c identityCreds) Clone() credentials.TransportCredentials {
	return identityCreds{c.TransportCredentials.Clone()}
}

// AuthInfo is the TLS information of a connection served with
// [ServerCredentials], with its peer's identity read at the handshake.
type AuthInfo struct {
	credentials.TLSInfo
	identity    Identity
	identityErr error
	hasIdentity bool
	// serial is the leaf's serial number in hexadecimal, as CRLs are
	// looked up.
	serial string
}

// tlsState returns the TLS state of the peer of a gRPC call or stream and,
// if the connection was served with ServerCredentials, what was read at its
// handshake (cached true).
func tlsState(ctx context.Context) (state *tls.ConnectionState, info AuthInfo, cached bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return nil, AuthInfo{}, false
	}
	switch info := p.AuthInfo.(type) {
	case AuthInfo:
		return &info.State, info, true
	case credentials.TLSInfo:
		return &info.State, AuthInfo{}, false
	}
	return nil, AuthInfo{}, false
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
	state, info, cached := tlsState(ctx)
	if cached {
		return info.identity, info.hasIdentity
	}
	if state == nil || len(state.PeerCertificates) == 0 {
		return Identity{}, false
	}
	id, err := IdentityFromCert(state.PeerCertificates[0])
	if err != nil {
		return Identity{}, false
	}
	return id, true
}

// PeerCertificate returns the leaf certificate of the TLS peer of a gRPC
// call or stream. Like [PeerIdentity], it is meaningful only on connections
// made with [ServerConfig] or [ClientConfig], whose handshake verified it.
func PeerCertificate(ctx context.Context) (*x509.Certificate, bool) {
	state, _, _ := tlsState(ctx)
	if state == nil || len(state.PeerCertificates) == 0 {
		return nil, false
	}
	return state.PeerCertificates[0], true
}
