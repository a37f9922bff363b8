package mediator

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"slices"
	"time"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/envelope"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier"
	"github.com/parley-dev/parley/verifier/rules"
)

// Rule ids of the auditor's own findings, next to those of package rules.
const (
	// RuleFanout is an equivocation: one (sender, seq) with two different
	// signed statements, seen anywhere.
	RuleFanout = "FANOUT"
	// RuleSeq is a gap or an invalid entry in a feed, over all logs.
	RuleSeq = "SEQ"
	// RuleLogFeed is a node's log that holds a feed out of order: with a
	// gap, or an entry its node should have refused.
	RuleLogFeed = "LOG.feed"
	// RuleFork is a node's log key that signed two inconsistent
	// checkpoints.
	RuleFork = "LOG.fork"
	// RuleOmission is a node's log that lacks an entry its party receipted.
	RuleOmission = "LOG.omission"
	// RuleDisagreement is two mediators that cosigned inconsistent
	// checkpoints of one log.
	RuleDisagreement = "LOG.disagreement"
)

// maxEvidenceLog is the largest log whose envelopes omission evidence
// carries in full; beyond it the evidence names the mirror instead.
const maxEvidenceLog = 20000

// AuditInput is what [Audit] audits.
type AuditInput struct {
	// Agreement is the signed agreement. Required.
	Agreement *agreement.File
	// Mediator is the id of the auditing mediator.
	Mediator string
	// Logs are the mirrored logs, by party id. A party without one is
	// audited from the other logs only.
	Logs map[string]*MirrorLog
	// Collected is the mediator's collected state. Optional.
	Collected *Collected
	// Now is when deadlines are judged. Required.
	Now time.Time
	// Workers is how many goroutines verify signatures. Default GOMAXPROCS.
	Workers int

	// progress, if set, carries what earlier audits of the same mirrors
	// verified (see auditProgress).
	progress *auditProgress
}

// AuditDir audits a mediator's data directory as it is on disk: the copy
// of the agreement, the mirrored logs and the collected state. It opens
// nothing for writing, so it may run while the mediator runs.
func AuditDir(dir string, now time.Time) (*Report, error) {
	f, err := agreement.Load(filepath.Join(dir, agreementCopy))
	if err != nil {
		return nil, fmt.Errorf("couldn't load the agreement of %s: %w", dir, err)
	}
	if err := f.RequireAllSigned(); err != nil {
		return nil, err
	}
	col, err := loadCollected(dir)
	if err != nil {
		return nil, err
	}
	logs := map[string]*MirrorLog{}
	defer func() {
		for _, ml := range logs {
			ml.Close()
		}
	}()
	for _, p := range f.Agreement.Parties {
		ml, err := OpenMirrorLog(filepath.Join(dir, mirrorDir, p.ID), false)
		if err != nil {
			return nil, err
		}
		logs[p.ID] = ml
	}
	return Audit(AuditInput{Agreement: f, Mediator: col.Mediator, Logs: logs, Collected: col, Now: now})
}

// replayHook, if set (by tests), sees every audit's replay and the
// entries it accepted.
var replayHook func(ad *auditor, r *verifier.Replayed, accepted []rules.Entry)

// entries returns the entries of ids in ad.dist, as package rules reads
// them.
func (ad *auditor) entries(ids []uint32) iter.Seq[rules.Entry] {
	return func(yield func(rules.Entry) bool) {
		for _, id := range ids {
			if !yield(ad.dist[id].entry()) {
				return
			}
		}
	}
}

// auditLog is one mirrored log being audited.
type auditLog struct {
	party  string
	origin string
	ml     *MirrorLog
	// size is how many of the mirror's entries are audited: as many as it
	// had when the audit started.
	size uint64
	// cp is the mirrored checkpoint, nil if none verified.
	cp    *flog.Checkpoint
	cpRaw []byte
	// at maps an envelope digest to its first index in this log; built
	// only when evidence needs it.
	at map[[32]byte]uint64
}

type feedPos struct {
	sender string
	seq    uint64
}

