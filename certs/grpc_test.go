package certs_test

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/certs/certstest"
)

// TestGRPCPeerIdentity runs a gRPC server and client over loopback with
// ServerConfig and ClientConfig and checks the identity a handler sees.
func TestGRPCPeerIdentity(t *testing.T) {
	alpha := certstest.NewParty(t, "alpha")
	bravo := certstest.NewParty(t, "bravo")
	bundle := certstest.Bundle(t, alpha, bravo)

	seen := make(chan certs.Identity, 1)
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(certs.ServerConfig(bundle, certs.Static(alpha.Leaf(t, certs.RoleNode, "node1"))))),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if id, ok := certs.PeerIdentity(ctx); ok {
				seen <- id
			}
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
	if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	want := certs.Identity{Party: "bravo", Role: certs.RoleNode, Name: "node1"}
	select {
	case got := <-seen:
		if got != want {
			t.Errorf("PeerIdentity in handler: got %+v, want %+v", got, want)
		}
	default:
		t.Errorf("PeerIdentity in handler: got none, want %+v", want)
	}
}
