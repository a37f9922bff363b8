package agreement

import (
	"fmt"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/parley-dev/parley/keys"
)

// Agreement is the unsigned part of an agreement file: what the parties
// agreed and sign. It is decoded strictly: unknown fields are errors.
type Agreement struct {
	// ID names the agreement; every entry's header carries it. Required,
	// 1-64 characters matching [a-z0-9][a-z0-9.-]*.
	ID string `yaml:"id"`
	// Title is the human-readable name of the agreement. Required.
	Title string `yaml:"title"`
	// EffectiveFrom is when the agreement takes effect. Required.
	EffectiveFrom time.Time `yaml:"effective_from"`
	// EffectiveUntil is when the agreement ends. Optional: zero means
	// open-ended; otherwise it must be after EffectiveFrom.
	EffectiveUntil time.Time `yaml:"effective_until,omitempty"`
	// Parties are the state parties. At least 2, with unique ids.
	Parties []Party `yaml:"parties"`
	// Mediators are the neutral third parties that witness and audit the
	// parties' logs. Optional.
	Mediators []Mediator `yaml:"mediators,omitempty"`
	// WitnessQuorum is how many mediators must cosign a checkpoint before a
	// node publishes it (k of n). 0..len(Mediators); 0 or omitted means 1
	// when there are mediators and 0 otherwise. [Parse] replaces an
	// omitted value with its default.
	WitnessQuorum int `yaml:"witness_quorum,omitempty"`
	// Rules selects and parameterises the agreed rule set. Optional: the
	// default is the vd2011 rule set with its default parameters.
	Rules Rules `yaml:"rules"`
}

// Party is a state party to the agreement.
type Party struct {
	// ID is the party's id, also its SPIFFE trust domain. Required, unique
	// among parties and mediators, 1-64 characters matching
	// [a-z0-9][a-z0-9.-]*.
	ID string `yaml:"id"`
	// Name is the party's human-readable name. Required.
	Name string `yaml:"name"`
	// CA holds the PEM certificate(s) of the party's CA, the only roots
	// accepted for certificates in the party's trust domain. Required: one
	// or more CERTIFICATE blocks, each a CA certificate.
	CA string `yaml:"ca"`
	// Endpoints are the host:port addresses of the party node's gRPC port.
	// At least one, unique.
	Endpoints []string `yaml:"endpoints"`
	// TileEndpoint is the https base URL from which the party's log tiles
	// are served. Optional.
	TileEndpoint string `yaml:"tile_endpoint,omitempty"`
	// Keys are the party's signing public keys with their validity windows;
	// several keys with overlapping windows allow rotation. At least one;
	// a key id appears once in the whole agreement.
	Keys []Key `yaml:"keys"`
	// LogOrigin is the C2SP checkpoint origin of the party's log, e.g.
	// "parley.example/alpha". Required, unique among parties, printable
	// without white space other than single spaces.
	LogOrigin string `yaml:"log_origin"`
	// CheckpointKey is the sumdb/note verifier key (Ed25519,
	// "name+hash+base64") of the party's checkpoints. Required, unique.
	CheckpointKey string `yaml:"checkpoint_key"`
	// Territory names the places or areas that are the party's territory,
	// for the host-state rule (VD.V.host). Optional; a name belongs to at
	// most one party.
	Territory []string `yaml:"territory,omitempty"`
}

// Key is one signing public key of a party with its validity window. A
// signature made at time t counts only if t is in [NotBefore, NotAfter],
// both ends included (see [Party.KeysAt]); the agreement's own signatures
// may be made with any listed key.
type Key struct {
	// ID is the key id, [keys.KeyID] of PublicKey (lowercase hex SHA-256 of
	// its PKIX DER). Required; checked on load.
	ID string `yaml:"id"`
	// PublicKey is the PEM ("PUBLIC KEY") Ed25519 or ECDSA P-256 public key.
	// Required.
	PublicKey string `yaml:"public_key"`
	// NotBefore is the start of the key's validity window. Required.
	NotBefore time.Time `yaml:"not_before"`
	// NotAfter is the end of the key's validity window. Optional: zero
	// means open-ended; otherwise it must be after NotBefore.
	NotAfter time.Time `yaml:"not_after,omitempty"`

	// verifier caches the verifier of PublicKey; filled by Parse and never
	// changed afterwards, so that copies of a Key share it safely.
	verifier *cachedVerifier
}

