package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/envelope"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier"
	"github.com/parley-dev/parley/verifier/rules"
)

const verifyUsage = `Usage: parley verify -agreement FILE [-now TIME] ENVELOPES...

Verify checks exchange log entries offline, as a node and a mediator do: the
envelope's form, the sender's signature under a key valid at issued_at, and
the sender's sequence (seq and prev). It then evaluates the agreed rules over
the accepted entries and prints the findings.

Each ENVELOPES file is either

  - JSON lines: one JSON object per line holding one envelope, base64
    (standard alphabet, padded) in the field "envelope"; other fields are
    ignored and blank lines are skipped, e.g.
        {"envelope":"CpQCCAES..."}
  - or one raw envelope: its bytes exactly as signed and logged.

A file whose first non-blank byte is '{' is read as JSON lines (a raw
envelope never starts with it).

Entries from all files are grouped by sender and each sender's feed is
checked in seq order, as Tessera does not keep submission order: of two
different envelopes with the same seq, the one read first is accepted and
the other is an equivocation. For each sender Verify prints the number of
accepted entries, the last seq and its digest, duplicates, gaps (with the seq
expected), equivocations (with both digests), bad signatures and other
refused entries. The agreement must be signed by every party.

Verify exits with status 1 if any entry was refused or could not be read.
Findings are reported but do not change the exit status: a finding never
drops an entry.
`

func init() {
	commands["verify"] = &command{
		summary: "verify exchange log entries offline against the agreement",
		usage:   verifyUsage,
		run:     runVerify,
	}
}

func runVerify(ctx context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("verify")
	var agreementPath, now string
	fs.StringVar(&agreementPath, "agreement", "", "agreement `FILE`, signed by every party (required)")
	fs.StringVar(&now, "now", "", "RFC 3339 `TIME` at which rule deadlines are judged (default now)")
	files, err := env.parseFlags(fs, verifyUsage, args)
	if err != nil {
		return err
	}
	switch {
	case agreementPath == "":
		return usageErrorf("-agreement is required")
	case len(files) == 0:
		return usageErrorf("no envelope files given")
	}
	at, err := parseTimeFlag("now", now, time.Now())
	if err != nil {
		return err
	}
	f, err := agreement.Load(agreementPath)
	if err != nil {
		return err
	}
	if err := f.RequireAllSigned(); err != nil {
		return err
	}
	var inputs []inputEnvelope
	for _, path := range files {
		in, err := readEnvelopes(path)
		if err != nil {
			return err
		}
		inputs = append(inputs, in...)
	}
	rep, err := verifyEnvelopes(f.Agreement, inputs, at)
	if err != nil {
		return err
	}
	env.Logger.DebugContext(ctx, "verified entries", "agreement", f.Agreement.ID, "entries", len(inputs), "refused", rep.Refused())
	if err := rep.Write(env.Stdout, f); err != nil {
		return err
	}
	if n := rep.Refused(); n > 0 {
		return fmt.Errorf("%d of %d entries failed verification", n, len(inputs))
	}
	return nil
}

// inputEnvelope is one envelope read from an input file.
type inputEnvelope struct {
	// Raw is the envelope as read.
	Raw []byte
	// Source says where it was read: "file" or "file:line".
	Source string
}

// maxLine is the longest JSON line readEnvelopes accepts: a base64
// envelope of envelope.MaxSize with room for other fields.
const maxLine = 1 << 20

