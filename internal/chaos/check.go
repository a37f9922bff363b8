package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/internal/localnet"
)

// chain is the sequence of distinct checkpoints fetched from one node over
// the run. Consecutive ones are proven consistent with consistency proofs
// from that node; since consistency of Merkle tree heads is transitive,
// a proven chain shows every checkpoint consistent with every earlier one.
type chain struct {
	party string

	mu          sync.Mutex
	cps         []*client.Checkpoint
	proven      int // cps[0..proven] are proven consistent, pairwise in order
	forks       []string
	regressions int
	bad         int // checkpoints that did not verify
}

// observe fetches party's checkpoint, adds it to its chain, and proves
// whatever consecutive pairs are not proven yet. Errors reaching the node
// are returned (it may be down); what is wrong is kept in the chain.
func (h *harness) observe(ctx context.Context, party string) error {
	c, ch := h.readers[party], h.chains[party]
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cp, _, err := c.Checkpoint(cctx, h.net.LogKeys(party))
	if errors.Is(err, client.ErrCheckpoint) {
		ch.mu.Lock()
		ch.bad++
		ch.mu.Unlock()
	}
	if err != nil {
		return err
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if n := len(ch.cps); n > 0 {
		last := ch.cps[n-1]
		switch {
		case cp.Size == last.Size && string(cp.Hash) == string(last.Hash):
			// Nothing new.
		case cp.Size == last.Size:
			ch.forks = append(ch.forks, fmt.Sprintf("%s signed two roots for size %d", party, cp.Size))
		case cp.Size < last.Size:
			// Served a smaller checkpoint than before: stale at least,
			// forked if it is not a prefix of the larger one.
			ch.regressions++
			if err := c.ProveConsistency(cctx, cp, last); errors.Is(err, client.ErrProof) {
				ch.forks = append(ch.forks, fmt.Sprintf("%s's checkpoint %d is not consistent with its earlier %d: %v", party, cp.Size, last.Size, err))
			}
		default:
			ch.cps = append(ch.cps, cp)
		}
	} else {
		ch.cps = append(ch.cps, cp)
	}
	for ch.proven+1 < len(ch.cps) {
		older, newer := ch.cps[ch.proven], ch.cps[ch.proven+1]
		err := c.ProveConsistency(cctx, older, newer)
		if errors.Is(err, client.ErrProof) {
			ch.forks = append(ch.forks, fmt.Sprintf("%s's checkpoint %d is not consistent with its earlier %d: %v", party, newer.Size, older.Size, err))
		} else if err != nil {
			return err // the node is unreachable: prove it later
		}
		ch.proven++
	}
	return nil
}

// latest returns the size of the latest checkpoint of the chain.
func (ch *chain) latest() (uint64, bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if len(ch.cps) == 0 {
		return 0, false
	}
	return ch.cps[len(ch.cps)-1].Size, true
}

// watch fetches party's checkpoint every second until ctx ends.
func (h *harness) watch(ctx context.Context, party string) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := h.observe(ctx, party); err != nil && ctx.Err() == nil {
				h.log.Debug("couldn't observe a checkpoint", "party", party, "err", err)
			}
		}
	}
}

