package rules

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
	"unique"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/agreement"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// Rule ids, as they appear in [parleyv1.Finding.Rule]. The package
// documentation says how each one is judged.
const (
	// RuleLead is VD2011 Chapter V: prior notification lead time.
	RuleLead = "VD.V.lead"
	// RuleAlert is VD2011 Chapter V: alert activities notified by their start.
	RuleAlert = "VD.V.alert"
	// RuleAmend is VD2011 Chapter V: amendments and cancellations.
	RuleAmend = "VD.V.amend"
	// RuleHost is VD2011 Chapter V: the host state notifies too.
	RuleHost = "VD.V.host"
	// RuleInvite is VD2011 Chapter VI: observation invitations.
	RuleInvite = "VD.VI.invite"
	// RuleAlert72 is VD2011 Chapter VI: invitations to long alert activities.
	RuleAlert72 = "VD.VI.alert72"
	// RuleCalendar is VD2011 Chapter VII: the annual calendar deadline.
	RuleCalendar = "VD.VII.calendar"
	// RuleInCalendar is VD2011 Chapter VII: notified activities are in the
	// calendar.
	RuleInCalendar = "VD.VII.incal"
	// RuleNil is VD2011 Chapter VII: an explicit nil calendar, not silence.
	RuleNil = "VD.VII.nil"
	// RuleLarge is VD2011 Chapter VIII: large activities communicated two
	// years ahead.
	RuleLarge = "VD.VIII.large"
	// RuleThreeYears is VD2011 Chapter VIII: one large activity in three
	// calendar years.
	RuleThreeYears = "VD.VIII.three_years"
	// RuleConsult is VD2011 Chapter III: consultation requests answered in
	// time.
	RuleConsult = "VD.III.consult"
	// RuleNear is the advisory rule: values just below a threshold, and
	// possible splits.
	RuleNear = "VD.near"
	// RuleReceipt is the protocol rule: every counterpart receipts every
	// substantive entry in time. It applies under every rule set.
	RuleReceipt = "RX.receipt"
	// RuleMissileLead is the 1988 missile launch notification rule: lead
	// time and launch window length.
	RuleMissileLead = "BM.lead"
)

// Config is what the engine needs to know about the agreement.
type Config struct {
	// Rules selects and parameterises the rule set. Zero fields take the
	// defaults of package agreement.
	Rules agreement.Rules
	// Parties are the ids of the parties to the agreement. Required, no
	// duplicates; the order does not matter.
	Parties []string
	// Territory optionally maps a party id to the place names on its
	// territory, for the host rule (VD.V.host). Place names are compared
	// case-insensitively, ignoring surrounding spaces.
	Territory map[string][]string
}

// Entry is one verified entry of a log: its signature, sequence and
// envelope digest have already been checked by the caller.
type Entry struct {
	// Sender is the verified sending party.
	Sender string
	// Seq is the entry's position in the sender's feed.
	Seq uint64
	// Digest is the SHA-256 of the envelope bytes as logged.
	Digest [32]byte
	// Statement is the parsed payload. It may be nil for a receipt given
	// as Receipt instead.
	Statement *parleyv1.Statement
	// Receipt is a receipt entry without its statement: what the rules
	// read of one. It is used only when Statement is nil.
	Receipt *Receipt
	// Notification is an activity notification without its statement, as
	// [Compact] makes it. It is used only when Statement and Receipt are
	// nil.
	Notification *Notification
}

// Notification is what the rules read of an activity notification
// statement: 112 bytes and its designation, about a sixth of the memory of
// the decoded statement (which also holds what no rule reads, such as the
// purpose and level of command). [Compact] makes one.
type Notification struct {
	c content
	// issued_at, field by field as content's times (112 bytes in all).
	issuedSec  int64
	issuedNsec int32
	hasIssued  bool
}

// issued returns the header's issued_at; unset if there was none.
func (n *Notification) issued() stamp {
	return stamp{sec: n.issuedSec, nsec: n.issuedNsec, set: n.hasIssued}
}

// IssuedAt returns the header's issued_at; zero if there was none.
func (n *Notification) IssuedAt() time.Time { return n.issued().time() }

