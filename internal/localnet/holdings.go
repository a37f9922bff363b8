package localnet

import (
	"context"
	"fmt"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/envelope"
)

// EntryKey names one entry of a feed.
type EntryKey struct {
	Sender string
	Seq    uint64
}

func (k EntryKey) String() string { return fmt.Sprintf("%s/%d", k.Sender, k.Seq) }

// Holdings is what one node's log holds: every entry's digest, and which
// parties' receipts acknowledge it with that digest.
type Holdings struct {
	// Entries maps each entry to its digest.
	Entries map[EntryKey][32]byte
	// Receipts maps an entry to the parties whose receipts acknowledge it
	// with the digest held here, each with the seq of its first such
	// receipt.
	Receipts map[EntryKey]map[string]uint64
	// Substantive lists the entries that are not receipts.
	Substantive []EntryKey
}

// ReceiptedBy reports whether every party in by acknowledged k.
func (h *Holdings) ReceiptedBy(k EntryKey, by ...string) bool {
	for _, p := range by {
		if _, ok := h.Receipts[k][p]; !ok {
			return false
		}
	}
	return true
}

// Holdings reads party's whole log as its operator.
func (n *Network) Holdings(ctx context.Context, party string) (*Holdings, error) {
	c, err := n.Operator(ctx, party)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return ReadHoldings(ctx, c)
}

// ReadHoldings reads a node's whole log through c.
func ReadHoldings(ctx context.Context, c *client.Client) (*Holdings, error) {
	h := &Holdings{Entries: map[EntryKey][32]byte{}, Receipts: map[EntryKey]map[string]uint64{}}
	type ack struct {
		by     string
		seq    uint64
		digest [32]byte
	}
	acks := map[EntryKey][]ack{}
	for start := uint64(0); ; {
		page, err := c.Entries(ctx, start, 1000)
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
			k := EntryKey{hd.GetSender(), hd.GetSeq()}
			h.Entries[k] = p.Digest
			r := p.Statement.GetBody().GetReceipt()
			if r == nil {
				h.Substantive = append(h.Substantive, k)
				continue
			}
			for _, a := range r.GetAcks() {
				var d [32]byte
				copy(d[:], a.GetDigest())
				ak := EntryKey{a.GetSender(), a.GetSeq()}
				acks[ak] = append(acks[ak], ack{by: k.Sender, seq: k.Seq, digest: d})
			}
		}
		start += uint64(len(page))
	}
	for k, as := range acks {
		d, ok := h.Entries[k]
		if !ok {
			continue
		}
		for _, a := range as {
			if a.digest != d {
				continue
			}
			if h.Receipts[k] == nil {
				h.Receipts[k] = map[string]uint64{}
			}
			if s, ok := h.Receipts[k][a.by]; !ok || a.seq < s {
				h.Receipts[k][a.by] = a.seq
			}
		}
	}
	return h, nil
}
