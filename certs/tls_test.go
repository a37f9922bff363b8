package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/certs/certstest"
)

// handshakeResult is what each side of a TLS handshake saw.
type handshakeResult struct {
	serverErr, clientErr     error
	serverState, clientState tls.ConnectionState
}

// handshake runs a real TLS handshake over loopback TCP between a tls.Server
// with serverCfg and a tls.Client with clientCfg.
func handshake(tb testing.TB, serverCfg, clientCfg *tls.Config) handshakeResult {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("net.Listen: %v", err)
	}
	tb.Cleanup(func() { ln.Close() })
	deadline := time.Now().Add(10 * time.Second)

	type serverResult struct {
		err   error
		state tls.ConnectionState
	}
	done := make(chan serverResult, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- serverResult{err: err}
			return
		}
		defer conn.Close()
		conn.SetDeadline(deadline)
		tc := tls.Server(conn, serverCfg)
		err = tc.Handshake()
		done <- serverResult{err: err, state: tc.ConnectionState()}
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatalf("net.Dial: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	tc := tls.Client(conn, clientCfg)
	var r handshakeResult
	r.clientErr = tc.Handshake()
	if r.clientErr != nil {
		// Let the server see the client's alert or the closed connection.
		conn.Close()
	}
	// In TLS 1.3 the client is done before the server has checked the
	// client certificate, so wait for the server's verdict.
	s := <-done
	r.serverErr, r.serverState = s.err, s.state
	r.clientState = tc.ConnectionState()
	return r
}

// testPKI is a set of trust domains for handshake tests. The bundle trusts
// alpha, bravo and the mediator osce; charlie and the second "alpha" CA
// (impostor) are unknown to it.
type testPKI struct {
	alpha, bravo, osce, charlie, impostor *certstest.Party
	bundle                                *certs.TrustBundle
}

func newTestPKI(tb testing.TB) *testPKI {
	tb.Helper()
	p := &testPKI{
		alpha:    certstest.NewParty(tb, "alpha"),
		bravo:    certstest.NewParty(tb, "bravo"),
		osce:     certstest.NewParty(tb, "osce"),
		charlie:  certstest.NewParty(tb, "charlie"),
		impostor: certstest.NewParty(tb, "alpha"),
	}
	p.bundle = certstest.Bundle(tb, p.alpha, p.bravo, p.osce)
	return p
}

func tlsCert(tb testing.TB, leaf *certs.Leaf) tls.Certificate {
	tb.Helper()
	c, err := leaf.TLSCertificate()
	if err != nil {
		tb.Fatalf("TLSCertificate: %v", err)
	}
	return c
}

func TestServerConfigAccepts(t *testing.T) {
	pki := newTestPKI(t)
	server := certs.ServerConfig(pki.bundle, certs.Static(pki.alpha.Leaf(t, certs.RoleNode, "node1")))
	tests := []struct {
		name   string
		client tls.Certificate
		want   certs.Identity
	}{
		{"same-party operator", pki.alpha.Leaf(t, certs.RoleOperator, "desk"), certs.Identity{Party: "alpha", Role: certs.RoleOperator, Name: "desk"}},
		{"cross-party node", pki.bravo.Leaf(t, certs.RoleNode, "node1"), certs.Identity{Party: "bravo", Role: certs.RoleNode, Name: "node1"}},
		{"mediator", pki.osce.Leaf(t, certs.RoleMediator, "witness"), certs.Identity{Party: "osce", Role: certs.RoleMediator, Name: "witness"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := handshake(t, server, certs.ClientConfig(pki.bundle, certs.Static(tt.client), "alpha"))
			if r.serverErr != nil || r.clientErr != nil {
				t.Fatalf("handshake: got server error %v, client error %v, want none", r.serverErr, r.clientErr)
			}
			if got := r.serverState.Version; got != tls.VersionTLS13 {
				t.Errorf("version: got %x, want TLS 1.3", got)
			}
			got, err := certs.IdentityFromCert(r.serverState.PeerCertificates[0])
			if err != nil || got != tt.want {
				t.Errorf("client identity seen by server: got %+v, %v, want %+v", got, err, tt.want)
			}
			if got, want := r.clientState.PeerCertificates[0].URIs[0].String(), "spiffe://alpha/node/node1"; got != want {
				t.Errorf("server identity seen by client: got %s, want %s", got, want)
			}
		})
	}
}

