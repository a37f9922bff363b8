package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/server"
)

// TestResumeSeq holds where a node's delivery to a peer resumes at
// start-up to the cursor persisted for that peer: one below the lowest own
// seq logged at or after the cursor's index, or the node's head when the
// log holds none there.
func TestResumeSeq(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := bareNetwork(t)
	node := startNode(t, n, "alpha", func(c *server.Config) { c.Exchange.PeerTLS = nil })
	alpha, err := n.Operator(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	defer alpha.Close()
	const count = 6
	index := map[uint64]uint64{} // seq → log index
	var head uint64
	for i := range count {
		e, err := alpha.Notify(ctx, notification(300+uint32(i)))
		if err != nil {
			t.Fatal(err)
		}
		index[e.GetSeq()] = e.GetIndex()
		head = max(head, e.GetSeq())
	}
	// want is resumeSeq's answer worked out from the entries Notify
	// returned.
	want := func(cursor uint64) uint64 {
		lowest := uint64(0)
		for seq, i := range index {
			if i >= cursor && (lowest == 0 || seq < lowest) {
				lowest = seq
			}
		}
		if lowest == 0 {
			return head
		}
		return lowest - 1
	}
	for _, cursor := range []uint64{0, 1, 3, count - 1, count, count + 100} {
		t.Run(fmt.Sprintf("cursor %d", cursor), func(t *testing.T) {
			if err := node.SetDeliveryCursor("bravo", cursor); err != nil {
				t.Fatal(err)
			}
			got, err := node.ResumeSeq(ctx, "bravo")
			if err != nil {
				t.Fatal(err)
			}
			if got != want(cursor) {
				t.Errorf("resumes after seq %d, want %d (entries by seq: %v)", got, want(cursor), index)
			}
		})
	}
}

// TestResumeSeqPastOthersEntries holds resumeSeq to its rule where the log
// interleaves other feeds with the node's own: alpha logs bravo's 150
// notifications and, among them, its own receipts of them (one a second
// at most here, so that long runs of bravo's entries lie between alpha's),
// then notifications of its own. resumeSeq stops at the first own entry at
// or after the cursor; its answer must be the rule's over the log as read
// back (the lowest own seq at or after the cursor), for every cursor whose
// answer entries appended later cannot change: one with an own entry after
// it in the log read. The cursors are set for a peer outside the network,
// so that no delivery moves them.
func TestResumeSeqPastOthersEntries(t *testing.T) {
	x := fastExchange
	x.ReceiptDelay = "1s"
	run := startNetwork(t, localnet.Options{NoMediators: true, Parties: []string{"alpha", "bravo"}, Exchange: x})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alpha, bravo := operator(t, run, "alpha"), operator(t, run, "bravo")
	const theirs = 150
	for i := range theirs {
		if _, err := bravo.Notify(ctx, notification(300+uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "alpha to hold bravo's notifications", func() (bool, error) {
		_, err := alpha.Entry(ctx, "bravo", theirs)
		return err == nil, nil
	})
	for i := range 3 {
		if _, err := alpha.Notify(ctx, notification(400+uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	var log []*parleyv1.LogEntry
	for {
		page, err := alpha.Entries(ctx, uint64(len(log)), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		log = append(log, page...)
	}
	longest, run0 := 0, 0 // the longest run of bravo's entries between alpha's
	for _, e := range log {
		if e.GetSender() == "alpha" {
			longest, run0 = max(longest, run0), 0
		} else {
			run0++
		}
	}
	if longest <= 32 {
		t.Fatalf("no run of more than 32 of bravo's entries between alpha's in a log of %d: the test reads nothing past resumeSeq's first read", len(log))
	}
	node := run.Nodes["alpha"]
	checked := 0
	for cursor := range uint64(len(log)) {
		lowest := uint64(0)
		for _, e := range log[cursor:] {
			if e.GetSender() == "alpha" && (lowest == 0 || e.GetSeq() < lowest) {
				lowest = e.GetSeq()
			}
		}
		if lowest == 0 {
			continue // the answer depends on what is logged next
		}
		if err := node.SetDeliveryCursor("zulu", cursor); err != nil {
			t.Fatal(err)
		}
		got, err := node.ResumeSeq(ctx, "zulu")
		if err != nil {
			t.Fatal(err)
		}
		if got != lowest-1 {
			t.Fatalf("cursor %d: resumes after seq %d, want %d", cursor, got, lowest-1)
		}
		checked++
	}
	if checked < theirs {
		t.Errorf("checked %d cursors of a log of %d, want at least %d", checked, len(log), theirs)
	}
}
