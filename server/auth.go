package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-dev/parley/certs"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// access says who may call a method.
type access int

const (
	// ownOperators: operators of this node's party only (writes).
	ownOperators access = iota
	// peerNodes: nodes of the other parties (node-to-node exchange).
	peerNodes
	// readers: any authenticated identity of the agreement: own operators,
	// any party's node, mediators. Contents never leave the agreement's
	// parties and mediators, since every identity chains to their CAs.
	readers
)

// methodAccess lists every method the node serves. A method missing here is
// refused (deny by default). The health service is not listed: GRPCServer
// exempts it from authentication (notHealth), as it needs no identity
// beyond the TLS handshake.
var methodAccess = map[string]access{
	parleyv1.SubmissionService_Submit_FullMethodName:                 ownOperators,
	parleyv1.SubmissionService_SubmitEnvelope_FullMethodName:         ownOperators,
	parleyv1.ExchangeService_Deliver_FullMethodName:                  peerNodes,
	parleyv1.ExchangeService_PullFeed_FullMethodName:                 readers,
	parleyv1.ExchangeService_FeedHeads_FullMethodName:                readers,
	parleyv1.LogService_GetCheckpoint_FullMethodName:                 readers,
	parleyv1.LogService_GetEntries_FullMethodName:                    readers,
	parleyv1.LogService_GetEntry_FullMethodName:                      readers,
	parleyv1.LogService_GetInclusionProof_FullMethodName:             readers,
	parleyv1.LogService_GetConsistencyProof_FullMethodName:           readers,
	parleyv1.SubscriptionService_Subscribe_FullMethodName:            readers,
	parleyv1.SubscriptionService_ListFindings_FullMethodName:         readers,
	parleyv1.SubscriptionService_ListEvidence_FullMethodName:         readers,
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      readers,
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": readers,
}

// authorize checks the verified peer identity against the method's access
// rule and returns a context carrying the identity.
func (n *Node) authorize(ctx context.Context, method string) (context.Context, error) {
	rule, ok := methodAccess[method]
	if !ok {
		return nil, status.Errorf(codes.PermissionDenied, "method %s is not served to anyone", method)
	}
	id, ok := certs.PeerIdentity(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no verified client certificate: connect with mTLS and a certificate from your party's CA")
	}
	// The handshake checked the CRLs in force then; check them again, so
	// that a revocation also cuts off connections made before it.
	if err := n.cfg.Revocations.CheckPeer(ctx); err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "%v", err)
	}
	// The TLS layer checked the chain against the CA of id.Party; here the
	// role must fit what the agreement says that trust domain is.
	a := n.cfg.Agreement.Agreement
	if id.Role == certs.RoleMediator {
		if _, ok := a.Mediator(id.Party); !ok {
			return nil, status.Errorf(codes.PermissionDenied, "%s claims the mediator role but %q is not a mediator of the agreement", id, id.Party)
		}
	} else if _, ok := a.Party(id.Party); !ok {
		return nil, status.Errorf(codes.PermissionDenied, "%s claims role %s but %q is not a party of the agreement", id, id.Role, id.Party)
	}
	ctx = certs.WithIdentity(ctx, id)
	switch rule {
	case ownOperators:
		if id.Role != certs.RoleOperator || id.Party != n.party {
			return nil, status.Errorf(codes.PermissionDenied, "%s may not submit to %s's node: only operators of party %q (spiffe://%s/operator/...) may", id, n.party, n.party, n.party)
		}
	case peerNodes:
		if id.Role != certs.RoleNode || id.Party == n.party {
			return nil, status.Errorf(codes.PermissionDenied, "%s may not deliver entries: only other parties' nodes (spiffe://<party>/node/...) may", id)
		}
		if _, ok := n.cfg.Agreement.Agreement.Party(id.Party); !ok {
			return nil, status.Errorf(codes.PermissionDenied, "%s is not a party of the agreement", id)
		}
	case readers:
		if id.Role == certs.RoleOperator && id.Party != n.party {
			return nil, status.Errorf(codes.PermissionDenied, "%s may not read %s's node: operators read their own party's node", id, n.party)
		}
	}
	return ctx, nil
}

// authenticate is the auth interceptors' function: it authorizes the
// call's method for the verified peer and returns a context carrying the
// peer's identity (see certs.IdentityFrom).
func (n *Node) authenticate(ctx context.Context) (context.Context, error) {
	method, ok := grpc.Method(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "no method in the call's context")
	}
	return n.authorize(ctx, method)
}