// Designation returns the activity's designation as given.
func (n *Notification) Designation() string { return n.c.designation }

// Alert reports whether the activity is an alert activity.
func (n *Notification) Alert() bool { return n.c.alert }

// Start returns the activity's start; zero if there was none.
func (n *Notification) Start() time.Time { return n.c.from().time() }

// End returns the activity's end; zero if there was none.
func (n *Notification) End() time.Time { return n.c.to().time() }

// Compact returns en with its statement, if it is an activity notification
// or a receipt, replaced by what the rules read of it ([Notification],
// [Receipt]); any other entry is returned as it is. The findings over
// compacted entries are those over the statements. A caller reading a
// large log compacts each entry as it decodes it and adds it to a [Log], so
// that the statements are garbage at once.
func Compact(en Entry) Entry {
	it := &item{src: en.Statement}
	switch {
	case en.Statement == nil:
		return en
	case it.isNotification():
		issued := stampOf(en.Statement.GetHeader().GetIssuedAt())
		en.Notification = &Notification{c: contentOf(en.Statement.GetBody().GetNotification()),
			issuedSec: issued.sec, issuedNsec: issued.nsec, hasIssued: issued.set}
		en.Statement = nil
	case it.isReceipt():
		en.Receipt = &Receipt{IssuedAt: it.issued(), Acks: it.receiptAcks()}
		for i := range en.Receipt.Acks {
			en.Receipt.Acks[i].Sender = unique.Make(en.Receipt.Acks[i].Sender).Value()
		}
		en.Statement = nil
	}
	// A log has a few senders, each repeated in every entry: one copy.
	en.Sender = unique.Make(en.Sender).Value()
	return en
}

// Receipt is what the rules read of a receipt statement. Holding a large
// log's receipts this way takes a fraction of the memory of their
// statements.
type Receipt struct {
	// IssuedAt is the header's issued_at.
	IssuedAt time.Time
	// Acks are the receipt's acknowledgements.
	Acks []Ack
}

// Ack is one acknowledgement of a [Receipt]: received_at is required (an
// acknowledgement without one acknowledges nothing, so is left out).
type Ack struct {
	Sender     string
	Seq        uint64
	Digest     [32]byte
	ReceivedAt time.Time
}

// Engine evaluates the reporting rules of one agreement. It holds only
// parameters: an Engine is immutable after [New] and safe for concurrent
// use by multiple goroutines.
type Engine struct {
	set     string
	vd      agreement.VD2011
	bm      agreement.Missile1988
	skew    time.Duration
	window  time.Duration
	parties []string       // sorted
	party   map[string]int // party id -> index in parties
	hosts   map[string][]string
	limits  [2][numFields]uint64 // thresholds by level and field; 0 if none
}

