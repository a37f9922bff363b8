package mediator

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/parley-dev/parley/agreement"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier/rules"
)

// SchemaVersion is the version of the JSON audit report schema described
// in docs/audit-report.md. It changes only when a field changes meaning or
// disappears; new fields may appear within a version.
const SchemaVersion = 1

// Severities, as they appear in reports.
const (
	sevAdvisory     = "advisory"
	sevLow          = "low"
	sevViolation    = "violation"
	sevMisbehaviour = "misbehaviour"
)

// Evidence kinds.
const (
	// KindEquivocation: two envelopes validly signed by one sender with one
	// seq and different statements.
	KindEquivocation = "equivocation"
	// KindFork: two checkpoints signed by one log key that cannot both be
	// views of one append-only log.
	KindFork = "fork"
	// KindDisagreement: a fork shown by checkpoints that different
	// mediators cosigned.
	KindDisagreement = "mediator_disagreement"
	// KindOmission: a signed receipt for an entry that the receipting
	// party's own log, under a checkpoint it signed, does not hold.
	KindOmission = "omission"
)

// Report is an audit report. Its JSON form is the stable, documented
// schema of docs/audit-report.md.
type Report struct {
	SchemaVersion int       `json:"schema_version"`
	GeneratedAt   time.Time `json:"generated_at"`
	// AsOf is the time at which deadlines were judged.
	AsOf      time.Time       `json:"as_of"`
	Mediator  string          `json:"mediator"`
	Agreement ReportAgreement `json:"agreement"`
	// Result is "clean", "violations" or "misbehaviour".
	Result string `json:"result"`
	// Misbehaviour is true when the report holds verified evidence.
	Misbehaviour bool `json:"misbehaviour"`
	// Entries is the number of mirrored log entries audited, over all logs.
	Entries  int            `json:"entries"`
	Logs     []LogSummary   `json:"logs"`
	Parties  []PartySummary `json:"parties"`
	Feeds    []FeedSummary  `json:"feeds"`
	Timeline []TimelineItem `json:"timeline"`
	Findings []Finding      `json:"findings"`
	Evidence []*Evidence    `json:"evidence"`
	// Problems are what kept the audit from being complete (a node not
	// reachable, a mirror behind); they accuse no one.
	Problems []string `json:"problems"`
}

// ReportAgreement identifies the agreement audited.
type ReportAgreement struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	SHA256 string `json:"sha256"`
	// Parties and Mediators are the ids, in agreement order.
	Parties   []string `json:"parties"`
	Mediators []string `json:"mediators"`
	RuleSet   string   `json:"rule_set"`
	// LeadTimeDays is the prior notification lead time (vd2011).
	LeadTimeDays int `json:"lead_time_days"`
	// ReceiptWindowSeconds is the agreed receipt window.
	ReceiptWindowSeconds int64 `json:"receipt_window_seconds"`
	WitnessQuorum        int   `json:"witness_quorum"`
}

// LogSummary describes one party node's mirrored log.
type LogSummary struct {
	Party  string `json:"party"`
	Origin string `json:"origin"`
	// Size is the number of mirrored entries.
	Size uint64 `json:"size"`
	// Checkpoint is the node's latest checkpoint that the mirrored
	// entries reproduce (signed note), and CheckpointSize its size.
	Checkpoint     string `json:"checkpoint,omitempty"`
	CheckpointSize uint64 `json:"checkpoint_size"`
	// Witnessed says Checkpoint carries the agreement's witness quorum.
	Witnessed bool `json:"witnessed"`
	// CosignedSize is the size of the latest checkpoint this mediator's
	// witness cosigned for the log.
	CosignedSize uint64 `json:"cosigned_size"`
}

// PartySummary is one party's compliance summary.
type PartySummary struct {
	Party string `json:"party"`
	Name  string `json:"name"`
	// Status is "compliant", "violations" or "misbehaviour".
	Status        string `json:"status"`
	EntriesSent   int    `json:"entries_sent"`
	Notifications int    `json:"notifications"`
	Receipts      int    `json:"receipts"`
	// ReceiptsMissing counts RX.receipt findings against the party.
	ReceiptsMissing int `json:"receipts_missing"`
	// Findings counts the party's findings by severity.
	Findings map[string]int `json:"findings"`
	// Evidence lists the ids of evidence against the party.
	Evidence []string `json:"evidence"`
}

