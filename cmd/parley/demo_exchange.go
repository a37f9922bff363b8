package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// exchange shows the entries just logged reaching every other party's node,
// each acknowledged by a signed receipt of every counterpart, which the
// sender's node holds.
func (s *scenario) exchange(ctx context.Context, entries []*parleyv1.LogEntry) {
	fmt.Fprintln(s.out, "\n1b. Exchange: each node delivers its entries to every other party's node; each counterpart answers with a signed receipt in its own feed")
	for _, e := range entries {
		k := localnet.EntryKey{Sender: e.GetSender(), Seq: e.GetSeq()}
		var holders, receipts, missing []string
		deadline := time.Now().Add(30 * time.Second)
		for {
			holders, receipts, missing = s.exchanged(ctx, k, e.GetDigest())
			if len(missing) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		s.check(len(missing) == 0, "%s held by %s; receipts at %s's node: %s%s",
			k, list(holders), k.Sender, list(receipts), missingSuffix(missing))
	}
}

// exchanged reads every node's log: which other parties' nodes hold k with
// the given digest, which receipts of k the sender's node holds (as
// "party/seq" of the receipt), and what is still missing.
func (s *scenario) exchanged(ctx context.Context, k localnet.EntryKey, digest []byte) (holders, receipts, missing []string) {
	for _, id := range s.net.PartyIDs {
		if id == k.Sender {
			continue
		}
		h, err := s.net.Holdings(ctx, id)
		if d, ok := h.Entries[k]; err != nil || !ok || string(d[:]) != string(digest) {
			missing = append(missing, id+"'s node lacks it")
			continue
		}
		holders = append(holders, id)
	}
	h, err := s.net.Holdings(ctx, k.Sender)
	if err != nil {
		return holders, receipts, append(missing, "couldn't read "+k.Sender+"'s log: "+err.Error())
	}
	for _, id := range s.net.PartyIDs {
		if id == k.Sender {
			continue
		}
		if seq, ok := h.Receipts[k][id]; ok {
			receipts = append(receipts, fmt.Sprintf("%s/%d", id, seq))
		} else {
			missing = append(missing, "no receipt from "+id)
		}
	}
	return holders, receipts, missing
}

func list(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

func missingSuffix(missing []string) string {
	if len(missing) == 0 {
		return ""
	}
	return " (missing after 30 s: " + strings.Join(missing, "; ") + ")"
}