// New returns an engine for cfg, or an error if the rule set is unknown or
// a parameter or party is invalid.
func New(cfg Config) (*Engine, error) {
	e := &Engine{
		skew:   cfg.Rules.ClockSkew(),
		window: cfg.Rules.ReceiptWindow(),
		party:  make(map[string]int),
		hosts:  make(map[string][]string),
	}
	switch cfg.Rules.Set {
	case "", agreement.SetVD2011:
		e.set = agreement.SetVD2011
		e.vd = cfg.Rules.EffectiveVD2011()
		if err := checkVD2011(e.vd); err != nil {
			return nil, fmt.Errorf("invalid vd2011 parameters: %w", err)
		}
	case agreement.SetMissile1988:
		e.set = agreement.SetMissile1988
		e.bm = cfg.Rules.EffectiveMissile1988()
		if e.bm.LeadTimeHours < 0 {
			return nil, fmt.Errorf("invalid missile1988 parameters: LeadTimeHours %d is negative", e.bm.LeadTimeHours)
		}
		if e.bm.MaxWindowHours <= 0 {
			return nil, fmt.Errorf("invalid missile1988 parameters: MaxWindowHours %d is not positive", e.bm.MaxWindowHours)
		}
	default:
		return nil, fmt.Errorf("unknown rule set %q (want %q or %q)", cfg.Rules.Set, agreement.SetVD2011, agreement.SetMissile1988)
	}
	if e.skew < 0 {
		return nil, fmt.Errorf("invalid clock skew %v: negative", e.skew)
	}
	if e.window <= 0 {
		return nil, fmt.Errorf("invalid receipt window %v: not positive", e.window)
	}

	if len(cfg.Parties) == 0 {
		return nil, fmt.Errorf("no parties")
	}
	e.parties = slices.Clone(cfg.Parties)
	slices.Sort(e.parties)
	for i, p := range e.parties {
		if p == "" {
			return nil, fmt.Errorf("empty party id")
		}
		if i > 0 && e.parties[i-1] == p {
			return nil, fmt.Errorf("duplicate party %q", p)
		}
		e.party[p] = i
	}
	for p, places := range cfg.Territory {
		if _, ok := e.party[p]; !ok {
			return nil, fmt.Errorf("territory of unknown party %q", p)
		}
		for _, name := range places {
			n := normalize(name)
			if n == "" {
				return nil, fmt.Errorf("territory of party %q: empty place name", p)
			}
			if !slices.Contains(e.hosts[n], p) {
				e.hosts[n] = append(e.hosts[n], p)
			}
		}
	}
	for _, hs := range e.hosts {
		slices.Sort(hs)
	}

	v := e.vd
	e.limits[levelNotify] = [numFields]uint64{
		uint64(v.NotifyTroops), uint64(v.NotifyBattleTanks), uint64(v.NotifyACVs),
		uint64(v.NotifyArtillery), uint64(v.NotifySorties), uint64(v.NotifyLandingTroops),
	}
	e.limits[levelObserve] = [numFields]uint64{
		uint64(v.ObserveTroops), uint64(v.ObserveBattleTanks), uint64(v.ObserveACVs),
		uint64(v.ObserveArtillery), 0, uint64(v.ObserveLandingTroops),
	}
	return e, nil
}

// checkVD2011 rejects effective parameters the engine cannot judge with.
func checkVD2011(v agreement.VD2011) error {
	positive := []struct {
		name  string
		value int
	}{
		{"LeadTimeDays", v.LeadTimeDays},
		{"NotifyTroops", v.NotifyTroops},
		{"NotifyBattleTanks", v.NotifyBattleTanks},
		{"NotifyACVs", v.NotifyACVs},
		{"NotifyArtillery", v.NotifyArtillery},
		{"NotifySorties", v.NotifySorties},
		{"NotifyLandingTroops", v.NotifyLandingTroops},
		{"ObserveTroops", v.ObserveTroops},
		{"ObserveBattleTanks", v.ObserveBattleTanks},
		{"ObserveACVs", v.ObserveACVs},
		{"ObserveArtillery", v.ObserveArtillery},
		{"ObserveLandingTroops", v.ObserveLandingTroops},
		{"AlertObserveHours", v.AlertObserveHours},
		{"CalendarMonth", v.CalendarMonth},
		{"CalendarDay", v.CalendarDay},
		{"LargeTroops", v.LargeTroops},
		{"LargeBattleTanks", v.LargeBattleTanks},
		{"LargeAdvanceYears", v.LargeAdvanceYears},
		{"LargePerYears", v.LargePerYears},
		{"LargeMaxCount", v.LargeMaxCount},
		{"ConsultReplyHours", v.ConsultReplyHours},
		{"MeetingWithinHours", v.MeetingWithinHours},
		{"InvitationReplyDays", v.InvitationReplyDays},
		{"NearMarginPercent", v.NearMarginPercent},
	}
	for _, p := range positive {
		if p.value <= 0 {
			return fmt.Errorf("%s %d is not positive", p.name, p.value)
		}
	}
	if v.CalendarMonth > 12 {
		return fmt.Errorf("CalendarMonth %d is not a month", v.CalendarMonth)
	}
	if d := time.Date(2001, time.Month(v.CalendarMonth), v.CalendarDay, 0, 0, 0, 0, time.UTC); d.Day() != v.CalendarDay {
		return fmt.Errorf("CalendarDay %d does not exist in month %d", v.CalendarDay, v.CalendarMonth)
	}
	if v.NearMarginPercent > 100 {
		return fmt.Errorf("NearMarginPercent %d is above 100", v.NearMarginPercent)
	}
	return nil
}

