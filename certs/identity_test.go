package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/parley-dev/parley/certs"
)

func mustParseURL(tb testing.TB, s string) *url.URL {
	tb.Helper()
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatalf("url.Parse(%q): %v", s, err)
	}
	return u
}

func TestParseIdentity(t *testing.T) {
	tests := []struct {
		name string
		uri  string
		want certs.Identity
	}{
		{"node", "spiffe://alpha/node/node1", certs.Identity{Party: "alpha", Role: certs.RoleNode, Name: "node1"}},
		{"operator", "spiffe://bravo-2/operator/ops-desk", certs.Identity{Party: "bravo-2", Role: certs.RoleOperator, Name: "ops-desk"}},
		{"mediator", "spiffe://osce/mediator/m1", certs.Identity{Party: "osce", Role: certs.RoleMediator, Name: "m1"}},
		{"one letter", "spiffe://a/node/b", certs.Identity{Party: "a", Role: certs.RoleNode, Name: "b"}},
		{"longest ids", "spiffe://" + strings.Repeat("a", 63) + "/node/" + strings.Repeat("b", 63),
			certs.Identity{Party: strings.Repeat("a", 63), Role: certs.RoleNode, Name: strings.Repeat("b", 63)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := certs.ParseIdentity(mustParseURL(t, tt.uri))
			if err != nil {
				t.Fatalf("ParseIdentity(%q): got error %v, want nil", tt.uri, err)
			}
			if got != tt.want {
				t.Errorf("ParseIdentity(%q): got %+v, want %+v", tt.uri, got, tt.want)
			}
			if got.String() != tt.uri {
				t.Errorf("String(): got %q, want %q", got.String(), tt.uri)
			}
			if got.URI().String() != tt.uri {
				t.Errorf("URI(): got %q, want %q", got.URI(), tt.uri)
			}
		})
	}
}

func TestParseIdentityErrors(t *testing.T) {
	tests := []struct {
		name    string
		uri     string
		wantErr string
	}{
		{"https scheme", "https://alpha/node/n1", "scheme"},
		{"opaque", "spiffe:alpha/node/n1", ""},
		{"no path", "spiffe://alpha", "two segments"},
		{"root path", "spiffe://alpha/", "two segments"},
		{"one segment", "spiffe://alpha/node", "two segments"},
		{"three segments", "spiffe://alpha/node/n1/x", "two segments"},
		{"trailing slash", "spiffe://alpha/node/n1/", "two segments"},
		{"empty name", "spiffe://alpha/node/", "name"},
		{"empty role", "spiffe://alpha//n1", "role"},
		{"double slash", "spiffe://alpha/node//n1", "two segments"},
		{"unknown role", "spiffe://alpha/admin/n1", "role"},
		{"upper-case role", "spiffe://alpha/Node/n1", "role"},
		{"upper-case party", "spiffe://Alpha/node/n1", "trust domain"},
		{"upper-case name", "spiffe://alpha/node/N1", "name"},
		{"dotted party", "spiffe://x.alpha/node/n1", "trust domain"},
		{"party starts with digit", "spiffe://1alpha/node/n1", "trust domain"},
		{"party too long", "spiffe://" + strings.Repeat("a", 64) + "/node/n1", "trust domain"},
		{"name too long", "spiffe://alpha/node/" + strings.Repeat("a", 64), "name"},
		{"underscore", "spiffe://alpha/node/n_1", "name"},
		{"empty host", "spiffe:///node/n1", "trust domain"},
		{"port", "spiffe://alpha:443/node/n1", "port"},
		{"user", "spiffe://u@alpha/node/n1", "user"},
		{"query", "spiffe://alpha/node/n1?x=1", "query"},
		{"empty query", "spiffe://alpha/node/n1?", "query"},
		{"fragment", "spiffe://alpha/node/n1#f", "fragment"},
		{"escaped path", "spiffe://alpha/node/n%31", "escaped"},
		{"escaped slash", "spiffe://alpha/node%2Fn1", "escaped"},
		{"dot segment", "spiffe://alpha/node/../n1", "two segments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := certs.ParseIdentity(mustParseURL(t, tt.uri))
			if err == nil {
				t.Fatalf("ParseIdentity(%q): got %+v, want error", tt.uri, got)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseIdentity(%q): got error %q, want it to contain %q", tt.uri, err, tt.wantErr)
			}
		})
	}
	t.Run("nil", func(t *testing.T) {
		if _, err := certs.ParseIdentity(nil); err == nil {
			t.Errorf("ParseIdentity(nil): got nil error, want error")
		}
	})
}