// auditor holds the state of one audit. Its memory is a compact record
// per distinct envelope (see distinct), what package rules reads of the
// accepted ones (it needs them all: receipts as their acknowledgements,
// other entries as their statements), and a few bytes per log entry. What
// only the checks and the evidence need is released before the rules run.
type auditor struct {
	in   AuditInput
	a    *agreement.Agreement
	v    *verifier.Verifier
	rep  *Report
	logs []*auditLog // in party order
	byID map[string]*auditLog

	// ids maps the digest of every envelope in the logs to its index in
	// dist; masks[id*stride:][:stride] is the set of logs holding it.
	ids    map[[32]byte]uint32
	dist   []distinct
	masks  []uint64
	stride int
	// failedSender is the sender of each envelope that parsed but failed
	// the checks.
	failedSender map[uint32]string
	// passes are, by log, what reading it found.
	passes []*logPass
	// names maps every party id to the agreement's copy of it (see slim).
	names map[string]string
}

// where returns where the envelope with digest d is logged.
func (ad *auditor) where(d [32]byte) []location {
	id, ok := ad.ids[d]
	if !ok {
		return nil
	}
	var out []location
	for li, l := range ad.logs {
		if !ad.inLog(id, li) {
			continue
		}
		if e := ad.dist[id]; int(e.log) == li {
			out = append(out, location{l, e.index})
			continue
		}
		if l.at == nil {
			l.at = map[[32]byte]uint64{}
			err := l.ml.Scan(0, l.size, func(i uint64, raw []byte) error {
				d := sha256.Sum256(raw)
				if _, dup := l.at[d]; !dup {
					l.at[d] = i
				}
				return nil
			})
			if err != nil {
				ad.rep.problem("couldn't read %s's mirrored log for evidence: %v", l.party, err)
			}
		}
		if i, ok := l.at[d]; ok {
			out = append(out, location{l, i})
		}
	}
	return out
}

// raw returns the envelope with digest d, if a log holds it.
func (ad *auditor) raw(d [32]byte) ([]byte, bool) {
	id, ok := ad.ids[d]
	if !ok {
		return nil, false
	}
	raw, err := ad.rawAt(ad.dist[id].log, ad.dist[id].index)
	if err != nil {
		ad.rep.problem("couldn't read an envelope from %s's mirrored log: %v", ad.logs[ad.dist[id].log].party, err)
		return nil, false
	}
	return raw, true
}

type location struct {
	log   *auditLog
	index uint64
}

// Audit re-verifies every mirrored entry and every feed, cross-checks the
// logs and every signed checkpoint known, evaluates the agreed rules over
// the union of the logs, and returns the report. Apart from its
// generated_at time, the report is a deterministic function of the input.
func Audit(in AuditInput) (*Report, error) {
	if in.Agreement == nil || in.Agreement.Agreement == nil {
		return nil, errors.New("couldn't audit: no agreement")
	}
	if in.Collected == nil {
		in.Collected = &Collected{}
	}
	a := in.Agreement.Agreement
	v, err := verifier.New(a)
	if err != nil {
		return nil, fmt.Errorf("couldn't audit: %w", err)
	}
	ad := &auditor{in: in, a: a, v: v, rep: newReport(in), byID: map[string]*auditLog{}}
	if err := ad.loadLogs(); err != nil {
		return nil, err
	}
	if err := ad.scan(); err != nil {
		if !errors.Is(err, errMirrorChanged) {
			return nil, err
		}
		// Nothing verified before can be trusted: verify all, and say why.
		in.progress = nil
		rep, rerr := Audit(in)
		if rerr != nil {
			return nil, rerr
		}
		rep.problem("%v, so every entry was verified again: the mirror is damaged or was tampered with", err)
		return rep, nil
	}
	replayed, accepted, err := ad.replay()
	if err != nil {
		return nil, err
	}
	if replayHook != nil {
		replayHook(ad, replayed, slices.Collect(ad.entries(accepted)))
	}
	ad.feeds(replayed)
	ad.logFeeds()
	ad.omissions()
	ad.checkpoints()
	ad.nodeEvidence()
	// The evidence is gathered: what locates entries in the logs is not
	// needed any more, and the rules need the room.
	ad.release()
	if err := ad.rules(accepted); err != nil {
		return nil, err
	}
	ad.rep.finish(ad)
	return ad.rep, nil
}