// Evaluate judges entries against the rule set at time now and returns the
// findings, sorted by rule, party, the entries concerned and then the
// remaining fields. The result depends only on the set of entries (not on
// their order, and duplicates of an entry count once) and on now, which is
// when deadlines are judged: a deadline with nothing given becomes a
// finding only once now is past it.
//
// Entries without a statement body (nor a Receipt) are ignored. If two entries share a
// sender and seq (equivocation, which the sequence verifier reports), the
// one with the smaller digest is used.
func (e *Engine) Evaluate(entries []Entry, now time.Time) []*parleyv1.Finding {
	return e.evaluate(e.index(entries), now)
}

// evaluate judges the log indexed as lg at now.
func (e *Engine) evaluate(lg *logIndex, now time.Time) []*parleyv1.Finding {
	out := &collector{}
	e.judge(lg, now, out)
	return out.sorted()
}

// judge runs every rule of the set over lg at now, into out.
func (e *Engine) judge(lg *logIndex, now time.Time, out *collector) {
	now = now.UTC()
	e.checkReceipts(lg, now, out)
	switch e.set {
	case agreement.SetVD2011:
		e.evaluateVD2011(lg, now, out)
	case agreement.SetMissile1988:
		e.checkLaunches(lg, out)
	}
}

// collector gathers findings, or hands each to sink if it is set.
type collector struct {
	list []*parleyv1.Finding
	sink func(*parleyv1.Finding)
}

// finding is the content of one finding before it becomes a proto.
type finding struct {
	rule     string
	severity parleyv1.Severity
	party    string
	entries  []*item
	required string
	seen     string
	summary  string
	at       time.Time
}

func (c *collector) add(f finding) {
	refs := make([]*parleyv1.EntryRef, 0, len(f.entries))
	items := slices.Clone(f.entries)
	slices.SortFunc(items, compareItems)
	items = slices.Compact(items)
	for _, it := range items {
		refs = append(refs, &parleyv1.EntryRef{Sender: it.sender, Seq: it.seq, Digest: slices.Clone(it.digest[:])})
	}
	pf := &parleyv1.Finding{
		Rule:     f.rule,
		Severity: f.severity,
		Party:    f.party,
		Entries:  refs,
		Required: f.required,
		Seen:     f.seen,
		Summary:  f.summary,
		At:       timestamppb.New(f.at),
	}
	if c.sink != nil {
		c.sink(pf)
		return
	}
	c.list = append(c.list, pf)
}

// sorted returns the findings in their total, deterministic order.
func (c *collector) sorted() []*parleyv1.Finding {
	slices.SortFunc(c.list, CompareFindings)
	return c.list
}

// CompareFindings is the order of the findings [Engine.Evaluate] returns:
// by rule, party, the entries concerned (sender, seq, digest), the time,
// the severity and then the texts. It is total over distinct findings: a
// caller that gathers findings from [Log.EvaluateEach] and sorts them
// with it, in any number of parts merged, has Evaluate's list.
func CompareFindings(a, b *parleyv1.Finding) int {
	if c := cmp.Compare(a.Rule, b.Rule); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Party, b.Party); c != 0 {
		return c
	}
	if c := slices.CompareFunc(a.Entries, b.Entries, compareRefs); c != 0 {
		return c
	}
	if c := a.At.AsTime().Compare(b.At.AsTime()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Severity, b.Severity); c != 0 {
		return c
	}
	return cmp.Or(
		strings.Compare(a.Required, b.Required),
		strings.Compare(a.Seen, b.Seen),
		strings.Compare(a.Summary, b.Summary),
	)
}

func compareRefs(a, b *parleyv1.EntryRef) int {
	return cmp.Or(
		cmp.Compare(a.Sender, b.Sender),
		cmp.Compare(a.Seq, b.Seq),
		bytes.Compare(a.Digest, b.Digest),
	)
}