func TestServerConfigRejects(t *testing.T) {
	pki := newTestPKI(t)
	server := certs.ServerConfig(pki.bundle, certs.Static(pki.alpha.Leaf(t, certs.RoleNode, "node1")))
	expired := tlsCert(t, pki.alpha.Issue(t, certs.IssueRequest{
		Role: certs.RoleOperator, Name: "old", NotBefore: time.Now().Add(-48 * time.Hour), Validity: time.Hour,
	}))
	tests := []struct {
		name    string
		client  *tls.Certificate // nil: no client certificate
		wantErr []string
		wantIs  error
	}{
		{
			name:    "unknown party",
			client:  ptr(pki.charlie.Leaf(t, certs.RoleNode, "node1")),
			wantErr: []string{"spiffe://charlie/node/node1", `unknown trust domain "charlie" (the trust bundle lists alpha, bravo, osce)`},
			wantIs:  certs.ErrUnknownTrustDomain,
		},
		{
			name:    "impostor CA for a known party",
			client:  ptr(pki.impostor.Leaf(t, certs.RoleOperator, "desk")),
			wantErr: []string{"spiffe://alpha/operator/desk", `CAs of trust domain "alpha"`, "unknown authority"},
		},
		{
			name:    "cross-party SAN claim",
			client:  ptr(handmade(t, pki.alpha.CA, []string{"spiffe://bravo/operator/x"})),
			wantErr: []string{"spiffe://bravo/operator/x", `CAs of trust domain "bravo"`, "unknown authority"},
		},
		{
			name:    "two URI SANs",
			client:  ptr(handmade(t, pki.alpha.CA, []string{"spiffe://alpha/operator/a", "spiffe://alpha/node/b"})),
			wantErr: []string{"2 URI SANs", "want exactly one"},
		},
		{
			name:    "no URI SAN",
			client:  ptr(handmade(t, pki.alpha.CA, nil)),
			wantErr: []string{"0 URI SANs"},
		},
		{
			name:    "expired",
			client:  &expired,
			wantErr: []string{"spiffe://alpha/operator/old", "expired"},
		},
		{
			name:    "server-only key usage",
			client:  ptr(handmade(t, pki.alpha.CA, []string{"spiffe://alpha/operator/srv"}, x509.ExtKeyUsageServerAuth)),
			wantErr: []string{"spiffe://alpha/operator/srv", "key usage"},
		},
		{
			name:    "no client certificate",
			client:  nil,
			wantErr: []string{"didn't provide a certificate"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var getCert func() (*tls.Certificate, error)
			if tt.client != nil {
				getCert = certs.Static(*tt.client)
			}
			r := handshake(t, server, certs.ClientConfig(pki.bundle, getCert, "alpha"))
			if r.serverErr == nil {
				t.Fatalf("server handshake: got no error, want one containing %q", tt.wantErr)
			}
			t.Logf("server error: %v", r.serverErr)
			for _, want := range tt.wantErr {
				if !strings.Contains(r.serverErr.Error(), want) {
					t.Errorf("server handshake: got error %q, want it to contain %q", r.serverErr, want)
				}
			}
			if tt.wantIs != nil && !errors.Is(r.serverErr, tt.wantIs) {
				t.Errorf("server handshake: got error %v, want errors.Is %v", r.serverErr, tt.wantIs)
			}
		})
	}
}