// release drops what only the checks and the evidence use: the index of
// digests, the sets of logs, the per-log passes and each log's index of
// digests. Only ad.dist (for the summaries) and the logs' summaries remain.
func (ad *auditor) release() {
	ad.ids, ad.masks, ad.passes, ad.failedSender = nil, nil, nil, nil
	for _, l := range ad.logs {
		l.at = nil
	}
}

// loadLogs reads every mirrored log and checks it against its checkpoint.
func (ad *auditor) loadLogs() error {
	for _, p := range ad.a.Parties {
		ml := ad.in.Logs[p.ID]
		if ml == nil {
			ad.rep.problem("no mirror of %s's log", p.ID)
			continue
		}
		// Both at once: a sync stores entries and their checkpoint
		// together. The mirror may grow meanwhile, never shrink.
		cpRaw, size := ml.State()
		l := &auditLog{party: p.ID, origin: p.LogOrigin, ml: ml, size: size}
		sum := LogSummary{Party: p.ID, Origin: p.LogOrigin, Size: size}
		if cpRaw != nil {
			cp, err := ad.logCheckpoint(p.ID, cpRaw)
			switch {
			case err != nil:
				ad.rep.problem("the mirrored checkpoint of %s's log does not verify: %v", p.ID, err)
			case cp.Size != size:
				ad.rep.problem("the mirror of %s's log holds %d entries but its checkpoint has size %d", p.ID, size, cp.Size)
			default:
				root, err := ml.RootAt(cp.Size)
				if err != nil || !bytes.Equal(root, cp.Hash) {
					ad.rep.problem("the mirror of %s's log does not reproduce its checkpoint's root hash: the mirror is damaged", p.ID)
					break
				}
				l.cp, l.cpRaw = cp, cpRaw
				sum.Checkpoint = string(cpRaw)
				sum.CheckpointSize = cp.Size
				_, werr := client.VerifyCheckpoint(cpRaw, ad.logKeys(p.ID))
				sum.Witnessed = werr == nil
			}
		} else if size > 0 {
			ad.rep.problem("the mirror of %s's log has %d entries but no checkpoint", p.ID, size)
		}
		if c, ok := ad.in.Collected.Cosigned[p.LogOrigin]; ok {
			if cp, err := ad.logCheckpoint(p.ID, c); err == nil {
				sum.CosignedSize = cp.Size
			}
		}
		if msg, ok := ad.in.Collected.Problems[p.ID]; ok {
			ad.rep.problem("last sync of %s's node: %s", p.ID, msg)
		}
		ad.rep.Logs = append(ad.rep.Logs, sum)
		ad.rep.Entries += int(size)
		ad.logs = append(ad.logs, l)
		ad.byID[p.ID] = l
	}
	for id, msg := range ad.in.Collected.Problems {
		if _, ok := ad.a.Party(id); !ok {
			ad.rep.problem("last sync (%s): %s", id, msg)
		}
	}
	return nil
}

// logKeys returns the keys to verify party's checkpoints with, quorum
// included.
func (ad *auditor) logKeys(party string) client.LogKeys {
	p, _ := ad.a.Party(party)
	k := client.LogKeys{Origin: p.LogOrigin, CheckpointKey: p.CheckpointKey, Quorum: ad.a.WitnessQuorum}
	for _, m := range ad.a.Mediators {
		k.WitnessKeys = append(k.WitnessKeys, m.CosigningKey)
	}
	return k
}

// logCheckpoint verifies a checkpoint's signature by party's log key
// (cosignatures are not required).
func (ad *auditor) logCheckpoint(party string, raw []byte) (*flog.Checkpoint, error) {
	return verifyLogCheckpoint(ad.a, party, raw)
}

