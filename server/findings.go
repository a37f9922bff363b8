package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parley-dev/parley/envelope"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier/rules"
)

// Findings: the rules engine judges the whole log, so a node that kept every
// statement in memory for it would grow by about a kilobyte per entry,
// without bound. The node keeps none: an evaluation reads the statements from
// the log (the source of truth, and on local disk), evaluates, and drops
// them. Only the findings of the last evaluation are kept (and the list a
// page token pins); a metrics scrape's evaluation keeps only their counts,
// since a list can be longer than the log.
//
// Explicit queries (ListFindings) always get an evaluation of the log as it
// is, at the time they ask about; two queries about the same log size and
// second share one evaluation. Background consumers (metrics scrapes,
// subscriptions) accept findings a little stale: they reuse the last
// evaluation while it is younger than max(findingsMinAge, findingsDuty ×
// the time it took), so that however often they ask, evaluating costs at
// most about 1/findingsDuty of one core.

const (
	// findingsMinAge is how long background consumers reuse an evaluation
	// at least.
	findingsMinAge = time.Second
	// findingsDuty bounds background evaluation: an evaluation that took d
	// is reused for findingsDuty × d.
	findingsDuty = 20
	// ruleReadBatch is how many log entries one read fetches.
	ruleReadBatch = 1024
)

// findingsCache is an evaluation kept: the list of findings, or for a
// metrics scrape's only their counts (list nil).
type findingsCache struct {
	size   uint64    // log entries it judged
	at     time.Time // when deadlines were judged
	done   time.Time // when it finished
	took   time.Duration
	list   *findingsList // nil for a metrics scrape's
	counts findingCounts // of list, or of the findings not kept
}

// findings evaluates the agreed rules over the log for a background
// consumer: it may return the last evaluation if it is recent enough.
func (n *Node) findings(ctx context.Context) (*findingsList, error) {
	if l, fresh := n.lastFindings(); fresh {
		return l, nil
	}
	return n.findingsAt(ctx, n.cfg.Now().Truncate(time.Second))
}

// lastFindings returns the findings of the last evaluation (nil before the
// first) without waiting for one in progress, and whether background
// consumers may still use them (see reusable).
func (n *Node) lastFindings() (l *findingsList, fresh bool) {
	n.cacheMu.Lock()
	c := n.findingsCache
	n.cacheMu.Unlock()
	return c.list, c.list != nil && reusable(c.done, c.took)
}

// reusable reports whether background consumers may still use an
// evaluation that finished at done and took took: it is younger than
// max(findingsMinAge, findingsDuty × took).
func reusable(done time.Time, took time.Duration) bool {
	return time.Since(done) < max(findingsMinAge, findingsDuty*took)
}

// findingCounts counts findings by rule and the party they are about.
type findingCounts map[countKey]int

type countKey struct{ rule, party string }

// add counts f.
func (c findingCounts) add(f *parleyv1.Finding) { c[countKey{f.GetRule(), f.GetParty()}]++ }

// scrapeFindingsTimeout bounds a rule evaluation started by a scrape.
const scrapeFindingsTimeout = 5 * time.Minute

// scrapeFindings returns the counts of the findings at once, for a metrics
// scrape, which must not wait for the whole log to be read: those of the
// latest evaluation, of the list (which a query or a subscriber asked
// for) or of the counts alone, each counted once when it was made. When that evaluation is stale (by the
// background rule of findings), it starts one in the background, one at a
// time, for the next scrape, which counts the findings and keeps none: a
// scrape does not hold the list (which can be longer than the log) between
// scrapes, nor whole while it is evaluated. It returns nil before the
// first evaluation.
func (n *Node) scrapeFindings() findingCounts {
	n.cacheMu.Lock()
	latest := n.findingsCache
	if c := n.countsCache; c.counts != nil && (latest.counts == nil || c.done.After(latest.done)) {
		latest = c
	}
	n.cacheMu.Unlock()
	if (latest.counts == nil || !reusable(latest.done, latest.took)) && n.refreshing.CompareAndSwap(false, true) {
		go func() {
			defer n.refreshing.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), scrapeFindingsTimeout)
			defer cancel()
			if err := n.countFindings(ctx); err != nil {
				n.log.Warn("couldn't evaluate findings for metrics", "err", err)
			}
		}()
	}
	return latest.counts
}