func TestClientConfig(t *testing.T) {
	pki := newTestPKI(t)
	client := pki.bravo.Leaf(t, certs.RoleNode, "node1")
	tests := []struct {
		name        string
		server      tls.Certificate
		expectParty string
		serverName  string
		wantErr     []string // nil: the handshake succeeds
	}{
		{name: "expected party", server: pki.alpha.Leaf(t, certs.RoleNode, "node1"), expectParty: "alpha"},
		{name: "any party", server: pki.alpha.Leaf(t, certs.RoleNode, "node1")},
		{name: "mediator", server: pki.osce.Leaf(t, certs.RoleMediator, "witness"), expectParty: "osce"},
		{name: "DNS server name", server: pki.alpha.Leaf(t, certs.RoleNode, "node1"), expectParty: "alpha", serverName: "localhost"},
		// crypto/tls does not report IP server names to VerifyConnection;
		// the certificate has the IP SAN anyway.
		{name: "IP server name", server: pki.alpha.Leaf(t, certs.RoleNode, "node1"), expectParty: "alpha", serverName: "127.0.0.1"},
		{
			name: "other party", server: pki.alpha.Leaf(t, certs.RoleNode, "node1"), expectParty: "bravo",
			wantErr: []string{"spiffe://alpha/node/node1", `want a server of trust domain "bravo"`},
		},
		{
			name: "operator as server", server: pki.alpha.Leaf(t, certs.RoleOperator, "desk"), expectParty: "alpha",
			wantErr: []string{"spiffe://alpha/operator/desk", `role "operator" may not serve`},
		},
		{
			name: "unknown party", server: pki.charlie.Leaf(t, certs.RoleNode, "node1"),
			wantErr: []string{"spiffe://charlie/node/node1", `unknown trust domain "charlie"`},
		},
		{
			name: "impostor CA", server: pki.impostor.Leaf(t, certs.RoleNode, "node1"), expectParty: "alpha",
			wantErr: []string{"spiffe://alpha/node/node1", "unknown authority"},
		},
		{
			name: "cross-party SAN claim", server: handmade(t, pki.alpha.CA, []string{"spiffe://bravo/node/x"}), expectParty: "bravo",
			wantErr: []string{"spiffe://bravo/node/x", `CAs of trust domain "bravo"`},
		},
		{
			name: "client-only key usage", server: handmade(t, pki.alpha.CA, []string{"spiffe://alpha/node/n2"}, x509.ExtKeyUsageClientAuth),
			wantErr: []string{"spiffe://alpha/node/n2", "key usage"},
		},
		{
			name: "wrong server name", server: pki.alpha.Leaf(t, certs.RoleNode, "node1"), expectParty: "alpha", serverName: "node1.bravo.example",
			wantErr: []string{"spiffe://alpha/node/node1", `host name "node1.bravo.example"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := certs.ServerConfig(pki.bundle, certs.Static(tt.server))
			clientCfg := certs.ClientConfig(pki.bundle, certs.Static(client), tt.expectParty)
			clientCfg.ServerName = tt.serverName
			r := handshake(t, server, clientCfg)
			if tt.wantErr == nil {
				if r.serverErr != nil || r.clientErr != nil {
					t.Fatalf("handshake: got server error %v, client error %v, want none", r.serverErr, r.clientErr)
				}
				return
			}
			if r.clientErr == nil {
				t.Fatalf("client handshake: got no error, want one containing %q", tt.wantErr)
			}
			t.Logf("client error: %v", r.clientErr)
			for _, want := range tt.wantErr {
				if !strings.Contains(r.clientErr.Error(), want) {
					t.Errorf("client handshake: got error %q, want it to contain %q", r.clientErr, want)
				}
			}
			if r.serverErr == nil {
				t.Errorf("server handshake: got no error, want the client's alert")
			}
		})
	}
}

func TestTLS13Only(t *testing.T) {
	pki := newTestPKI(t)
	serverCert := pki.alpha.Leaf(t, certs.RoleNode, "node1")
	clientCert := pki.bravo.Leaf(t, certs.RoleNode, "node1")
	for _, cfg := range []*tls.Config{
		certs.ServerConfig(pki.bundle, certs.Static(serverCert)),
		certs.ClientConfig(pki.bundle, certs.Static(clientCert), ""),
	} {
		if cfg.MinVersion != tls.VersionTLS13 || cfg.MaxVersion != tls.VersionTLS13 {
			t.Errorf("versions: got %x to %x, want TLS 1.3 only", cfg.MinVersion, cfg.MaxVersion)
		}
	}

	t.Run("TLS 1.2 client refused", func(t *testing.T) {
		client := certs.ClientConfig(pki.bundle, certs.Static(clientCert), "alpha")
		client.MinVersion, client.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		r := handshake(t, certs.ServerConfig(pki.bundle, certs.Static(serverCert)), client)
		if r.serverErr == nil || !strings.Contains(r.serverErr.Error(), "unsupported versions") {
			t.Errorf("server handshake: got error %v, want one about unsupported versions", r.serverErr)
		}
		if r.clientErr == nil {
			t.Errorf("client handshake: got no error, want one")
		}
	})
	t.Run("TLS 1.2 server refused", func(t *testing.T) {
		server := certs.ServerConfig(pki.bundle, certs.Static(serverCert))
		server.MinVersion, server.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		r := handshake(t, server, certs.ClientConfig(pki.bundle, certs.Static(clientCert), "alpha"))
		if r.clientErr == nil {
			t.Errorf("client handshake: got no error, want one")
		}
	})
}

func TestServerConfigNoCertificate(t *testing.T) {
	pki := newTestPKI(t)
	client := certs.ClientConfig(pki.bundle, certs.Static(pki.bravo.Leaf(t, certs.RoleNode, "node1")), "")
	r := handshake(t, certs.ServerConfig(pki.bundle, nil), client)
	if r.serverErr == nil || !strings.Contains(r.serverErr.Error(), "couldn't get server certificate") {
		t.Errorf("server handshake: got error %v, want one about the missing server certificate", r.serverErr)
	}
}

func ptr[T any](v T) *T { return &v }