func verifyLogCheckpoint(a *agreement.Agreement, party string, raw []byte) (*flog.Checkpoint, error) {
	p, ok := a.Party(party)
	if !ok {
		return nil, fmt.Errorf("%q is not a party", party)
	}
	v, err := fnote.NewVerifier(p.CheckpointKey)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse %s's checkpoint key: %w", party, err)
	}
	cp, _, _, err := flog.ParseCheckpoint(raw, p.LogOrigin, v)
	if err != nil {
		return nil, err
	}
	return cp, nil
}

// feeds records the replay's verdicts.
func (ad *auditor) feeds(r *verifier.Replayed) {
	for _, u := range r.Unreadable {
		ad.rep.finding(Finding{Rule: RuleSeq, Severity: sevViolation, Summary: fmt.Sprintf("unreadable entry in %s", u.Source), Seen: u.Err.Error(), Required: "every logged entry parses"})
	}
	for _, f := range r.Feeds {
		fs := FeedSummary{Sender: f.Sender, Accepted: f.Accepted, LastSeq: f.Head.Seq, Duplicates: len(f.Duplicates),
			Gaps: len(f.Gaps), Equivocations: len(f.Equivocations), BadSignatures: len(f.BadSignatures), Refused: len(f.Refused)}
		if f.Accepted > 0 {
			fs.LastDigest = hex.EncodeToString(f.Head.Digest[:])
		}
		ad.rep.Feeds = append(ad.rep.Feeds, fs)
		for _, g := range f.Gaps {
			ad.rep.finding(Finding{Rule: RuleSeq, Severity: sevViolation, Party: f.Sender,
				Required: fmt.Sprintf("%s's feed has every seq from 1 in some log", f.Sender),
				Seen:     fmt.Sprintf("seq %d missing from every log; seq %d found in %s", g.Expected, g.Got, g.Source),
				Summary:  fmt.Sprintf("gap in %s's feed: seq %d to %d missing", f.Sender, g.Expected, g.Got-1)})
		}
		for _, e := range f.Equivocations {
			ad.equivocation(e.Sender, e.Seq, e.First, e.Second, "the logs: "+e.Source)
		}
		for _, b := range slices.Concat(f.BadSignatures, f.Refused) {
			ad.rep.finding(Finding{Rule: RuleSeq, Severity: sevViolation, Party: f.Sender,
				Required: "every logged entry verifies", Seen: b.Err.Error(),
				Summary: fmt.Sprintf("%s entry %d in %s does not verify", f.Sender, b.Seq, b.Source)})
		}
	}
}

// equivocation records evidence of two statements by sender at seq, if
// both verify and it is not recorded yet.
func (ad *auditor) equivocation(sender string, seq uint64, first, second []byte, source string) {
	e := &Evidence{Kind: KindEquivocation, Party: sender,
		Summary: fmt.Sprintf("%s signed two different statements as its entry %d (found in %s)", sender, seq, source)}
	for i, raw := range [][]byte{first, second} {
		d := envelope.Digest(raw)
		ee := EvidenceEnvelope{Role: []string{"first", "second"}[i], Sender: sender, Seq: seq, Digest: hex.EncodeToString(d[:]), Envelope: raw}
		for _, loc := range ad.where(d) {
			ee.FoundIn = append(ee.FoundIn, ad.locate(loc))
		}
		e.Envelopes = append(e.Envelopes, ee)
	}
	// Once per pair of statements, whichever way round.
	key := equivocationKey(first, second)
	for _, old := range ad.rep.Evidence {
		if old.Kind == KindEquivocation && len(old.Envelopes) == 2 && equivocationKey(old.Envelopes[0].Envelope, old.Envelopes[1].Envelope) == key {
			return
		}
	}
	ad.rep.addEvidence(ad.a, e, Finding{Rule: RuleFanout, Party: sender,
		Entries:  []EntryRef{{Sender: sender, Seq: seq, Digest: e.Envelopes[0].Digest}, {Sender: sender, Seq: seq, Digest: e.Envelopes[1].Digest}},
		Required: "one statement per (sender, seq), the same in every log",
		Seen:     fmt.Sprintf("two signed statements at seq %d", seq),
		Summary:  fmt.Sprintf("equivocation: %s signed two different entries %d", sender, seq)})
}

