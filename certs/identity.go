// Package certs holds Parley's per-party PKI: a CA for each party and each
// mediator, the leaf certificates they issue, the trust bundle that maps each
// trust domain to its own CAs, and the mutual TLS 1.3 configurations that
// authenticate peers by their SPIFFE identity.
//
// There is no shared root. A certificate carries exactly one URI SAN,
// spiffe://<party>/<role>/<name>, and it is accepted only if it chains to a CA
// that the trust bundle lists for that same party. A certificate from alpha's
// CA that claims spiffe://bravo/... is rejected, because it is checked against
// bravo's CAs only, and because alpha's CA carries a name constraint that
// permits only spiffe://alpha.
package certs

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
)

// Role is what a certificate holder may do in the exchange. The server decides
// what each role is authorized to call; this package only authenticates it.
type Role string

// The roles a Parley certificate can carry.
const (
	// RoleNode is a party's node: it serves the exchange and delivers entries.
	RoleNode Role = "node"
	// RoleOperator is a party's own application or person submitting to its node.
	RoleOperator Role = "operator"
	// RoleMediator is a neutral third party that witnesses and audits logs.
	RoleMediator Role = "mediator"
)

// valid reports whether r is one of the known roles.
func (r Role) valid() bool {
	switch r {
	case RoleNode, RoleOperator, RoleMediator:
		return true
	}
	return false
}

// maxIDLen is the longest party id, mediator id or certificate name.
const maxIDLen = 63

// ValidateID reports whether id is a valid party id, mediator id or
// certificate name: a lowercase letter followed by at most 62 lowercase
// letters, digits or hyphens ([a-z][a-z0-9-]{0,62}).
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("invalid id %q: empty", id)
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("invalid id %q: longer than %d characters", id, maxIDLen)
	}
	if c := id[0]; c < 'a' || c > 'z' {
		return fmt.Errorf("invalid id %q: must start with a lowercase letter a-z", id)
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("invalid id %q: character %q at offset %d is not one of a-z, 0-9 or '-'", id, c, i)
		}
	}
	return nil
}

// Identity is the SPIFFE identity a certificate authenticates:
// spiffe://<Party>/<Role>/<Name>. Party is the trust domain, which is the
// party id, or the mediator id for a mediator.
type Identity struct {
	Party string
	Role  Role
	Name  string
}

// String returns the SPIFFE URI of the identity, spiffe://<party>/<role>/<name>.
func (id Identity) String() string {
	return "spiffe://" + id.Party + "/" + string(id.Role) + "/" + id.Name
}

// URI returns the identity as a URL, as it appears in a certificate's URI SAN.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: id.Party, Path: "/" + string(id.Role) + "/" + id.Name}
}

// Validate reports whether the party, role and name are all valid.
func (id Identity) Validate() error {
	if err := ValidateID(id.Party); err != nil {
		return fmt.Errorf("invalid trust domain: %w", err)
	}
	if !id.Role.valid() {
		return fmt.Errorf("invalid role %q: want %q, %q or %q", id.Role, RoleNode, RoleOperator, RoleMediator)
	}
	if err := ValidateID(id.Name); err != nil {
		return fmt.Errorf("invalid name: %w", err)
	}
	return nil
}

// ParseIdentity parses a SPIFFE URI of the form spiffe://<party>/<role>/<name>.
// It is strict: the scheme must be spiffe, there must be no user, port,
// query, fragment or escaped characters, the path must have exactly two
// segments, the role must be known and the party and name must be valid ids.
func ParseIdentity(uri *url.URL) (Identity, error) {
	if uri == nil {
		return Identity{}, fmt.Errorf("invalid SPIFFE ID: nil URI")
	}
	s := uri.String()
	switch {
	case uri.Scheme != "spiffe":
		return Identity{}, fmt.Errorf("invalid SPIFFE ID %q: scheme is %q, want \"spiffe\"", s, uri.Scheme)
	case uri.Opaque != "":
		return Identity{}, fmt.Errorf("invalid SPIFFE ID %q: want spiffe://<party>/<role>/<name>", s)
	case uri.User != nil:
		return Identity{}, fmt.Errorf("invalid SPIFFE ID %q: must not have user info", s)
	case uri.RawQuery != "" || uri.ForceQuery:
		return Identity{}, fmt.Errorf("invalid SPIFFE ID %q: must not have a query", s)
	case uri.Fragment != "" || uri.RawFragment != "":
		return Identity{}, fmt.Errorf("invalid SPIFFE ID %q: must not have a fragment", s)
	case uri.RawPath != "":
		return Identity{}, fmt.Errorf("invalid SPIFFE ID %q: must not have escaped characters", s)
	case strings.Contains(uri.Host, ":"):
		return Identity{}, fmt.Errorf("invalid SPIFFE ID %q: must not have a port", s)
	}
	if err := ValidateID(uri.Host); err != nil {
		return Identity{}, fmt.Errorf("invalid SPIFFE ID %q: trust domain: %w", s, err)
	}
	rest, ok := strings.CutPrefix(uri.Path, "/")
	if !ok {
		return Identity{}, fmt.Errorf("invalid SPIFFE ID %q: path must have exactly two segments, /<role>/<name>", s)
	}
	role, name, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(name, "/") {
		return Identity{}, fmt.Errorf("invalid SPIFFE ID %q: path must have exactly two segments, /<role>/<name>", s)
	}
	id := Identity{Party: uri.Host, Role: Role(role), Name: name}
	if err := id.Validate(); err != nil {
		return Identity{}, fmt.Errorf("invalid SPIFFE ID %q: %w", s, err)
	}
	// Anything the checks above missed would make the canonical form differ.
	if id.String() != s {
		return Identity{}, fmt.Errorf("invalid SPIFFE ID %q: not in canonical form %q", s, id.String())
	}
	return id, nil
}

// IdentityFromCert returns the identity in cert's URI SAN. The certificate
// must have exactly one URI SAN. IdentityFromCert does not verify the
// certificate; see [TrustBundle.Verify].
func IdentityFromCert(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, fmt.Errorf("couldn't read identity: no certificate")
	}
	if n := len(cert.URIs); n != 1 {
		return Identity{}, fmt.Errorf("couldn't read identity of certificate %q: it has %d URI SANs, want exactly one spiffe://<party>/<role>/<name>", cert.Subject.CommonName, n)
	}
	id, err := ParseIdentity(cert.URIs[0])
	if err != nil {
		return Identity{}, fmt.Errorf("couldn't read identity of certificate %q: %w", cert.Subject.CommonName, err)
	}
	return id, nil
}

// identityKey is the context key of WithIdentity.
type identityKey struct{}

// WithIdentity returns a copy of ctx that carries id, for handlers behind an
// authentication interceptor. Read it back with [IdentityFrom].
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the identity stored in ctx by [WithIdentity].
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}