// countFindings evaluates the rules over the log as it is, with deadlines
// judged now, and keeps only the counts of the findings (countsCache).
func (n *Node) countFindings(ctx context.Context) error {
	n.findingsMu.Lock() // one evaluation at a time
	defer n.findingsMu.Unlock()
	size, err := n.tlog.DurableSize(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read the log size: %w", err)
	}
	now := n.cfg.Now().Truncate(time.Second)
	counts := findingCounts{}
	c, err := n.evaluate(ctx, size, now, func(lg *rules.Log) { lg.EvaluateEach(now, counts.add) })
	if err != nil {
		return err
	}
	c.counts = counts
	n.cacheMu.Lock()
	n.countsCache = c
	n.cacheMu.Unlock()
	return nil
}

// evaluate reads the first size entries of the log into the rules engine
// and has judge evaluate them, and returns the evaluation's record (its
// findings for the caller to set). It counts the evaluation's time in the
// node's metrics.
func (n *Node) evaluate(ctx context.Context, size uint64, now time.Time, judge func(*rules.Log)) (findingsCache, error) {
	if f := n.cfg.Evaluating; f != nil {
		if done := f(size); done != nil {
			defer done()
		}
	}
	start := time.Now()
	lg, err := n.ruleLog(ctx, size)
	if err != nil {
		return findingsCache{}, err
	}
	judge(lg)
	took := time.Since(start)
	n.metrics.findingsEvaluated(took)
	return findingsCache{size: size, at: now, done: time.Now(), took: took}, nil
}

// ruleLog reads the first size entries of the log into a log for the rules
// engine.
func (n *Node) ruleLog(ctx context.Context, size uint64) (*rules.Log, error) {
	// The entries go straight into the engine's log, which keeps what the
	// rules read of each once; compacted, a notification or receipt keeps
	// only that, and its statement is garbage at once.
	lg := n.engine.NewLog(int(min(size, 1<<24)))
	var r statementReader
	err := n.scanEntries(ctx, 0, size, func(i uint64, raw []byte) error {
		e, err := decodeStatement(raw, &r)
		if err != nil {
			return fmt.Errorf("log entry %d: %w", i, err)
		}
		lg.Add(rules.Compact(e))
		return nil
	})
	return lg, err
}

// findingsAt evaluates the rules over every entry of the log, with
// deadlines judged at now, the present. Findings are a function of the
// entries and now, so the last evaluation is reused while neither changed.
func (n *Node) findingsAt(ctx context.Context, now time.Time) (*findingsList, error) {
	l, _, err := n.findingsOver(ctx, now, nil, true)
	return l, err
}