func equivocationKey(a, b []byte) string {
	pa, pb := payloadDigest(a), payloadDigest(b)
	if bytes.Compare(pa[:], pb[:]) > 0 {
		pa, pb = pb, pa
	}
	return string(pa[:]) + string(pb[:])
}

func payloadDigest(raw []byte) [32]byte {
	p, err := envelope.Parse(raw)
	if err != nil {
		return envelope.Digest(raw)
	}
	return p.PayloadDigest
}

// locate describes where an envelope is logged, with its inclusion proof
// in the log's mirrored checkpoint.
func (ad *auditor) locate(loc location) Location {
	out := Location{Log: loc.log.party, Index: loc.index}
	if cp := loc.log.cp; cp != nil && loc.index < cp.Size {
		if p, err := loc.log.ml.InclusionProof(loc.index, cp.Size); err == nil {
			out.TreeSize = cp.Size
			out.InclusionProof = p
			out.Checkpoint = string(loc.log.cpRaw)
		}
	}
	return out
}

// logFeeds checks each log on its own: a node accepts each feed in order,
// so every sender's seqs in its log run from 1 without a gap.
func (ad *auditor) logFeeds() {
	for li, l := range ad.logs {
		seqs := ad.passes[li].seqs
		for _, s := range sortedKeys(seqs) {
			ss := *seqs[s]
			slices.Sort(ss)
			held := len(slices.Compact(ss))
			if max := ss[held-1]; uint64(held) != max {
				ad.rep.finding(Finding{Rule: RuleLogFeed, Severity: sevViolation, Party: l.party,
					Required: fmt.Sprintf("%s's log holds %s's feed from seq 1 without a gap, as its node accepts it", l.party, s),
					Seen:     fmt.Sprintf("%d distinct seqs of %s up to seq %d", held, s, max),
					Summary:  fmt.Sprintf("%s's log holds %s's feed with gaps", l.party, s)})
			}
		}
	}
}

// omissions finds receipts in a party's log for entries that log lacks: a
// node logs an entry before it receipts it.
func (ad *auditor) omissions() {
	for li, l := range ad.logs {
		if l.cp == nil {
			continue
		}
		for _, o := range ad.passes[li].own {
			e := &ad.dist[o.id]
			if !e.accepted {
				continue
			}
			if e.rc != nil {
				for _, ack := range e.rc.Acks {
					ad.omitted(l, li, o.index, e.seq, ack.Sender, ack.Seq, ack.Digest)
				}
				continue
			}
			for _, ack := range e.statement().GetBody().GetReceipt().GetAcks() {
				if len(ack.GetDigest()) == 32 {
					ad.omitted(l, li, o.index, e.seq, ack.GetSender(), ack.GetSeq(), [32]byte(ack.GetDigest()))
				}
			}
		}
	}
}

// omitted records an omission if log li (l) lacks the entry (sender,
// ackSeq, d) that its entry seq, at index, acknowledges.
func (ad *auditor) omitted(l *auditLog, li int, index, seq uint64, sender string, ackSeq uint64, d [32]byte) {
	if id, ok := ad.ids[d]; ok && ad.inLog(id, li) {
		return
	}
	ad.omission(l, index, seq, sender, ackSeq, d)
}

