package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
