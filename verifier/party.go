package verifier

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/keys"
)

// party is a party's id and signing keys, prepared for Check.
type party struct {
	id   string
	keys []partyKey
	// spans split time at every edge of a key's validity window, so that
	// the keys valid at t are those of the last span starting at or
	// before t. Precomputed so that Check allocates nothing to pick keys.
	spans []span
}

// span is a stretch of time from start (inclusive) to the next span's
// start, over which the same keys of a party are valid.
type span struct {
	start time.Time // zero for the first span, which is open to the past
	// valid holds the verifiers of the keys valid in the span, other those
	// of the party's remaining keys.
	valid, other map[string]signature.Verifier
}

// buildSpans computes p.spans from p.keys.
func (p *party) buildSpans() {
	var edges []time.Time
	for _, k := range p.keys {
		edges = append(edges, k.key.NotBefore)
		if !k.key.NotAfter.IsZero() {
			// Windows include NotAfter: the key stops being valid 1ns later.
			edges = append(edges, k.key.NotAfter.Add(time.Nanosecond))
		}
	}
	sort.Slice(edges, func(i, j int) bool { return edges[i].Before(edges[j]) })
	starts := []time.Time{{}}
	for _, e := range edges {
		if e.After(starts[len(starts)-1]) {
			starts = append(starts, e)
		}
	}
	for i, start := range starts {
		// Validity is constant over a span: test a time inside it.
		probe := start
		if i == 0 {
			probe = starts[min(1, len(starts)-1)].Add(-time.Nanosecond)
		}
		sp := span{start: start, valid: map[string]signature.Verifier{}, other: map[string]signature.Verifier{}}
		for _, k := range p.keys {
			if k.key.ValidAt(probe) {
				sp.valid[k.id] = k.verifier
			} else {
				sp.other[k.id] = k.verifier
			}
		}
		p.spans = append(p.spans, sp)
	}
}

// spanAt returns the span containing t.
func (p *party) spanAt(t time.Time) *span {
	i := sort.Search(len(p.spans), func(i int) bool { return p.spans[i].start.After(t) })
	return &p.spans[max(i-1, 0)]
}

// partyKey is one signing key of a party.
type partyKey struct {
	id       string
	key      agreement.Key // for its validity window
	verifier signature.Verifier
}

// loadKey parses a key of the agreement and checks its id.
func loadKey(k agreement.Key) (partyKey, error) {
	pub, err := keys.ParsePublicPEM([]byte(k.PublicKey))
	if err != nil {
		return partyKey{}, fmt.Errorf("couldn't parse public key: %w", err)
	}
	id, err := keys.KeyID(pub)
	if err != nil {
		return partyKey{}, err
	}
	if k.ID != id {
		return partyKey{}, fmt.Errorf("key id %q does not match the public key (want %s)", k.ID, id)
	}
	sv, err := keys.LoadVerifier(pub)
	if err != nil {
		return partyKey{}, err
	}
	return partyKey{id: id, key: k, verifier: sv}, nil
}

// verify checks that a signature of p verifies under a key of the party
// valid at t and returns its key id.
func (pty *party) verify(p *envelope.Parsed, t time.Time) (string, error) {
	sp := pty.spanAt(t)
	keyID, err := envelope.VerifySignature(p, sp.valid)
	if err == nil {
		return keyID, nil
	}
	if id, err := envelope.VerifySignature(p, sp.other); err == nil {
		k := pty.key(id)
		until := "open-ended"
		if !k.NotAfter.IsZero() {
			until = k.NotAfter.UTC().Format(time.RFC3339)
		}
		return "", fmt.Errorf("%w: %s signed with key %s, valid from %s until %s, but issued_at is %s",
			ErrKeyNotValid, pty.id, id, k.NotBefore.UTC().Format(time.RFC3339), until, t.UTC().Format(time.RFC3339Nano))
	}
	if errors.Is(err, envelope.ErrBadSignature) {
		return "", fmt.Errorf("signature of %s does not verify: %w", pty.id, err)
	}
	return "", fmt.Errorf("%w: no signature by a key of %s valid at %s: %w", ErrBadSignature, pty.id, t.UTC().Format(time.RFC3339Nano), err)
}

func (pty *party) key(id string) agreement.Key {
	for _, k := range pty.keys {
		if k.id == id {
			return k.key
		}
	}
	return agreement.Key{}
}
