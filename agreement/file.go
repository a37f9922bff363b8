package agreement

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"go.yaml.in/yaml/v3"

	"github.com/parley-dev/parley/keys"
)

// PayloadType is the DSSE payload type of agreement signatures.
const PayloadType = "application/vnd.parley.agreement.v1+yaml"

// Separator is the line that ends the signed part of an agreement file and
// starts its signatures document. It is matched as a whole line, without
// the line break.
const Separator = "--- # signatures"

// MaxSize is the largest agreement file Parse accepts, in bytes.
const MaxSize = 1 << 20

// ErrNotSigned is returned, wrapped, by [File.RequireAllSigned] when a party
// has not signed the agreement or its signature is bad.
var ErrNotSigned = errors.New("agreement is not signed by every party")

// File is a parsed agreement file: the agreement, the exact bytes the
// parties sign, and their signatures.
type File struct {
	// Agreement is the decoded and validated unsigned part.
	Agreement *Agreement
	// Unsigned is the signed text: the exact file bytes before the
	// separator line (the whole file when it has none).
	Unsigned []byte
	// Signatures are the parties' signatures, in file order, at most one
	// per party.
	Signatures []Signature
}

// Signature is one party's DSSE signature over the agreement.
type Signature struct {
	// Party is the id of the signing party.
	Party string
	// KeyID is the key id ([keys.KeyID]) of the party key that signed.
	KeyID string
	// Sig is the raw signature over PAE(PayloadType, Unsigned).
	Sig []byte
}

// Status says which parties have validly signed an agreement.
type Status struct {
	// Signed lists the parties with a good signature, in agreement order.
	Signed []string
	// Missing lists the parties without a signature, in agreement order.
	Missing []string
	// Bad lists the signatures that do not verify.
	Bad []BadSignature
}

// BadSignature is a signature that does not verify, and why.
type BadSignature struct {
	Party string
	KeyID string
	Err   error
}

func (b BadSignature) Error() string {
	return fmt.Sprintf("party %s, key %s: %v", b.Party, b.KeyID, b.Err)
}

// signaturesDoc is the YAML document after the separator line.
type signaturesDoc struct {
	Signatures []wireSignature `yaml:"signatures"`
}

type wireSignature struct {
	Party string `yaml:"party"`
	KeyID string `yaml:"keyid"`
	Sig   string `yaml:"sig"`
}

// PAE returns the DSSE pre-authentication encoding of body:
// "DSSEv1" SP LEN(payloadType) SP payloadType SP LEN(body) SP body, with
// lengths in ASCII decimal.
func PAE(payloadType string, body []byte) []byte {
	b := make([]byte, 0, 32+len(payloadType)+len(body))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, ' ')
	return append(b, body...)
}

// split returns the bytes before the separator line, the bytes after it,
// and whether there was one. The separator is the first line that is
// exactly [Separator].
func split(data []byte) (unsigned, rest []byte, found bool) {
	for off := 0; off <= len(data); {
		line := data[off:]
		end := bytes.IndexByte(line, '\n')
		next := len(data) + 1
		if end >= 0 {
			line = line[:end]
			next = off + end + 1
		}
		if string(line) == Separator {
			if next > len(data) {
				return data[:off], nil, true
			}
			return data[:off], data[next:], true
		}
		off = next
	}
	return data, nil, false
}

// Parse parses and validates an agreement file. The file layout is
// described in the package documentation. Every problem of the unsigned
// part is reported with its field path; signatures are checked for form
// here and verified by [File.Verify].
func Parse(data []byte) (*File, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("agreement is %d bytes (want at most %d)", len(data), MaxSize)
	}
	unsigned, rest, signed := split(data)
	a, err := decodeAgreement(unsigned)
	if err != nil {
		return nil, err
	}
	if errs := validate(a); len(errs) > 0 {
		return nil, fmt.Errorf("invalid agreement: %w", errors.Join(errs...))
	}
	f := &File{Agreement: a, Unsigned: unsigned}
	if signed {
		if f.Signatures, err = decodeSignatures(a, rest); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func decodeAgreement(data []byte) (*Agreement, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var a Agreement
	if err := dec.Decode(&a); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("agreement is empty (want a YAML document with id, title, parties, ...)")
		}
		return nil, fmt.Errorf("couldn't decode agreement: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("couldn't decode agreement: %w", err)
		}
		return nil, fmt.Errorf("couldn't decode agreement: a second YAML document starts at line %d (want one document, then the line %q)", extra.Line, Separator)
	}
	return &a, nil
}