func (ad *auditor) omission(l *auditLog, index, seq uint64, ackSender string, ackSeq uint64, d [32]byte) {
	raws, err := l.ml.Entries(index, 1)
	if err != nil {
		ad.rep.problem("couldn't read a receipt from %s's mirrored log: %v", l.party, err)
		return
	}
	receipt := raws[0]
	rd := envelope.Digest(receipt)
	e := &Evidence{Kind: KindOmission, Party: l.party,
		Summary: fmt.Sprintf("%s receipted %s entry %d (digest %x) in its entry %d, but its log of size %d does not hold it",
			l.party, ackSender, ackSeq, d[:8], seq, l.cp.Size),
		Acknowledged: &EntryRef{Sender: ackSender, Seq: ackSeq, Digest: hex.EncodeToString(d[:])},
	}
	e.Envelopes = append(e.Envelopes, EvidenceEnvelope{Role: "receipt", Sender: l.party, Seq: seq, Digest: hex.EncodeToString(rd[:]),
		Envelope: receipt, FoundIn: []Location{ad.locate(location{l, index})}})
	if raw, ok := ad.raw(d); ok {
		oe := EvidenceEnvelope{Role: "omitted", Sender: ackSender, Seq: ackSeq, Digest: hex.EncodeToString(d[:]), Envelope: raw}
		for _, loc := range ad.where(d) {
			oe.FoundIn = append(oe.FoundIn, ad.locate(loc))
		}
		e.Envelopes = append(e.Envelopes, oe)
	}
	e.Checkpoints = []EvidenceCheckpoint{{Role: "log", Origin: l.origin, Size: l.cp.Size, Root: l.cp.Hash, Note: string(l.cpRaw), Source: "mirror of " + l.party + "'s node"}}
	el := &EvidenceLog{Party: l.party, Size: l.cp.Size}
	if l.cp.Size <= maxEvidenceLog {
		if el.Envelopes, err = l.ml.Entries(0, l.cp.Size); err != nil {
			ad.rep.problem("couldn't read %s's mirrored log for evidence: %v", l.party, err)
			return
		}
	} else {
		el.Note = fmt.Sprintf("the %d envelopes are too many to include; ask mediator %s for its mirror of %s's log", l.cp.Size, ad.in.Mediator, l.party)
	}
	e.Log = el
	ad.rep.addEvidence(ad.a, e, Finding{Rule: RuleOmission, Party: l.party,
		Entries:  []EntryRef{{Sender: l.party, Seq: seq, Digest: hex.EncodeToString(rd[:])}, *e.Acknowledged},
		Required: fmt.Sprintf("%s's log holds every entry %s receipted", l.party, l.party),
		Seen:     fmt.Sprintf("%s entry %d receipted but absent from %s's log of size %d", ackSender, ackSeq, l.party, l.cp.Size),
		Summary:  fmt.Sprintf("%s's log omits %s entry %d, which %s receipted", l.party, ackSender, ackSeq, l.party)})
}