// readEnvelopes reads the envelopes of one input file: JSON lines of
// {"envelope":"<base64>"} objects, or one raw envelope (see verifyUsage).
func readEnvelopes(path string) ([]inputEnvelope, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read envelopes: %w", err)
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return []inputEnvelope{{Raw: data, Source: path}}, nil
	}
	var out []inputEnvelope
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxLine)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var rec struct {
			Envelope *string `json:"envelope"`
		}
		if err := json.Unmarshal(text, &rec); err != nil {
			return nil, fmt.Errorf("couldn't read %s:%d: %w", path, line, err)
		}
		if rec.Envelope == nil {
			return nil, fmt.Errorf("couldn't read %s:%d: no \"envelope\" field", path, line)
		}
		raw, err := base64.StdEncoding.DecodeString(*rec.Envelope)
		if err != nil {
			return nil, fmt.Errorf("couldn't read %s:%d: envelope is not base64: %w", path, line, err)
		}
		out = append(out, inputEnvelope{Raw: raw, Source: fmt.Sprintf("%s:%d", path, line)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read %s: %w", path, err)
	}
	return out, nil
}

// writeEnvelopes writes envelopes to w in the JSON lines format that
// readEnvelopes reads.
func writeEnvelopes(w io.Writer, raws [][]byte) error {
	for _, raw := range raws {
		line, err := json.Marshal(struct {
			Envelope string `json:"envelope"`
		}{base64.StdEncoding.EncodeToString(raw)})
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\n", line); err != nil {
			return err
		}
	}
	return nil
}

// verifyReport is the outcome of verifying a set of envelopes.
type verifyReport struct {
	// Feeds are the results per claimed sender, sorted by sender.
	Feeds []*feedReport
	// Unreadable are the envelopes that could not be parsed, so have no
	// sender.
	Unreadable []refusal
	// Findings are the rule findings over the accepted entries.
	Findings []*parleyv1.Finding
	// refused counts the entries that failed verification.
	refused int
}

// feedReport is the outcome for one sender's feed.
type feedReport struct {
	Sender string
	// Accepted is how many entries extended the feed; LastSeq and
	// LastDigest are those of the last one.
	Accepted   int
	LastSeq    uint64
	LastDigest [32]byte
	// Duplicates are entries repeating an accepted statement.
	Duplicates []refusal
	// Gaps are the places where the feed skips seqs.
	Gaps []gap
	// Equivocations are entries contradicting an accepted one.
	Equivocations []equivocation
	// BadSignatures are entries without a valid signature of the sender
	// (including signatures by a key outside its validity window).
	BadSignatures []refusal
	// Refused are entries refused for any other reason (wrong agreement,
	// unknown sender, wrong prev, invalid statement).
	Refused []refusal
}

// refusal is one entry and what was wrong with it.
type refusal struct {
	Seq    uint64
	Source string
	Err    error
}

// gap is an entry that came after missing seqs, and how many entries after
// it were left unverified because of the same gap.
type gap struct {
	Expected, Got uint64
	Source        string
	Later         int
}

// equivocation is an entry whose seq already holds another statement.
type equivocation struct {
	Seq           uint64
	First, Second [32]byte
	Source        string
}

// Refused returns how many entries failed verification: every entry that
// is neither accepted nor a duplicate.
func (r *verifyReport) Refused() int { return r.refused }