func decodeSignatures(a *Agreement, data []byte) ([]Signature, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc signaturesDoc
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("couldn't decode signatures: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("couldn't decode signatures: %w", err)
		}
		return nil, errors.New("couldn't decode signatures: more than one YAML document after the separator (want one signatures document)")
	}
	var (
		errs []error
		sigs []Signature
		seen = map[string]int{}
	)
	for i, w := range doc.Signatures {
		path := fmt.Sprintf("signatures[%d]", i)
		if _, ok := a.Party(w.Party); !ok {
			errs = append(errs, fieldErrorf(path+".party", "%q is not a party to agreement %q", w.Party, a.ID))
		} else if j, dup := seen[w.Party]; dup {
			errs = append(errs, fieldErrorf(path+".party", "second signature of party %q, after signatures[%d] (want one per party)", w.Party, j))
		} else {
			seen[w.Party] = i
		}
		if !keyIDPattern.MatchString(w.KeyID) {
			errs = append(errs, fieldErrorf(path+".keyid", "%q is not a key id (want 64 lowercase hex characters)", w.KeyID))
		}
		sig, err := base64.StdEncoding.DecodeString(w.Sig)
		switch {
		case err != nil:
			errs = append(errs, fieldErrorf(path+".sig", "not valid base64: %v", err))
		case len(sig) == 0:
			errs = append(errs, fieldErrorf(path+".sig", "missing (want a base64 signature)"))
		}
		sigs = append(sigs, Signature{Party: w.Party, KeyID: w.KeyID, Sig: sig})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid signatures: %w", errors.Join(errs...))
	}
	return sigs, nil
}

// Load reads and parses the agreement file at path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read agreement: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("couldn't load agreement %s: %w", path, err)
	}
	return f, nil
}