// checkpoints judges every signed checkpoint known for each log against
// the mirror, and confirms the witness's fork evidence.
func (ad *auditor) checkpoints() {
	col := ad.in.Collected
	for _, l := range ad.logs {
		type candidate struct {
			raw    []byte
			source string
			kind   string
			proof  [][]byte
		}
		var cands []candidate
		if c, ok := col.Cosigned[l.origin]; ok {
			cands = append(cands, candidate{c, "cosigned by mediator " + col.Mediator, KindFork, nil})
		}
		for _, p := range col.Peers {
			if p.Origin == l.origin {
				cands = append(cands, candidate{p.Checkpoint, "cosigned by mediator " + p.Mediator, KindDisagreement, nil})
			}
		}
		for _, s := range col.Checkpoints {
			if s.Party == l.party {
				cands = append(cands, candidate{s.Checkpoint, fmt.Sprintf("served by %s's node at %s (%s)", l.party, s.At.Format(time.RFC3339), s.Note), KindFork, s.Proof})
			}
		}
		for _, f := range col.WitnessForks {
			if f.Origin == l.origin {
				cands = append(cands, candidate{f.Rejected, fmt.Sprintf("submitted to mediator %s's witness at %s and refused as inconsistent", col.Mediator, f.At.Format(time.RFC3339)), KindFork, f.Proof})
			}
		}
		for _, c := range cands {
			cp, err := ad.logCheckpoint(l.party, c.raw)
			if err != nil {
				ad.rep.problem("a checkpoint of %s's log %s does not verify: %v", l.party, c.source, err)
				continue
			}
			ad.judgeCheckpoint(l, cp, c.raw, c.source, c.kind)
		}
		// Two mediators' cosigned checkpoints of one size with different
		// roots disagree even when the mirror has neither.
		if mine, ok := col.Cosigned[l.origin]; ok {
			mcp, err := ad.logCheckpoint(l.party, mine)
			for _, p := range col.Peers {
				if p.Origin != l.origin || err != nil {
					continue
				}
				pcp, perr := ad.logCheckpoint(l.party, p.Checkpoint)
				if perr == nil && pcp.Size == mcp.Size && !bytes.Equal(pcp.Hash, mcp.Hash) {
					ad.fork(l, KindDisagreement, mine, mcp, "cosigned by mediator "+col.Mediator, p.Checkpoint, pcp, "cosigned by mediator "+p.Mediator, nil)
				}
			}
		}
	}
	// Witness evidence the mirror cannot settle is reported as it is.
	for _, f := range col.WitnessForks {
		l := ad.logByOrigin(f.Origin)
		if l == nil {
			continue
		}
		a, errA := ad.logCheckpoint(l.party, f.Cosigned)
		b, errB := ad.logCheckpoint(l.party, f.Rejected)
		if errA != nil || errB != nil {
			ad.rep.problem("fork evidence of mediator %s for %s's log does not verify", col.Mediator, l.party)
			continue
		}
		if a.Size == b.Size && !bytes.Equal(a.Hash, b.Hash) {
			ad.fork(l, KindFork, f.Cosigned, a, "cosigned by mediator "+col.Mediator, f.Rejected, b, "submitted to mediator "+col.Mediator+"'s witness and refused", nil)
			continue
		}
		if l.cp == nil || b.Size > l.cp.Size {
			ad.rep.finding(Finding{Rule: RuleFork, Severity: sevLow, Party: l.party,
				Required: "every checkpoint of a log is consistent with the others",
				Seen:     fmt.Sprintf("the witness refused a checkpoint of size %d whose consistency proof from size %d failed; the mirror (size %d) cannot settle it yet", b.Size, a.Size, ad.mirrorSize(l)),
				Summary:  fmt.Sprintf("unconfirmed fork report for %s's log", l.party)})
		}
	}
}

func (ad *auditor) mirrorSize(l *auditLog) uint64 {
	if l.cp == nil {
		return 0
	}
	return l.cp.Size
}

func (ad *auditor) logByOrigin(origin string) *auditLog {
	for _, l := range ad.logs {
		if l.origin == origin {
			return l
		}
	}
	return nil
}

// judgeCheckpoint checks one signed checkpoint against the mirrored log:
// a checkpoint within the mirror must have the mirror's root at its size.
func (ad *auditor) judgeCheckpoint(l *auditLog, cp *flog.Checkpoint, raw []byte, source, kind string) {
	if l.cp == nil || cp.Size > l.cp.Size {
		return // beyond the mirror: judged once the mirror has it
	}
	root, err := l.ml.RootAt(cp.Size)
	if err != nil || bytes.Equal(root, cp.Hash) {
		return
	}
	ad.fork(l, kind, l.cpRaw, l.cp, "mirrored from "+l.party+"'s node, reproduced by the mirrored entries", raw, cp, source, root)
}