// verifyEnvelopes runs the verifier over inputs as a verifier re-reading
// logs does (verifier.Replay): entries are grouped by sender, each feed is
// sorted by seq (stably, so among envelopes with the same seq the first read
// is accepted) and checked entry by entry against the feed state built so
// far. The rules are then evaluated over the accepted entries at now.
func verifyEnvelopes(a *agreement.Agreement, inputs []inputEnvelope, now time.Time) (*verifyReport, error) {
	v, err := verifier.New(a)
	if err != nil {
		return nil, err
	}
	in := make([]verifier.ReplayInput, len(inputs))
	for i, e := range inputs {
		in[i] = verifier.ReplayInput{Raw: e.Raw, Source: e.Source}
	}
	replayed := v.Replay(in, verifier.ReplayOptions{})
	rep := &verifyReport{Unreadable: refusals(replayed.Unreadable), refused: replayed.Refused()}
	for _, f := range replayed.Feeds {
		fr := &feedReport{
			Sender: f.Sender, Accepted: f.Accepted, LastSeq: f.Head.Seq, LastDigest: f.Head.Digest,
			Duplicates: refusals(f.Duplicates), BadSignatures: refusals(f.BadSignatures), Refused: refusals(f.Refused),
		}
		for _, g := range f.Gaps {
			fr.Gaps = append(fr.Gaps, gap(g))
		}
		for _, e := range f.Equivocations {
			fr.Equivocations = append(fr.Equivocations, equivocation{
				Seq: e.Seq, First: envelope.Digest(e.First), Second: envelope.Digest(e.Second), Source: e.Source,
			})
		}
		rep.Feeds = append(rep.Feeds, fr)
	}
	accepted := make([]rules.Entry, len(replayed.Accepted))
	for i, r := range replayed.Accepted {
		accepted[i] = rules.Entry{Sender: r.Sender(), Seq: r.Seq(), Digest: r.Parsed.Digest, Statement: r.Parsed.Statement}
	}
	ids := make([]string, len(a.Parties))
	territory := map[string][]string{}
	for i, p := range a.Parties {
		ids[i] = p.ID
		territory[p.ID] = p.Territory
	}
	engine, err := rules.New(rules.Config{Rules: a.Rules, Parties: ids, Territory: territory})
	if err != nil {
		return nil, fmt.Errorf("couldn't load the agreed rules: %w", err)
	}
	rep.Findings = engine.Evaluate(accepted, now)
	return rep, nil
}

// refusals converts the verifier's refusals to the report's.
func refusals(rs []verifier.Refusal) []refusal {
	out := make([]refusal, len(rs))
	for i, r := range rs {
		out[i] = refusal(r)
	}
	return out
}

// Write prints the report, one block per sender, then the findings.
func (r *verifyReport) Write(w io.Writer, f *agreement.File) error {
	var b strings.Builder
	d := f.Digest()
	fmt.Fprintf(&b, "agreement %s sha256:%s\n", f.Agreement.ID, hex.EncodeToString(d[:]))
	for _, u := range r.Unreadable {
		fmt.Fprintf(&b, "unreadable %s: %v\n", u.Source, u.Err)
	}
	for _, fr := range r.Feeds {
		fmt.Fprintf(&b, "sender %s: accepted %d, duplicates %d", fr.Sender, fr.Accepted, len(fr.Duplicates))
		if fr.Accepted > 0 {
			fmt.Fprintf(&b, ", last seq %d digest %s", fr.LastSeq, hex.EncodeToString(fr.LastDigest[:]))
		}
		b.WriteString("\n")
		for _, dup := range fr.Duplicates {
			fmt.Fprintf(&b, "  duplicate seq %d (%s)\n", dup.Seq, dup.Source)
		}
		for _, g := range fr.Gaps {
			fmt.Fprintf(&b, "  gap: expected seq %d, got seq %d (%s)", g.Expected, g.Got, g.Source)
			if g.Later > 0 {
				fmt.Fprintf(&b, "; %d later entries not verified", g.Later)
			}
			b.WriteString("\n")
		}
		for _, e := range fr.Equivocations {
			fmt.Fprintf(&b, "  equivocation at seq %d: accepted %s, conflicting %s (%s)\n",
				e.Seq, hex.EncodeToString(e.First[:]), hex.EncodeToString(e.Second[:]), e.Source)
		}
		for _, s := range fr.BadSignatures {
			fmt.Fprintf(&b, "  bad signature at seq %d (%s): %v\n", s.Seq, s.Source, s.Err)
		}
		for _, s := range fr.Refused {
			fmt.Fprintf(&b, "  refused seq %d (%s): %v\n", s.Seq, s.Source, s.Err)
		}
	}
	fmt.Fprintf(&b, "findings: %d\n", len(r.Findings))
	for _, fd := range r.Findings {
		fmt.Fprintf(&b, "  %s %s %s: %s\n", fd.GetRule(), severityName(fd.GetSeverity()), fd.GetParty(), fd.GetSummary())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// severityName returns the lowercase name of a finding's severity.
func severityName(s parleyv1.Severity) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SEVERITY_"))
}