// Create returns the YAML text of a new, unsigned agreement. Defaults are
// written out explicitly (the rule set with all its parameters, the witness
// quorum), so the text the parties sign says everything they agree to. The
// result is validated by [Parse]; a is not modified.
func Create(a *Agreement) ([]byte, error) {
	if a == nil {
		return nil, errors.New("no agreement given")
	}
	out := *a
	out.Rules = a.Rules.explicit()
	if out.WitnessQuorum == 0 && len(out.Mediators) > 0 {
		out.WitnessQuorum = 1
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&out); err != nil {
		return nil, fmt.Errorf("couldn't encode agreement: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("couldn't encode agreement: %w", err)
	}
	data := buf.Bytes()
	f, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if len(f.Signatures) != 0 || !bytes.Equal(f.Unsigned, data) {
		return nil, fmt.Errorf("couldn't create agreement: the text contains the line %q", Separator)
	}
	return data, nil
}

// Digest returns the SHA-256 digest of the signed text (f.Unsigned).
func (f *File) Digest() [32]byte {
	return sha256.Sum256(f.Unsigned)
}

// Marshal returns the agreement file: the unsigned text, then, if there are
// signatures, the separator line and the signatures document.
func (f *File) Marshal() []byte {
	out := bytes.Clone(f.Unsigned)
	if len(f.Signatures) == 0 {
		return out
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		// Only a File built by hand gets here: Sign and Parse keep a
		// signed text newline-terminated. The signatures then no longer
		// verify, which is the honest outcome.
		out = append(out, '\n')
	}
	out = append(out, Separator...)
	out = append(out, '\n')
	doc := signaturesDoc{Signatures: make([]wireSignature, len(f.Signatures))}
	for i, s := range f.Signatures {
		doc.Signatures[i] = wireSignature{Party: s.Party, KeyID: s.KeyID, Sig: base64.StdEncoding.EncodeToString(s.Sig)}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	// Encoding plain strings into a buffer cannot fail.
	_ = enc.Encode(&doc)
	_ = enc.Close()
	return append(out, buf.Bytes()...)
}

// Sign signs the agreement as party with signer and adds the signature,
// replacing an earlier one of that party. The signer's public key must be
// one of the party's keys (any validity window). The signature is checked
// with the listed key before it is added. Signing an unsigned text that does
// not end in a line break first appends one, since the separator must start
// a line.
func (f *File) Sign(ctx context.Context, party string, signer signature.Signer) error {
	if f.Agreement == nil {
		return errors.New("couldn't sign agreement: no agreement loaded")
	}
	p, ok := f.Agreement.Party(party)
	if !ok {
		return fmt.Errorf("couldn't sign agreement: %q is not a party to agreement %q", party, f.Agreement.ID)
	}
	pub, err := signer.PublicKey(options.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("couldn't get the signer's public key: %w", err)
	}
	keyID, err := keys.KeyID(pub)
	if err != nil {
		return fmt.Errorf("couldn't sign agreement: %w", err)
	}
	k, ok := p.Key(keyID)
	if !ok {
		return fmt.Errorf("couldn't sign agreement: key %s is not listed for party %q", keyID, party)
	}
	if n := len(f.Unsigned); n > 0 && f.Unsigned[n-1] != '\n' {
		if len(f.Signatures) > 0 {
			return errors.New("couldn't sign agreement: signed text does not end in a line break")
		}
		f.Unsigned = append(bytes.Clone(f.Unsigned), '\n')
	}
	msg := PAE(PayloadType, f.Unsigned)
	sig, err := signer.SignMessage(bytes.NewReader(msg), options.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("couldn't sign agreement: %w", err)
	}
	v, err := k.Verifier()
	if err != nil {
		return fmt.Errorf("couldn't sign agreement: %w", err)
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err != nil {
		return fmt.Errorf("couldn't sign agreement: the new signature does not verify with key %s: %w", keyID, err)
	}
	s := Signature{Party: party, KeyID: keyID, Sig: sig}
	for i := range f.Signatures {
		if f.Signatures[i].Party == party {
			f.Signatures[i] = s
			return nil
		}
	}
	f.Signatures = append(f.Signatures, s)
	return nil
}

// Verify checks every signature over the exact signed text. A signature is
// good if it verifies under a key listed for its party, whatever that key's
// validity window. The error is for a File that cannot be checked at all.
func (f *File) Verify() (Status, error) {
	var st Status
	if f.Agreement == nil {
		return st, errors.New("couldn't verify agreement: no agreement loaded")
	}
	msg := PAE(PayloadType, f.Unsigned)
	byParty := map[string]Signature{}
	for _, s := range f.Signatures {
		if _, ok := f.Agreement.Party(s.Party); !ok {
			st.Bad = append(st.Bad, BadSignature{Party: s.Party, KeyID: s.KeyID, Err: errors.New("not a party to this agreement")})
			continue
		}
		if _, dup := byParty[s.Party]; dup {
			st.Bad = append(st.Bad, BadSignature{Party: s.Party, KeyID: s.KeyID, Err: errors.New("second signature of the same party")})
			continue
		}
		byParty[s.Party] = s
	}
	for i := range f.Agreement.Parties {
		p := &f.Agreement.Parties[i]
		s, ok := byParty[p.ID]
		if !ok {
			st.Missing = append(st.Missing, p.ID)
			continue
		}
		if err := verifySignature(p, s, msg); err != nil {
			st.Bad = append(st.Bad, BadSignature{Party: s.Party, KeyID: s.KeyID, Err: err})
			continue
		}
		st.Signed = append(st.Signed, p.ID)
	}
	return st, nil
}

func verifySignature(p *Party, s Signature, msg []byte) error {
	k, ok := p.Key(s.KeyID)
	if !ok {
		return fmt.Errorf("key %s is not listed for party %q", s.KeyID, p.ID)
	}
	v, err := k.Verifier()
	if err != nil {
		return err
	}
	if err := v.VerifySignature(bytes.NewReader(s.Sig), bytes.NewReader(msg)); err != nil {
		return fmt.Errorf("signature does not verify: %w", err)
	}
	return nil
}

// RequireAllSigned returns nil if every party has a good signature, and
// otherwise an error wrapping [ErrNotSigned] that names the parties whose
// signature is missing or bad. Nodes and mediators refuse to start on it.
func (f *File) RequireAllSigned() error {
	st, err := f.Verify()
	if err != nil {
		return err
	}
	if len(st.Missing) == 0 && len(st.Bad) == 0 {
		return nil
	}
	var parts []string
	if len(st.Missing) > 0 {
		parts = append(parts, "missing signatures of "+strings.Join(st.Missing, ", "))
	}
	if len(st.Bad) > 0 {
		bad := make([]string, len(st.Bad))
		for i, b := range st.Bad {
			bad[i] = b.Error()
		}
		parts = append(parts, "bad signatures: "+strings.Join(bad, "; "))
	}
	return fmt.Errorf("%w (id %q): %s", ErrNotSigned, f.Agreement.ID, strings.Join(parts, "; "))
}

func fmtTime(t time.Time) string {
	return t.Format(time.RFC3339Nano)
}