// FeedSummary is the verifier's verdict on one sender's feed over the
// union of all logs.
type FeedSummary struct {
	Sender        string `json:"sender"`
	Accepted      int    `json:"accepted"`
	LastSeq       uint64 `json:"last_seq"`
	LastDigest    string `json:"last_digest,omitempty"`
	Duplicates    int    `json:"duplicates"`
	Gaps          int    `json:"gaps"`
	Equivocations int    `json:"equivocations"`
	BadSignatures int    `json:"bad_signatures"`
	Refused       int    `json:"refused"`
}

// TimelineItem is one notified activity against its lead time.
type TimelineItem struct {
	Sender      string    `json:"sender"`
	Seq         uint64    `json:"seq"`
	Digest      string    `json:"digest"`
	Designation string    `json:"designation"`
	Alert       bool      `json:"alert"`
	Issued      time.Time `json:"issued"`
	// Given is when the notification counts as given (t_given).
	Given time.Time `json:"given"`
	// Due is the latest time it could be given: start minus the lead time
	// (start for an alert activity).
	Due   time.Time `json:"due"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// LeadDays is start - given in days.
	LeadDays float64 `json:"lead_days"`
	// Status is "ok", "late" or "cancelled".
	Status string `json:"status"`
}

// EntryRef names an entry by sender, seq and hex envelope digest.
type EntryRef struct {
	Sender string `json:"sender"`
	Seq    uint64 `json:"seq"`
	Digest string `json:"digest"`
}

// Finding is a rule finding or an auditor finding.
type Finding struct {
	Rule     string     `json:"rule"`
	Severity string     `json:"severity"`
	Party    string     `json:"party"`
	Entries  []EntryRef `json:"entries"`
	Required string     `json:"required"`
	Seen     string     `json:"seen"`
	Summary  string     `json:"summary"`
	At       time.Time  `json:"at,omitzero"`
	// Evidence is the id of the evidence behind a misbehaviour finding.
	Evidence string `json:"evidence,omitempty"`
}

// Evidence is signed material that proves misbehaviour to a third party
// holding only the agreement: see [VerifyEvidence] and
// docs/audit-report.md.
type Evidence struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Party string `json:"party"`
	// Summary says in one line what it proves.
	Summary     string               `json:"summary"`
	Envelopes   []EvidenceEnvelope   `json:"envelopes,omitempty"`
	Checkpoints []EvidenceCheckpoint `json:"checkpoints,omitempty"`
	Proof       *EvidenceProof       `json:"proof,omitempty"`
	// Acknowledged is, for an omission, the entry receipted but not
	// logged.
	Acknowledged *EntryRef `json:"acknowledged,omitempty"`
	// Log is, for an omission, the receipting party's whole log under its
	// checkpoint.
	Log *EvidenceLog `json:"log,omitempty"`
	// Verified says the auditor re-checked it with VerifyEvidence.
	Verified bool `json:"verified"`
	// HowToVerify explains the check in words.
	HowToVerify string `json:"how_to_verify"`
}

// EvidenceEnvelope is a signed envelope, exactly as logged.
type EvidenceEnvelope struct {
	Role     string     `json:"role"`
	Sender   string     `json:"sender"`
	Seq      uint64     `json:"seq"`
	Digest   string     `json:"digest"`
	Envelope []byte     `json:"envelope"`
	FoundIn  []Location `json:"found_in,omitempty"`
}

// Location is where an envelope is logged, with its inclusion proof in the
// log's checkpoint.
type Location struct {
	Log            string   `json:"log"`
	Index          uint64   `json:"index"`
	TreeSize       uint64   `json:"tree_size,omitempty"`
	InclusionProof [][]byte `json:"inclusion_proof,omitempty"`
	Checkpoint     string   `json:"checkpoint,omitempty"`
}

// EvidenceCheckpoint is a signed checkpoint.
type EvidenceCheckpoint struct {
	Role   string `json:"role"`
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   []byte `json:"root"`
	// Note is the signed note, with every signature.
	Note string `json:"note"`
	// Source says where the auditor got it.
	Source string `json:"source"`
}

// EvidenceProof is a consistency proof from the smaller checkpoint's size
// to the larger's; FromRoot is the root hash at FromSize that it proves.
type EvidenceProof struct {
	FromSize uint64   `json:"from_size"`
	ToSize   uint64   `json:"to_size"`
	Hashes   [][]byte `json:"hashes"`
	FromRoot []byte   `json:"from_root"`
}

// EvidenceLog is a whole log up to a checkpoint size.
type EvidenceLog struct {
	Party     string   `json:"party"`
	Size      uint64   `json:"size"`
	Envelopes [][]byte `json:"envelopes,omitempty"`
	Note      string   `json:"note,omitempty"`
}

func newReport(in AuditInput) *Report {
	a := in.Agreement.Agreement
	d := in.Agreement.Digest()
	rep := &Report{
		SchemaVersion: SchemaVersion,
		GeneratedAt:   time.Now().UTC().Truncate(time.Second),
		AsOf:          in.Now.UTC(),
		Mediator:      in.Mediator,
		Agreement: ReportAgreement{
			ID: a.ID, Title: a.Title, SHA256: hex.EncodeToString(d[:]),
			RuleSet: a.Rules.Set, LeadTimeDays: a.Rules.EffectiveVD2011().LeadTimeDays,
			ReceiptWindowSeconds: int64(a.Rules.ReceiptWindow() / time.Second), WitnessQuorum: a.WitnessQuorum,
		},
		Logs: []LogSummary{}, Parties: []PartySummary{}, Feeds: []FeedSummary{}, Timeline: []TimelineItem{},
		Findings: []Finding{}, Evidence: []*Evidence{}, Problems: []string{},
	}
	if rep.Agreement.RuleSet == "" {
		rep.Agreement.RuleSet = "vd2011"
	}
	for _, p := range a.Parties {
		rep.Agreement.Parties = append(rep.Agreement.Parties, p.ID)
	}
	for _, m := range a.Mediators {
		rep.Agreement.Mediators = append(rep.Agreement.Mediators, m.ID)
	}
	return rep
}

func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *Report) finding(f Finding) {
	if f.Entries == nil {
		f.Entries = []EntryRef{}
	}
	r.Findings = append(r.Findings, f)
}

// addEvidence numbers e, checks it as a third party would, and adds the
// misbehaviour finding f that it backs.
func (r *Report) addEvidence(a *agreement.Agreement, e *Evidence, f Finding) {
	e.ID = fmt.Sprintf("E%d", len(r.Evidence)+1)
	e.HowToVerify = howToVerify[e.Kind]
	e.Verified = VerifyEvidence(a, e) == nil
	r.Evidence = append(r.Evidence, e)
	f.Evidence = e.ID
	f.Severity = sevMisbehaviour
	if !e.Verified {
		f.Severity = sevLow
		f.Summary = "unverified: " + f.Summary
	}
	r.finding(f)
}

// finish sorts the findings and computes the summaries and the result.
func (r *Report) finish(ad *auditor) {
	slices.SortStableFunc(r.Findings, func(a, b Finding) int {
		if c := strings.Compare(a.Rule, b.Rule); c != 0 {
			return c
		}
		if c := strings.Compare(a.Party, b.Party); c != 0 {
			return c
		}
		return slices.CompareFunc(a.Entries, b.Entries, compareRefs)
	})
	sent := map[string]*PartySummary{}
	for _, p := range ad.a.Parties {
		ps := &PartySummary{Party: p.ID, Name: p.Name, Status: "compliant", Findings: map[string]int{}, Evidence: []string{}}
		sent[p.ID] = ps
	}
	for _, e := range ad.dist {
		if !e.accepted {
			continue
		}
		ps := sent[e.sender()]
		if ps == nil {
			continue
		}
		ps.EntriesSent++
		if e.rc != nil {
			ps.Receipts++
			continue
		}
		if e.nt != nil {
			ps.Notifications++
			continue
		}
		switch e.statement().GetBody().GetKind().(type) {
		case *parleyv1.Body_Notification:
			ps.Notifications++
		case *parleyv1.Body_Receipt:
			ps.Receipts++
		}
	}
	worst := "clean"
	for _, f := range r.Findings {
		ps := sent[f.Party]
		if ps == nil {
			continue
		}
		ps.Findings[f.Severity]++
		if f.Rule == rules.RuleReceipt {
			ps.ReceiptsMissing++
		}
		switch f.Severity {
		case sevViolation:
			if ps.Status == "compliant" {
				ps.Status = "violations"
			}
			if worst == "clean" {
				worst = "violations"
			}
		case sevMisbehaviour:
			ps.Status = "misbehaviour"
			worst = "misbehaviour"
		}
	}
	for _, e := range r.Evidence {
		if ps := sent[e.Party]; ps != nil && e.Verified {
			ps.Evidence = append(ps.Evidence, e.ID)
			r.Misbehaviour = true
		}
	}
	for _, p := range ad.a.Parties {
		r.Parties = append(r.Parties, *sent[p.ID])
	}
	r.Result = worst
	if r.Misbehaviour {
		r.Result = "misbehaviour"
	}
}

// timeline lists the notified activities with when they were given.
func (r *Report) timeline(ad *auditor, accepted iter.Seq[rules.Entry]) {
	a := ad.a
	skew := a.Rules.ClockSkew()
	lead := time.Duration(a.Rules.EffectiveVD2011().LeadTimeDays) * 24 * time.Hour
	// Earliest counterpart receipt per digest (see package rules, t_given).
	first := make(map[[32]byte]time.Time)
	cancelled := map[feedPos]bool{}
	notified := 0
	for res := range accepted {
		if res.Statement == nil && res.Receipt != nil {
			for _, ack := range res.Receipt.Acks {
				if ack.Sender == res.Sender {
					continue
				}
				if old, ok := first[ack.Digest]; !ok || ack.ReceivedAt.Before(old) {
					first[ack.Digest] = ack.ReceivedAt
				}
			}
			continue
		}
		if res.Notification != nil {
			notified++
			continue
		}
		body := res.Statement.GetBody()
		if body.GetNotification() != nil {
			notified++
		}
		if c := body.GetCancellation(); c != nil {
			cancelled[feedPos{res.Sender, c.GetTargetSeq()}] = true
		}
		rc := body.GetReceipt()
		if rc == nil {
			continue
		}
		for _, ack := range rc.GetAcks() {
			if ack.GetSender() == res.Sender || len(ack.GetDigest()) != 32 || ack.GetReceivedAt() == nil {
				continue
			}
			d := [32]byte(ack.GetDigest())
			t := ack.GetReceivedAt().AsTime().UTC()
			if old, ok := first[d]; !ok || t.Before(old) {
				first[d] = t
			}
		}
	}
	late := map[feedPos]bool{}
	for _, f := range r.Findings {
		if f.Rule == rules.RuleLead || f.Rule == rules.RuleAlert {
			for _, e := range f.Entries {
				late[feedPos{e.Sender, e.Seq}] = true
			}
		}
	}
	items := make([]TimelineItem, 0, notified)
	for res := range accepted {
		// A notification the audit kept as its statement (from a feed the
		// verifier replayed) is read as one it kept compacted. Accepted
		// notifications have an issued_at, a start and an end.
		n := res.Notification
		if n == nil && res.Statement.GetBody().GetNotification() != nil {
			n = rules.Compact(res).Notification
		}
		if n == nil {
			continue
		}
		issued := n.IssuedAt()
		given := issued
		if t, ok := first[res.Digest]; ok && (issued.After(t) || t.Sub(issued) > skew) {
			given = t
		}
		start, end := n.Start(), n.End()
		due := start.Add(-lead)
		if n.Alert() {
			due = start
		}
		item := TimelineItem{
			Sender: res.Sender, Seq: res.Seq, Digest: hex.EncodeToString(res.Digest[:]),
			Designation: n.Designation(), Alert: n.Alert(), Issued: issued, Given: given, Due: due,
			Start: start, End: end, LeadDays: start.Sub(given).Hours() / 24, Status: "ok",
		}
		switch {
		case cancelled[feedPos{res.Sender, res.Seq}]:
			item.Status = "cancelled"
		case late[feedPos{res.Sender, res.Seq}]:
			item.Status = "late"
		}
		items = append(items, item)
	}
	// Sort positions rather than the items, which are large, and move the
	// items into that order in place: a second array of them would hold
	// the timeline twice (over 200 MB more for a million notifications).
	order := make([]int32, len(items))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return items[a].Start.Compare(items[b].Start) })
	inOrder(items, order)
	if len(r.Timeline) == 0 {
		r.Timeline = items
	} else {
		r.Timeline = append(r.Timeline, items...)
	}
}

// inOrder moves items into the order of order, in place: items[k] becomes
// the item that was at order[k], order being a permutation of the
// positions. It follows each cycle of the permutation with one item aside,
// so that a large array of items is never copied; order is spent (every
// position set to -1).
func inOrder[T any](items []T, order []int32) {
	for s := range order {
		if order[s] < 0 {
			continue
		}
		aside := items[s]
		for j := s; ; {
			next := int(order[j])
			order[j] = -1
			if next == s {
				items[j] = aside
				break
			}
			items[j] = items[next]
			j = next
		}
	}
}

// findingOf converts a rule engine finding.
func findingOf(f *parleyv1.Finding) Finding {
	out := Finding{Rule: f.GetRule(), Severity: severityName(f.GetSeverity()), Party: f.GetParty(),
		Required: f.GetRequired(), Seen: f.GetSeen(), Summary: f.GetSummary(), Entries: []EntryRef{}}
	if f.GetAt() != nil {
		out.At = f.GetAt().AsTime().UTC()
	}
	for _, e := range f.GetEntries() {
		out.Entries = append(out.Entries, EntryRef{Sender: e.GetSender(), Seq: e.GetSeq(), Digest: hex.EncodeToString(e.GetDigest())})
	}
	return out
}

// compareRuleFindings is rules.CompareFindings over findings as the report
// holds them (findingOf): the digests in hex keep their order, and a
// severity's name stands for its value.
func compareRuleFindings(a, b Finding) int {
	return cmp.Or(
		strings.Compare(a.Rule, b.Rule),
		strings.Compare(a.Party, b.Party),
		slices.CompareFunc(a.Entries, b.Entries, compareRefs),
		a.At.Compare(b.At),
		cmp.Compare(severityValue(a.Severity), severityValue(b.Severity)),
		strings.Compare(a.Required, b.Required),
		strings.Compare(a.Seen, b.Seen),
		strings.Compare(a.Summary, b.Summary),
	)
}

// severityValue is the inverse of severityName: the enum value whose name
// is the report's, upper-cased after "SEVERITY_".
func severityValue(name string) parleyv1.Severity {
	return parleyv1.Severity(parleyv1.Severity_value["SEVERITY_"+strings.ToUpper(name)])
}

func severityName(s parleyv1.Severity) string {
	switch s {
	case parleyv1.Severity_SEVERITY_ADVISORY:
		return sevAdvisory
	case parleyv1.Severity_SEVERITY_LOW:
		return sevLow
	case parleyv1.Severity_SEVERITY_VIOLATION:
		return sevViolation
	case parleyv1.Severity_SEVERITY_MISBEHAVIOUR:
		return sevMisbehaviour
	}
	return "unspecified"
}

// WriteJSON writes the report as indented JSON: the bytes encoding/json's
// Encoder writes with a two-space indent. The timeline and the findings,
// which grow with the logs (a finding per entry and party for the receipts
// of a long silence), are written element by element, so that the report
// is never held whole as JSON: for two million findings that was 1.9 GB,
// held twice (encoded, then indented).
func (r *Report) WriteJSON(w io.Writer) error {
	cp := *r
	var arrays []reportArray
	if len(r.Timeline) > 0 {
		cp.Timeline = []TimelineItem{}
		arrays = append(arrays, reportArray{key: "timeline", n: len(r.Timeline), elem: func(i int) any { return &r.Timeline[i] }})
	}
	if len(r.Findings) > 0 {
		cp.Findings = []Finding{}
		arrays = append(arrays, reportArray{key: "findings", n: len(r.Findings), elem: func(i int) any { return &r.Findings[i] }})
	}
	var head bytes.Buffer
	enc := json.NewEncoder(&head)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&cp); err != nil {
		return fmt.Errorf("couldn't write the report: %w", err)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	rest := head.Bytes()
	for _, a := range arrays {
		// The report's fields are two spaces in, and a JSON string holds
		// no newline: this is the field and nothing else. Its elements go
		// four spaces in, as the Encoder puts them.
		mark := []byte("\n  \"" + a.key + "\": []")
		at := bytes.Index(rest, mark)
		if at < 0 {
			return fmt.Errorf("couldn't write the report: no %s field in its JSON", a.key)
		}
		_, _ = bw.Write(rest[:at+len(mark)-1]) // up to the array's "["
		for i := range a.n {
			el, err := json.MarshalIndent(a.elem(i), "    ", "  ")
			if err != nil {
				return fmt.Errorf("couldn't write the report's %s: %w", a.key, err)
			}
			if i > 0 {
				_ = bw.WriteByte(',')
			}
			_, _ = bw.WriteString("\n    ")
			if _, err := bw.Write(el); err != nil { // the writer's error, kept by bw
				return fmt.Errorf("couldn't write the report: %w", err)
			}
		}
		_, _ = bw.WriteString("\n  ]")
		rest = rest[at+len(mark):]
	}
	_, _ = bw.Write(rest)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("couldn't write the report: %w", err)
	}
	return nil
}

// reportArray is a field of the report written element by element.
type reportArray struct {
	key  string
	n    int
	elem func(int) any
}

// ReadReport decodes a JSON report, refusing a schema version it does not
// know.
func ReadReport(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("couldn't decode the audit report: %w", err)
	}
	if r.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("audit report has schema version %d, want %d", r.SchemaVersion, SchemaVersion)
	}
	return &r, nil
}

// WriteText writes the report for people to read in a terminal.
func (r *Report) WriteText(w io.Writer) error {
	// Through a buffer, not built whole: a report can list millions of
	// findings.
	b := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(b, "Parley audit of agreement %s (sha256:%s) by mediator %s\n", r.Agreement.ID, r.Agreement.SHA256, r.Mediator)
	fmt.Fprintf(b, "as of %s, %d mirrored entries\n", r.AsOf.Format(time.RFC3339), r.Entries)
	fmt.Fprintf(b, "result: %s", strings.ToUpper(r.Result))
	if r.Misbehaviour {
		fmt.Fprintf(b, " (%d pieces of evidence)", len(r.Evidence))
	}
	b.WriteString("\n\nlogs:\n")
	for _, l := range r.Logs {
		w := "not witnessed"
		if l.Witnessed {
			w = "witnessed"
		}
		fmt.Fprintf(b, "  %-10s %-28s %6d entries  checkpoint %d (%s)  cosigned by this mediator: %d\n", l.Party, l.Origin, l.Size, l.CheckpointSize, w, l.CosignedSize)
	}
	b.WriteString("\nparties:\n")
	for _, p := range r.Parties {
		fmt.Fprintf(b, "  %-10s %-12s sent %d (notifications %d, receipts %d), receipts missing %d, findings %s",
			p.Party, p.Status, p.EntriesSent, p.Notifications, p.Receipts, p.ReceiptsMissing, counts(p.Findings))
		if len(p.Evidence) > 0 {
			fmt.Fprintf(b, ", evidence %s", strings.Join(p.Evidence, " "))
		}
		b.WriteString("\n")
	}
	if len(r.Timeline) > 0 {
		b.WriteString("\nnotified activities:\n")
		for _, t := range r.Timeline {
			fmt.Fprintf(b, "  %s/%d %-24q given %s, start %s, lead %.1f days (due by %s): %s\n",
				t.Sender, t.Seq, t.Designation, t.Given.Format("2006-01-02 15:04"), t.Start.Format("2006-01-02"), t.LeadDays, t.Due.Format("2006-01-02"), t.Status)
		}
	}
	fmt.Fprintf(b, "\nfindings: %d\n", len(r.Findings))
	for _, f := range r.Findings {
		fmt.Fprintf(b, "  %-16s %-12s %-8s %s", f.Rule, f.Severity, f.Party, f.Summary)
		if f.Evidence != "" {
			fmt.Fprintf(b, " [%s]", f.Evidence)
		}
		b.WriteString("\n")
	}
	if len(r.Evidence) > 0 {
		fmt.Fprintf(b, "\nevidence: %d (full material in the JSON and HTML reports)\n", len(r.Evidence))
		for _, e := range r.Evidence {
			v := "verified"
			if !e.Verified {
				v = "NOT verified"
			}
			fmt.Fprintf(b, "  %s %s against %s (%s): %s\n", e.ID, e.Kind, e.Party, v, e.Summary)
		}
	}
	if len(r.Problems) > 0 {
		b.WriteString("\nproblems (the audit is incomplete):\n")
		for _, p := range r.Problems {
			fmt.Fprintf(b, "  %s\n", p)
		}
	}
	if err := b.Flush(); err != nil {
		return fmt.Errorf("couldn't write the report: %w", err)
	}
	return nil
}

// counts formats severity counts, most severe first.
func counts(m map[string]int) string {
	var parts []string
	for _, s := range []string{sevMisbehaviour, sevViolation, sevLow, sevAdvisory} {
		if m[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[s], s))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