// fork records evidence that l's log key signed a and b, which are not
// consistent. When their sizes differ, a must be the larger one, matching
// the mirror, and trueRoot the mirror's root at b's size.
func (ad *auditor) fork(l *auditLog, kind string, aRaw []byte, a *flog.Checkpoint, aSource string, bRaw []byte, b *flog.Checkpoint, bSource string, trueRoot []byte) {
	e := &Evidence{Kind: kind, Party: l.party}
	e.Checkpoints = []EvidenceCheckpoint{
		{Role: "first", Origin: l.origin, Size: a.Size, Root: a.Hash, Note: string(aRaw), Source: aSource},
		{Role: "second", Origin: l.origin, Size: b.Size, Root: b.Hash, Note: string(bRaw), Source: bSource},
	}
	if a.Size != b.Size {
		hashes, err := l.ml.ConsistencyProof(b.Size, a.Size)
		if err != nil || b.Size == 0 {
			ad.rep.problem("couldn't build fork evidence for %s's log: %v", l.party, err)
			return
		}
		e.Proof = &EvidenceProof{FromSize: b.Size, ToSize: a.Size, Hashes: hashes, FromRoot: trueRoot}
	}
	for _, old := range ad.rep.Evidence {
		if old.Kind == e.Kind && old.Party == e.Party && len(old.Checkpoints) == 2 &&
			noteKey(old.Checkpoints) == noteKey(e.Checkpoints) {
			return
		}
	}
	what := "two checkpoints of the same size with different root hashes"
	if e.Proof != nil {
		what = fmt.Sprintf("a checkpoint of size %d whose root is not that of the first %d entries of its checkpoint of size %d", b.Size, b.Size, a.Size)
	}
	rule := RuleFork
	e.Summary = fmt.Sprintf("%s's log key signed %s", l.party, what)
	if kind == KindDisagreement {
		rule = RuleDisagreement
		e.Summary = fmt.Sprintf("mediators cosigned inconsistent checkpoints of %s's log: %s", l.party, what)
	}
	ad.rep.addEvidence(ad.a, e, Finding{Rule: rule, Party: l.party,
		Required: "one append-only history per log, the same for every reader and witness",
		Seen:     fmt.Sprintf("%s (%s) and %s (%s)", cpName(a), aSource, cpName(b), bSource),
		Summary:  fmt.Sprintf("fork of %s's log", l.party)})
}

// noteKey identifies a pair of checkpoints by their texts, in either order.
func noteKey(cs []EvidenceCheckpoint) string {
	x, y := string(noteText([]byte(cs[0].Note))), string(noteText([]byte(cs[1].Note)))
	if x > y {
		x, y = y, x
	}
	return x + "\x00" + y
}

func cpName(cp *flog.Checkpoint) string {
	return fmt.Sprintf("size %d root %x", cp.Size, cp.Hash[:8])
}

// nodeEvidence adds the equivocations nodes reported, once each.
func (ad *auditor) nodeEvidence() {
	for _, ne := range ad.in.Collected.NodeEvidence {
		if ne.First == nil || ne.Second == nil {
			continue
		}
		ad.equivocation(ne.Sender, ne.Seq, ne.First, ne.Second, fmt.Sprintf("evidence reported by %s's node (second from %s)", ne.Node, ne.Source))
	}
}

// rules evaluates the agreed rules over the accepted entries.
func (ad *auditor) rules(accepted []uint32) error {
	ids := make([]string, len(ad.a.Parties))
	territory := map[string][]string{}
	for i, p := range ad.a.Parties {
		ids[i] = p.ID
		territory[p.ID] = p.Territory
	}
	engine, err := rules.New(rules.Config{Rules: ad.a.Rules, Parties: ids, Territory: territory})
	if err != nil {
		return fmt.Errorf("couldn't load the agreed rules: %w", err)
	}
	// The entries go to the engine one by one: they are views of ad.dist,
	// made as they are needed, not a slice of their own.
	lg := engine.NewLog(len(accepted))
	for en := range ad.entries(accepted) {
		lg.Add(en)
	}
	// The findings go into the report as the engine makes them, then into
	// the engine's order: a list of the engine's messages beside the
	// report's held every finding twice (for two million findings, 1.5 GB
	// more).
	start := len(ad.rep.Findings)
	lg.EvaluateEach(ad.in.Now, func(f *parleyv1.Finding) { ad.rep.finding(findingOf(f)) })
	slices.SortFunc(ad.rep.Findings[start:], compareRuleFindings)
	ad.rep.timeline(ad, ad.entries(accepted))
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func compareRefs(a, b EntryRef) int {
	return cmp.Or(cmp.Compare(a.Sender, b.Sender), cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Digest, b.Digest))
}
