package agreement

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/keys"
)

var (
	idPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,63}$`)
	keyIDPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// memberPattern is the id of a party or mediator: it is also a SPIFFE
	// trust domain in certificates and the sender in statements, so it
	// follows the stricter rule of certs.ValidateID and the schema.
	memberPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
)

const (
	maxNameLen   = 256
	maxTitleLen  = 1024
	maxOriginLen = 256
)

// validator collects every problem of an agreement with its field path.
type validator struct {
	errs []error
	// ids maps party and mediator ids to the path that defined them.
	ids map[string]string
	// keyIDs, noteKeys, origins and places do the same for values that must
	// be unique in the whole agreement.
	keyIDs, noteKeys, origins, places map[string]string
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, fieldErrorf(path, format, args...))
}

// unique records value at path in seen and reports a problem if it was
// already used elsewhere.
func (v *validator) unique(seen map[string]string, key, path, what string) {
	if prev, ok := seen[key]; ok {
		v.errorf(path, "%s %q is already used by %s (want unique values)", what, key, prev)
		return
	}
	seen[key] = path
}

// validate checks a, fills in defaults (rule set name, witness quorum) and
// caches key verifiers. It returns one error per problem.
func validate(a *Agreement) []error {
	v := &validator{
		ids:      map[string]string{},
		keyIDs:   map[string]string{},
		noteKeys: map[string]string{},
		origins:  map[string]string{},
		places:   map[string]string{},
	}
	v.id("id", a.ID)
	v.text("title", a.Title, maxTitleLen)
	if a.EffectiveFrom.IsZero() {
		v.errorf("effective_from", "missing (want an RFC 3339 time such as 2026-01-01T00:00:00Z)")
	}
	if !a.EffectiveUntil.IsZero() && !a.EffectiveUntil.After(a.EffectiveFrom) {
		v.errorf("effective_until", "%s is not after effective_from %s", fmtTime(a.EffectiveUntil), fmtTime(a.EffectiveFrom))
	}
	if len(a.Parties) < 2 {
		v.errorf("parties", "%d listed (want at least 2)", len(a.Parties))
	}
	for i := range a.Parties {
		v.party(fmt.Sprintf("parties[%d]", i), &a.Parties[i])
	}
	for i := range a.Mediators {
		v.mediator(fmt.Sprintf("mediators[%d]", i), &a.Mediators[i])
	}
	switch {
	case a.WitnessQuorum < 0:
		v.errorf("witness_quorum", "%d is negative (want 0..%d)", a.WitnessQuorum, len(a.Mediators))
	case a.WitnessQuorum > len(a.Mediators):
		v.errorf("witness_quorum", "%d is more than the %d mediators listed (want 0..%d)", a.WitnessQuorum, len(a.Mediators), len(a.Mediators))
	case a.WitnessQuorum == 0 && len(a.Mediators) > 0:
		a.WitnessQuorum = 1
	}
	v.errs = append(v.errs, a.Rules.validate("rules")...)
	if a.Rules.Set == "" {
		a.Rules.Set = SetVD2011
	}
	return v.errs
}

// memberID checks a party or mediator id.
func (v *validator) memberID(path, id string) {
	if !memberPattern.MatchString(id) {
		v.errorf(path, "%q is not a valid party or mediator id (want 1-63 characters of a-z, 0-9 and '-', starting with a letter)", id)
	}
}

func (v *validator) id(path, id string) {
	if !idPattern.MatchString(id) {
		v.errorf(path, "%q is not a valid id (want 1-64 characters of a-z, 0-9, '.' and '-', starting with a letter or digit)", id)
	}
}

// text checks a required single-line human-readable field.
func (v *validator) text(path, s string, max int) {
	switch {
	case strings.TrimSpace(s) == "":
		v.errorf(path, "missing (want a non-empty text)")
	case len(s) > max:
		v.errorf(path, "%d bytes long (want at most %d)", len(s), max)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		v.errorf(path, "contains control characters or line breaks (want one line of text)")
	}
}

func (v *validator) party(path string, p *Party) {
	v.memberID(path+".id", p.ID)
	if p.ID != "" {
		v.unique(v.ids, p.ID, path+".id", "id")
	}
	v.text(path+".name", p.Name, maxNameLen)
	v.ca(path+".ca", p.CA)
	if len(p.Endpoints) == 0 {
		v.errorf(path+".endpoints", "none listed (want at least one host:port)")
	}
	seen := map[string]string{}
	for i, e := range p.Endpoints {
		ep := fmt.Sprintf("%s.endpoints[%d]", path, i)
		v.hostPort(ep, e)
		v.unique(seen, e, ep, "endpoint")
	}
	if p.TileEndpoint != "" {
		v.httpsURL(path+".tile_endpoint", p.TileEndpoint)
	}
	if len(p.Keys) == 0 {
		v.errorf(path+".keys", "none listed (want at least one signing key)")
	}
	for i := range p.Keys {
		v.key(fmt.Sprintf("%s.keys[%d]", path, i), &p.Keys[i])
	}
	v.origin(path+".log_origin", p.LogOrigin)
	v.noteKey(path+".checkpoint_key", p.CheckpointKey, false)
	for i, t := range p.Territory {
		tp := fmt.Sprintf("%s.territory[%d]", path, i)
		v.text(tp, t, maxNameLen)
		if strings.TrimSpace(t) != "" {
			v.unique(v.places, strings.ToLower(strings.TrimSpace(t)), tp, "territory")
		}
	}
}

func (v *validator) mediator(path string, m *Mediator) {
	v.memberID(path+".id", m.ID)
	if m.ID != "" {
		v.unique(v.ids, m.ID, path+".id", "id")
	}
	v.text(path+".name", m.Name, maxNameLen)
	v.ca(path+".ca", m.CA)
	if m.WitnessEndpoint == "" {
		v.errorf(path+".witness_endpoint", "missing (want an https URL)")
	} else {
		v.httpsURL(path+".witness_endpoint", m.WitnessEndpoint)
	}
	v.noteKey(path+".cosigning_key", m.CosigningKey, true)
}

// ca checks that s holds one or more PEM CA certificates and nothing else.
func (v *validator) ca(path, s string) {
	if strings.TrimSpace(s) == "" {
		v.errorf(path, "missing (want the PEM CA certificate)")
		return
	}
	ders, err := certs.PEMBlocks([]byte(s), "CERTIFICATE", "certificate")
	if err != nil {
		v.errorf(path, "%v", err)
		return
	}
	for n, der := range ders {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			v.errorf(path, "certificate %d: couldn't parse: %v", n, err)
			return
		}
		if !cert.BasicConstraintsValid || !cert.IsCA {
			v.errorf(path, "certificate %d (%s) is not a CA certificate (want basic constraints CA:TRUE)", n, cert.Subject)
			return
		}
	}
}

func (v *validator) hostPort(path, s string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.errorf(path, "%q is not host:port: %v", s, err)
		return
	}
	if host == "" {
		v.errorf(path, "%q has no host (want host:port)", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		v.errorf(path, "%q has an invalid port (want 1..65535)", s)
	}
}

func (v *validator) httpsURL(path, s string) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.errorf(path, "%q is not a URL: %v", s, err)
	case u.Scheme != "https":
		v.errorf(path, "%q does not use https (want an https:// URL)", s)
	case u.Host == "":
		v.errorf(path, "%q has no host (want https://host[:port]/path)", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		v.errorf(path, "%q has user info, a query or a fragment (want https://host[:port]/path)", s)
	}
}

func (v *validator) origin(path, s string) {
	switch {
	case s == "":
		v.errorf(path, "missing (want the checkpoint origin, e.g. \"parley.example/alpha\")")
	case len(s) > maxOriginLen:
		v.errorf(path, "%d bytes long (want at most %d)", len(s), maxOriginLen)
	case strings.TrimSpace(s) != s || strings.IndexFunc(s, unicode.IsControl) >= 0:
		v.errorf(path, "%q has leading or trailing space or control characters (want one line)", s)
	default:
		v.unique(v.origins, s, path, "log origin")
	}
}

// noteKey checks a note verifier key: an Ed25519 key for a log's
// checkpoints, or (cosign) an Ed25519 cosignature/v1 key of a witness.
func (v *validator) noteKey(path, s string, cosign bool) {
	if s == "" {
		v.errorf(path, "missing (want a note verifier key \"name+hash+base64\")")
		return
	}
	if cosign {
		if _, err := fnote.NewVerifierForCosignatureV1(s); err != nil {
			v.errorf(path, "couldn't parse cosigning key: %v (want an Ed25519 cosignature/v1 key \"name+hash+base64\")", err)
			return
		}
	} else if _, err := note.NewVerifier(s); err != nil {
		v.errorf(path, "couldn't parse note verifier key: %v (want an Ed25519 key \"name+hash+base64\")", err)
		return
	}
	v.unique(v.noteKeys, s, path, "note verifier key")
}

func (v *validator) key(path string, k *Key) {
	if !keyIDPattern.MatchString(k.ID) {
		v.errorf(path+".id", "%q is not a key id (want 64 lowercase hex characters)", k.ID)
	}
	if k.PublicKey == "" {
		v.errorf(path+".public_key", "missing (want a PEM PUBLIC KEY)")
	} else if pub, err := keys.ParsePublicPEM([]byte(k.PublicKey)); err != nil {
		v.errorf(path+".public_key", "%v", err)
	} else if id, err := keys.KeyID(pub); err != nil {
		v.errorf(path+".public_key", "%v", err)
	} else if keyIDPattern.MatchString(k.ID) && id != k.ID {
		v.errorf(path+".id", "%s does not match the public key (want %s)", k.ID, id)
	} else if verifier, err := keys.LoadVerifier(pub); err != nil {
		v.errorf(path+".public_key", "%v", err)
	} else {
		k.verifier = &cachedVerifier{pem: k.PublicKey, v: verifier}
	}
	if k.ID != "" {
		v.unique(v.keyIDs, k.ID, path+".id", "key id")
	}
	if k.NotBefore.IsZero() {
		v.errorf(path+".not_before", "missing (want an RFC 3339 time)")
	}
	if !k.NotAfter.IsZero() {
		switch {
		case k.NotAfter.Before(k.NotBefore):
			v.errorf(path+".not_after", "%s is before not_before %s", fmtTime(k.NotAfter), fmtTime(k.NotBefore))
		case k.NotAfter.Equal(k.NotBefore):
			v.errorf(path+".not_after", "%s equals not_before (want a later time)", fmtTime(k.NotAfter))
		}
	}
}