// findingsOver is findingsAt over the first *upTo entries of the log, or
// over all of them if upTo is nil; it also returns how many entries it
// judged. present says that now is the present, not a time a client
// asked about. The last evaluation of the log as it is at present, and
// the last other one (a list as of another time, or for a page token), are
// kept for reuse. A long list is kept in a file (findingsList).
func (n *Node) findingsOver(ctx context.Context, now time.Time, upTo *uint64, present bool) (*findingsList, uint64, error) {
	n.findingsMu.Lock() // one evaluation at a time; others wait for its result
	defer n.findingsMu.Unlock()
	durable, err := n.tlog.DurableSize(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("couldn't read the log size: %w", err)
	}
	size := durable
	if upTo != nil {
		if *upTo > durable {
			return nil, 0, fmt.Errorf("%w: findings over %d entries asked of a log of %d", errBeyondLog, *upTo, durable)
		}
		size = *upTo
	}
	n.cacheMu.Lock()
	kept := [2]findingsCache{n.findingsCache, n.pagesCache}
	n.cacheMu.Unlock()
	for _, c := range kept {
		if c.list != nil && c.size == size && c.at.Equal(now) {
			return c.list, size, nil
		}
	}
	// The list's counts are kept with it, for metrics scrapes (which read
	// the evaluation of the log as it is, never a page token's).
	current := upTo == nil && present
	var counts findingCounts
	if current {
		counts = findingCounts{}
	}
	b := newListBuilder(n.spillDir, n.spillRun)
	c, err := n.evaluate(ctx, size, now, func(lg *rules.Log) {
		lg.EvaluateEach(now, func(f *parleyv1.Finding) {
			b.add(f)
			if counts != nil {
				counts.add(f)
			}
		})
	})
	if err != nil {
		b.close()
		return nil, 0, err
	}
	if c.list, err = b.finish(); err != nil {
		return nil, 0, err
	}
	c.counts = counts
	// An evaluation of the log as it is at present is the one background
	// consumers reuse; one for a page token (the entries and time of a
	// list's first page) is kept apart, so that neither displaces the
	// other: when background evaluations displaced it, every later page of
	// a list over a growing log evaluated the log again. So is a list as
	// of another time, which is its asker's: subscribers and metrics were
	// handed the deadlines of a list as of two years ahead as passed.
	n.cacheMu.Lock()
	if current {
		n.findingsCache = c
	} else {
		n.pagesCache = c
	}
	n.cacheMu.Unlock()
	return c.list, size, nil
}

// errBeyondLog is wrapped by findingsOver's error for more entries than the
// log holds.
var errBeyondLog = errors.New("beyond the log")

// scanStatements calls fn with the statement of every log entry in
// [from, to), in log order. The entries were verified when the node
// accepted them, so this only decodes them. The statements are whole:
// receipt recovery reads them too; the findings evaluation compacts them
// itself.
func (n *Node) scanStatements(ctx context.Context, from, to uint64, fn func(rules.Entry) error) error {
	return n.scanEntries(ctx, from, to, func(i uint64, raw []byte) error {
		e, err := decodeStatement(raw, nil)
		if err != nil {
			return fmt.Errorf("log entry %d: %w", i, err)
		}
		return fn(e)
	})
}

// scanEntries calls fn with the index and bytes of every log entry in
// [from, to), in log order.
func (n *Node) scanEntries(ctx context.Context, from, to uint64, fn func(uint64, []byte) error) error {
	for start := from; start < to; start += ruleReadBatch {
		count := int(min(ruleReadBatch, to-start))
		raws, err := n.tlog.Entries(ctx, start, count)
		if err != nil {
			return fmt.Errorf("couldn't read log entries from %d: %w", start, err)
		}
		for i, raw := range raws {
			if err := fn(start+uint64(i), raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeStatement decodes a logged envelope for the rules engine, without
// the checks the node made when it accepted it: only the statement is
// decoded, found by walking the envelope's wire format. With a reader,
// notifications and receipts are read into its messages (valid until its
// next read), anything else in full.
func decodeStatement(raw []byte, r *statementReader) (rules.Entry, error) {
	payload, ok := envelope.PeekPayload(raw)
	if !ok {
		return rules.Entry{}, errors.New("logged envelope has no well-formed payload")
	}
	var st *parleyv1.Statement
	if r != nil {
		st, _ = r.read(payload)
	}
	if st == nil {
		st = new(parleyv1.Statement)
		if err := proto.Unmarshal(payload, st); err != nil {
			return rules.Entry{}, fmt.Errorf("logged statement does not decode: %w", err)
		}
	}
	h := st.GetHeader()
	return rules.Entry{Sender: h.GetSender(), Seq: h.GetSeq(), Digest: envelope.Digest(raw), Statement: st}, nil
}