// awaitConvergence polls every node until the network has reconverged,
// or the bound passes.
func (h *harness) awaitConvergence(ctx context.Context) {
	acked := h.ledger.snapshot()
	deadline := time.Now().Add(h.cfg.Reconverge)
	for {
		why := h.converged(ctx, acked)
		if why == "" {
			h.res.Converged = true
			h.res.ReconvergeSeconds = time.Since(h.lastFault).Round(100 * time.Millisecond).Seconds()
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			h.res.problem("the network did not reconverge within %s after the faults: %s", h.cfg.Reconverge, why)
			return
		}
		h.log.Debug("not converged yet", "why", why)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// converged returns "" if every node holds the same entries, among them
// every acknowledged one, every substantive entry is receipted by every
// counterpart of its sender, and each node's witnessed checkpoint covers
// its whole log; otherwise why not.
func (h *harness) converged(ctx context.Context, acked map[localnet.EntryKey][32]byte) string {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var first *localnet.Holdings
	for _, id := range h.net.PartyIDs {
		hd, err := localnet.ReadHoldings(ctx, h.readers[id])
		if err != nil {
			return fmt.Sprintf("couldn't read %s's log: %v", id, err)
		}
		for k, d := range acked {
			if got, ok := hd.Entries[k]; !ok || got != d {
				return fmt.Sprintf("%s lacks acknowledged %s", id, k)
			}
		}
		for _, k := range hd.Substantive {
			for _, p := range h.net.PartyIDs {
				if p != k.Sender && !hd.ReceiptedBy(k, p) {
					return fmt.Sprintf("%s holds no receipt of %s from %s", id, k, p)
				}
			}
		}
		if first == nil {
			first = hd
		} else if d := diff(first.Entries, hd.Entries); d != "" {
			return fmt.Sprintf("%s and %s differ: %s", h.net.PartyIDs[0], id, d)
		}
		if err := h.observe(ctx, id); err != nil {
			return fmt.Sprintf("couldn't check %s's checkpoint: %v", id, err)
		}
		if size, _ := h.chains[id].latest(); size != uint64(len(hd.Entries)) {
			return fmt.Sprintf("%s's witnessed checkpoint covers %d of its %d entries", id, size, len(hd.Entries))
		}
	}
	return ""
}

// diff describes how two logs' entries differ, "" if they do not.
func diff(a, b map[localnet.EntryKey][32]byte) string {
	var out []string
	for k, d := range a {
		if e, ok := b[k]; !ok {
			out = append(out, "only the first holds "+k.String())
		} else if e != d {
			out = append(out, "different digests at "+k.String())
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "only the second holds "+k.String())
		}
	}
	sort.Strings(out)
	if len(out) > 3 {
		out = append(out[:3], fmt.Sprintf("and %d more", len(out)-3))
	}
	return strings.Join(out, "; ")
}

// logScan is one node's whole log, read entry by entry.
type logScan struct {
	entries    map[localnet.EntryKey][32]byte
	size       int
	duplicates int
	gaps       []string
}

// scanLog reads c's node's whole log and checks that each (sender, seq) is
// there once and each feed has no hole.
func scanLog(ctx context.Context, c *client.Client) (*logScan, error) {
	s := &logScan{entries: map[localnet.EntryKey][32]byte{}}
	seqs := map[string]uint64{} // sender → highest seq
	count := map[string]int{}   // sender → distinct seqs
	for {
		page, err := c.Entries(ctx, uint64(s.size), 1000)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			p, err := envelope.Parse(e.GetEnvelope())
			if err != nil {
				return nil, fmt.Errorf("entry %d does not parse: %w", e.GetIndex(), err)
			}
			hd := p.Statement.GetHeader()
			k := localnet.EntryKey{Sender: hd.GetSender(), Seq: hd.GetSeq()}
			if _, ok := s.entries[k]; ok {
				s.duplicates++
			} else {
				count[k.Sender]++
			}
			s.entries[k] = p.Digest
			seqs[k.Sender] = max(seqs[k.Sender], k.Seq)
		}
		s.size += len(page)
	}
	for _, sender := range slices.Sorted(maps.Keys(seqs)) {
		if uint64(count[sender]) != seqs[sender] {
			s.gaps = append(s.gaps, fmt.Sprintf("%s's feed reaches seq %d with %d entries", sender, seqs[sender], count[sender]))
		}
	}
	return s, nil
}

