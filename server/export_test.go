package server

import (
	"context"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// ObserveCheckpoint exposes the fork check to tests: it checks raw, a
// checkpoint of party's log, against the last one the node verified, asking
// prove for consistency proofs.
func (n *Node) ObserveCheckpoint(ctx context.Context, party string, raw []byte, prove func(ctx context.Context, from, to uint64) ([][]byte, error)) error {
	return n.observeCheckpoint(ctx, party, raw, prove)
}

// Evidence lists the node's evidence as ListEvidence does.
func (n *Node) Evidence(ctx context.Context) ([]*parleyv1.Evidence, error) {
	resp, err := (&subscriptionService{n: n}).ListEvidence(ctx, &parleyv1.ListEvidenceRequest{})
	return resp.GetEvidence(), err
}