// cachedVerifier is a verifier together with the PEM it was built from.
type cachedVerifier struct {
	pem string
	v   signature.Verifier
}

// Mediator is a neutral third party that witnesses and audits the logs.
type Mediator struct {
	// ID is the mediator's id, also its SPIFFE trust domain. Required,
	// unique among parties and mediators, same form as a party id.
	ID string `yaml:"id"`
	// Name is the mediator's human-readable name. Required.
	Name string `yaml:"name"`
	// CA holds the PEM certificate(s) of the mediator's CA. Required, as
	// for a party.
	CA string `yaml:"ca"`
	// WitnessEndpoint is the https URL of the mediator's C2SP tlog-witness
	// endpoint. Required.
	WitnessEndpoint string `yaml:"witness_endpoint"`
	// CosigningKey is the note verifier key ("name+hash+base64") with
	// which the mediator's witness cosigns checkpoints: a standard Ed25519
	// note key (type 0x01, used as a cosignature/v1 key, as Tessera does)
	// or an Ed25519 cosignature/v1 key (type 0x04). Required, unique.
	CosigningKey string `yaml:"cosigning_key"`
}

// Party returns the party with the given id.
func (a *Agreement) Party(id string) (*Party, bool) {
	for i := range a.Parties {
		if a.Parties[i].ID == id {
			return &a.Parties[i], true
		}
	}
	return nil, false
}

// Mediator returns the mediator with the given id.
func (a *Agreement) Mediator(id string) (*Mediator, bool) {
	for i := range a.Mediators {
		if a.Mediators[i].ID == id {
			return &a.Mediators[i], true
		}
	}
	return nil, false
}

// Key returns the party's key with the given key id, whatever its window.
func (p *Party) Key(id string) (*Key, bool) {
	for i := range p.Keys {
		if p.Keys[i].ID == id {
			return &p.Keys[i], true
		}
	}
	return nil, false
}

// KeysAt returns the party's keys whose validity window contains t.
func (p *Party) KeysAt(t time.Time) []Key {
	var out []Key
	for _, k := range p.Keys {
		if k.ValidAt(t) {
			out = append(out, k)
		}
	}
	return out
}

// ValidAt reports whether t is in the key's validity window
// [NotBefore, NotAfter] (a zero NotAfter is open-ended).
func (k *Key) ValidAt(t time.Time) bool {
	return !t.Before(k.NotBefore) && (k.NotAfter.IsZero() || !t.After(k.NotAfter))
}

// Verifier returns a verifier for the key's PublicKey. Keys returned by
// [Parse] carry a cached verifier; for a Key built otherwise, or whose
// PublicKey was changed, the PEM is parsed on each call. It is safe for
// concurrent use.
func (k *Key) Verifier() (signature.Verifier, error) {
	if c := k.verifier; c != nil && c.pem == k.PublicKey {
		return c.v, nil
	}
	v, err := newVerifier(k.PublicKey)
	if err != nil {
		return nil, err
	}
	return v, nil
}

func newVerifier(pemKey string) (signature.Verifier, error) {
	pub, err := keys.ParsePublicPEM([]byte(pemKey))
	if err != nil {
		return nil, fmt.Errorf("couldn't parse public key: %w", err)
	}
	v, err := keys.LoadVerifier(pub)
	if err != nil {
		return nil, fmt.Errorf("couldn't load verifier: %w", err)
	}
	return v, nil
}