func FuzzParseIdentity(f *testing.F) {
	for _, s := range []string{
		"spiffe://alpha/node/node1",
		"spiffe://osce/mediator/m1",
		"spiffe://alpha/operator/x?y#z",
		"spiffe://alpha:1/node/n%31",
		"spiffe://u@alpha//",
		"https://alpha/node/n1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		id, err := certs.ParseIdentity(u)
		if err != nil {
			return
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("ParseIdentity(%q) = %+v, which does not validate: %v", s, id, err)
		}
		if id.String() != u.String() {
			t.Fatalf("ParseIdentity(%q): String() = %q, want the input URL %q", s, id.String(), u.String())
		}
		again, err := certs.ParseIdentity(mustParseURL(t, id.String()))
		if err != nil || again != id {
			t.Fatalf("ParseIdentity(%q) round trip: got %+v, %v, want %+v", id.String(), again, err, id)
		}
	})
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		id     string
		wantOK bool
	}{
		{"a", true},
		{"alpha", true},
		{"alpha-2", true},
		{"a-", true},
		{strings.Repeat("z", 63), true},
		{"", false},
		{strings.Repeat("z", 64), false},
		{"Alpha", false},
		{"2alpha", false},
		{"-alpha", false},
		{"al.pha", false},
		{"al pha", false},
		{"alphä", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			err := certs.ValidateID(tt.id)
			if got := err == nil; got != tt.wantOK {
				t.Errorf("ValidateID(%q): got error %v, want ok=%v", tt.id, err, tt.wantOK)
			}
		})
	}
}

func TestPeerIdentity(t *testing.T) {
	alpha := newTestCA(t, "alpha")
	leaf := issue(t, alpha, certs.IssueRequest{Role: certs.RoleOperator, Name: "desk"})
	want := certs.Identity{Party: "alpha", Role: certs.RoleOperator, Name: "desk"}

	tlsPeer := func(chain ...*x509.Certificate) context.Context {
		return peer.NewContext(context.Background(), &peer.Peer{
			AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: chain}},
		})
	}
	t.Run("tls peer", func(t *testing.T) {
		got, ok := certs.PeerIdentity(tlsPeer(leaf.Cert))
		if !ok || got != want {
			t.Errorf("PeerIdentity: got %+v, %v, want %+v, true", got, ok, want)
		}
	})
	for name, ctx := range map[string]context.Context{
		"no peer":             context.Background(),
		"no auth info":        peer.NewContext(context.Background(), &peer.Peer{}),
		"no certificates":     tlsPeer(),
		"no identity in cert": tlsPeer(alpha.Certificate()),
	} {
		t.Run(name, func(t *testing.T) {
			if got, ok := certs.PeerIdentity(ctx); ok {
				t.Errorf("PeerIdentity: got %+v, true, want false", got)
			}
		})
	}
	t.Run("with identity", func(t *testing.T) {
		if got, ok := certs.IdentityFrom(context.Background()); ok {
			t.Errorf("IdentityFrom(empty): got %+v, true, want false", got)
		}
		got, ok := certs.IdentityFrom(certs.WithIdentity(context.Background(), want))
		if !ok || got != want {
			t.Errorf("IdentityFrom: got %+v, %v, want %+v, true", got, ok, want)
		}
	})
}
