package mediator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Files and directories of a mediator's data directory. Together they are
// everything [AuditDir] needs: a copy of them can be audited anywhere.
const (
	// mirrorDir holds one MirrorLog per party, in a directory named after
	// the party id.
	mirrorDir = "mirror"
	// collectedFile is the JSON Collected state, rewritten after every
	// sync.
	collectedFile = "collected.json"
	// agreementCopy is the signed agreement the mediator runs under.
	agreementCopy = "agreement.yaml"
	// witnessDB is the witness's bbolt database.
	witnessDB = "witness.db"
)

// Collected is what a mediator gathered besides the mirrored entries, as
// stored in its data directory for the auditor: its own witness's state,
// the other mediators' cosigned checkpoints, evidence the nodes reported,
// checkpoints that did not match the mirror, and problems met while
// syncing.
type Collected struct {
	// Mediator is the id of the mediator that collected this.
	Mediator string `json:"mediator"`
	// At is when the state was last written.
	At time.Time `json:"at"`
	// Cosigned maps a log origin to the latest checkpoint this mediator's
	// witness cosigned for it (with the log's signature and the witness's
	// cosignature).
	Cosigned map[string][]byte `json:"cosigned"`
	// WitnessForks is the fork evidence the witness recorded.
	WitnessForks []ForkEvidence `json:"witness_forks"`
	// Peers are the checkpoints other mediators said they cosigned.
	Peers []PeerCheckpoint `json:"peers"`
	// NodeEvidence is the equivocation evidence the nodes reported.
	NodeEvidence []NodeEquivocation `json:"node_evidence"`
	// Checkpoints are signed checkpoints of the nodes that the mirror could
	// not reconcile with its entries when it fetched them; the auditor
	// judges them against the mirror.
	Checkpoints []SeenCheckpoint `json:"checkpoints"`
	// Problems are the latest sync problems, by party or mediator id.
	Problems map[string]string `json:"problems"`
}

// PeerCheckpoint is a checkpoint another mediator's witness cosigned.
type PeerCheckpoint struct {
	Mediator   string    `json:"mediator"`
	Origin     string    `json:"origin"`
	Checkpoint []byte    `json:"checkpoint"`
	At         time.Time `json:"at"`
}

// NodeEquivocation is equivocation evidence a node reported
// (SubscriptionService.ListEvidence).
type NodeEquivocation struct {
	// Node is the party whose node reported it.
	Node   string `json:"node"`
	Sender string `json:"sender"`
	Seq    uint64 `json:"seq"`
	First  []byte `json:"first"`
	Second []byte `json:"second"`
	Source string `json:"source"`
}

// SeenCheckpoint is a node's checkpoint kept for the auditor.
type SeenCheckpoint struct {
	Party      string    `json:"party"`
	Checkpoint []byte    `json:"checkpoint"`
	At         time.Time `json:"at"`
	// Proof is a consistency proof the node served with it, from the
	// mirror's size to the checkpoint's, when it had one.
	Proof [][]byte `json:"proof,omitempty"`
	// Note says why it was kept.
	Note string `json:"note"`
}

// loadCollected reads dir's collected state; a missing file is an empty
// state.
func loadCollected(dir string) (*Collected, error) {
	c := &Collected{Cosigned: map[string][]byte{}, Problems: map[string]string{}}
	b, err := os.ReadFile(filepath.Join(dir, collectedFile))
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read collected state: %w", err)
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("couldn't decode collected state %s: %w", filepath.Join(dir, collectedFile), err)
	}
	if c.Cosigned == nil {
		c.Cosigned = map[string][]byte{}
	}
	if c.Problems == nil {
		c.Problems = map[string]string{}
	}
	return c, nil
}

// save writes the collected state into dir atomically.
func (c *Collected) save(dir string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("couldn't encode collected state: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, collectedFile), b); err != nil {
		return fmt.Errorf("couldn't write collected state: %w", err)
	}
	return nil
}

// clone returns a deep enough copy for the auditor to read while the
// server goes on collecting.
func (c *Collected) clone() *Collected {
	d := *c
	d.Cosigned = make(map[string][]byte, len(c.Cosigned))
	for k, v := range c.Cosigned {
		d.Cosigned[k] = v
	}
	d.Problems = make(map[string]string, len(c.Problems))
	for k, v := range c.Problems {
		d.Problems[k] = v
	}
	d.WitnessForks = slices.Clone(c.WitnessForks)
	d.Peers = slices.Clone(c.Peers)
	d.NodeEvidence = slices.Clone(c.NodeEvidence)
	d.Checkpoints = slices.Clone(c.Checkpoints)
	return &d
}
