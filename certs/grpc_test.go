package certs_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/certs/certstest"
)

// TestGRPCPeerIdentity runs a gRPC server and client over loopback with
// ServerConfig and ClientConfig, the server's credentials plain TLS or
// ServerCredentials, and checks the identity and certificate a handler sees
// at each of two calls on one connection.
func TestGRPCPeerIdentity(t *testing.T) {
	for name, creds := range map[string]func(*tls.Config) credentials.TransportCredentials{
		"tls":                     credentials.NewTLS,
		"ServerCredentials":       certs.ServerCredentials,
		"ServerCredentials.Clone": func(c *tls.Config) credentials.TransportCredentials { return certs.ServerCredentials(c).Clone() },
	} {
		t.Run(name, func(t *testing.T) { testGRPCPeerIdentity(t, creds, name != "tls") })
	}
}

func testGRPCPeerIdentity(t *testing.T, serverCreds func(*tls.Config) credentials.TransportCredentials, readAtHandshake bool) {
	alpha := certstest.NewParty(t, "alpha")
	bravo := certstest.NewParty(t, "bravo")
	bundle := certstest.Bundle(t, alpha, bravo)

	type seenCall struct {
		id      certs.Identity
		leafURI string
		auth    credentials.AuthInfo
	}
	seen := make(chan seenCall, 2)
	srv := grpc.NewServer(
		grpc.Creds(serverCreds(certs.ServerConfig(bundle, certs.Static(alpha.Leaf(t, certs.RoleNode, "node1"))))),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			var c seenCall
			c.id, _ = certs.PeerIdentity(ctx)
			if leaf, ok := certs.PeerCertificate(ctx); ok && len(leaf.URIs) == 1 {
				c.leafURI = leaf.URIs[0].String()
			}
			if p, ok := peer.FromContext(ctx); ok {
				c.auth = p.AuthInfo
			}
			seen <- c
			return handler(ctx, req)
		}),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("net.Listen: %v", err)
	}
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)

	// The target's host, localhost, becomes the TLS server name, which the
	// node certificate's DNS SAN must match.
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	creds := credentials.NewTLS(certs.ClientConfig(bundle, certs.Static(bravo.Leaf(t, certs.RoleNode, "node1")), "alpha"))
	conn, err := grpc.NewClient("localhost:"+port, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	want := certs.Identity{Party: "bravo", Role: certs.RoleNode, Name: "node1"}
	for call := range 2 {
		if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("Check: %v", err)
		}
		var got seenCall
		select {
		case got = <-seen:
		default:
			t.Fatalf("call %d: the handler saw no call", call)
		}
		if got.id != want {
			t.Errorf("call %d: PeerIdentity in handler: got %+v, want %+v", call, got.id, want)
		}
		if got.leafURI != "spiffe://bravo/node/node1" {
			t.Errorf("call %d: PeerCertificate in handler: URI %q, want spiffe://bravo/node/node1", call, got.leafURI)
		}
		if got.auth == nil || got.auth.AuthType() != "tls" {
			t.Fatalf("call %d: AuthInfo %#v, want TLS", call, got.auth)
		}
		if _, ok := got.auth.(certs.AuthInfo); ok != readAtHandshake {
			t.Errorf("call %d: AuthInfo is %T, want certs.AuthInfo: %t", call, got.auth, readAtHandshake)
		}
		// gRPC's own checks of the connection's security still see it.
		if err := credentials.CheckSecurityLevel(got.auth, credentials.PrivacyAndIntegrity); err != nil {
			t.Errorf("call %d: CheckSecurityLevel: %v", call, err)
		}
	}
}