// check makes the final checks and fills in the result.
func (h *harness) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	r := h.res
	acked := h.ledger.snapshot()
	logs := map[string]*logScan{}
	for _, id := range h.net.PartyIDs {
		s, err := scanLog(ctx, h.readers[id])
		if err != nil {
			r.problem("couldn't read %s's log: %v", id, err)
			continue
		}
		logs[id] = s
		r.LogEntries[id] = s.size
		if s.duplicates > 0 {
			r.Duplicates += s.duplicates
			r.problem("%s's log holds %d entries twice", id, s.duplicates)
		}
		for _, g := range s.gaps {
			r.Gaps++
			r.problem("%s's log: %s", id, g)
		}
	}
	if len(logs) != len(h.net.PartyIDs) {
		return
	}

	// Every acknowledged entry in every log, with the acknowledged digest.
	var lost []string
	for _, k := range slices.SortedFunc(maps.Keys(acked), compareKeys) {
		for _, id := range h.net.PartyIDs {
			if d, ok := logs[id].entries[k]; !ok || d != acked[k] {
				lost = append(lost, fmt.Sprintf("%s (from %s's log)", k, id))
				break
			}
		}
	}
	r.Lost = len(lost)
	if len(lost) > 0 {
		r.problem("%d acknowledged entries lost: %s", len(lost), firstFew(lost))
	}

	// The same feeds everywhere.
	union := map[localnet.EntryKey]bool{}
	for _, s := range logs {
		for k := range s.entries {
			union[k] = true
		}
	}
	var divergent []string
	for _, k := range slices.SortedFunc(maps.Keys(union), compareKeys) {
		ref, refOK := logs[h.net.PartyIDs[0]].entries[k]
		for _, id := range h.net.PartyIDs[1:] {
			if d, ok := logs[id].entries[k]; ok != refOK || d != ref {
				divergent = append(divergent, k.String())
				break
			}
		}
	}
	r.Divergent = len(divergent)
	if len(divergent) > 0 {
		r.problem("the logs differ at %d entries: %s", len(divergent), firstFew(divergent))
	}

	// No fork: prove the last stretch of every chain.
	for _, id := range h.net.PartyIDs {
		if err := h.observe(ctx, id); err != nil {
			r.problem("couldn't check %s's latest checkpoint: %v", id, err)
		}
		ch := h.chains[id]
		ch.mu.Lock()
		r.Checkpoints += len(ch.cps)
		r.ConsistencyProofs += ch.proven
		r.Forks += len(ch.forks)
		r.Regressions += ch.regressions
		for _, f := range ch.forks {
			r.problem("fork: %s", f)
		}
		if ch.regressions > 0 {
			r.problem("%s served a smaller checkpoint than one it served before, %d times", id, ch.regressions)
		}
		if ch.bad > 0 {
			r.problem("%s served %d checkpoints that do not verify against the agreement", id, ch.bad)
		}
		if ch.proven+1 < len(ch.cps) {
			r.problem("%d of %s's checkpoints could not be proven consistent", len(ch.cps)-1-ch.proven, id)
		}
		ch.mu.Unlock()
	}

	// No evidence against anyone: nobody misbehaved.
	for _, id := range h.net.PartyIDs {
		evs, err := h.readers[id].Evidence(ctx)
		if err != nil {
			r.problem("couldn't list %s's evidence: %v", id, err)
			continue
		}
		if len(evs) > 0 {
			r.FalseEvidence += len(evs)
			r.problem("%s holds %d pieces of evidence of misbehaviour, all false: %v", id, len(evs), evs[0])
		}
	}
	h.audit(ctx)
}

// audit asks every mediator for a fresh audit and checks it is clean of
// everything the faults could cause: evidence, feed and log findings,
// missing receipts, audit problems.
func (h *harness) audit(ctx context.Context) {
	r := h.res
	for _, id := range slices.Sorted(maps.Keys(h.mediators)) {
		var err error
		for attempt := range 5 {
			if attempt > 0 {
				time.Sleep(3 * time.Second)
			}
			rep, ferr := fetchAudit(ctx, h.net, id)
			if err = ferr; err != nil {
				continue
			}
			if len(rep.Problems) > 0 && attempt < 4 {
				err = fmt.Errorf("audit incomplete: %s", strings.Join(rep.Problems, "; "))
				continue // a mirror still behind: ask again
			}
			if r.AuditFindings == nil {
				r.AuditFindings = map[string]int{}
			}
			if r.Audit == "" || rank(rep.Result) > rank(r.Audit) {
				r.Audit = rep.Result
			}
			for _, f := range rep.Findings {
				r.AuditFindings[f.Rule]++
			}
			for _, p := range rep.Problems {
				r.problem("mediator %s's audit is incomplete: %s", id, p)
			}
			if len(rep.Evidence) > 0 {
				r.FalseEvidence += len(rep.Evidence)
				r.problem("mediator %s's audit reports %d pieces of evidence, all false: %s", id, len(rep.Evidence), rep.Evidence[0].Summary)
			}
			for _, f := range rep.Findings {
				if !contentRule(f.Rule) {
					r.problem("mediator %s's audit: %s %s: %s", id, f.Rule, f.Severity, f.Summary)
				}
			}
			break
		}
		if err != nil {
			r.problem("couldn't audit with mediator %s: %v", id, err)
		}
	}
}

// contentRule reports whether rule judges what a notification says (the
// agreed reporting rules, VD.* and BM.*), which the harness's load decides,
// rather than whether entries were exchanged, receipted and logged.
func contentRule(rule string) bool {
	return strings.HasPrefix(rule, "VD.") || strings.HasPrefix(rule, "BM.")
}

func rank(result string) int {
	switch result {
	case "clean":
		return 0
	case "violations":
		return 1
	default:
		return 2
	}
}

func compareKeys(a, b localnet.EntryKey) int {
	if c := strings.Compare(a.Sender, b.Sender); c != 0 {
		return c
	}
	switch {
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

func firstFew(s []string) string {
	if len(s) > 5 {
		return strings.Join(s[:5], ", ") + fmt.Sprintf(" and %d more", len(s)-5)
	}
	return strings.Join(s, ", ")
}
