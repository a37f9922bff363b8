package client

import (
	"context"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// idempotent lists the calls the client repeats when the node is
// unavailable or rate-limits it: reads, and SubmitEnvelope, whose repetition
// the node answers as a duplicate. Submit is never repeated: each call
// asks the node to sign a new statement. Server streams are repeated only
// until their first message. Health checks are not repeated: they report
// the node's state now.
var idempotent = map[string]bool{
	parleyv1.SubmissionService_SubmitEnvelope_FullMethodName: true,
	parleyv1.ExchangeService_PullFeed_FullMethodName:         true,
	parleyv1.ExchangeService_FeedHeads_FullMethodName:        true,
	parleyv1.LogService_GetCheckpoint_FullMethodName:         true,
	parleyv1.LogService_GetEntries_FullMethodName:            true,
	parleyv1.LogService_GetEntry_FullMethodName:              true,
	parleyv1.LogService_GetInclusionProof_FullMethodName:     true,
	parleyv1.LogService_GetConsistencyProof_FullMethodName:   true,
	parleyv1.SubscriptionService_ListFindings_FullMethodName: true,
	parleyv1.SubscriptionService_ListEvidence_FullMethodName: true,
}

// Retries of idempotent calls: up to maxRetries more attempts, backing off
// exponentially from retryBackoff (with jitter, at most maxRetryBackoff
// between attempts), within the call's deadline.
const (
	maxRetries      = 5
	retryBackoff    = 100 * time.Millisecond
	maxRetryBackoff = 2 * time.Second
)

// retryOptions returns the dial options that retry idempotent calls failing
// with UNAVAILABLE (the node restarting, a broken connection) or
// RESOURCE_EXHAUSTED (the node's per-party rate limit). A caller turns
// retries off for one call with the call option retry.Disable().
func retryOptions() []grpc.DialOption {
	match := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return idempotent[c.FullMethod()]
	})
	opts := []retry.CallOption{
		retry.WithMax(maxRetries),
		retry.WithBackoff(retry.BackoffExponentialWithJitterBounded(retryBackoff, 0.2, maxRetryBackoff)),
		retry.WithCodes(codes.Unavailable, codes.ResourceExhausted),
	}
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(selector.UnaryClientInterceptor(retry.UnaryClientInterceptor(opts...), match)),
		grpc.WithChainStreamInterceptor(selector.StreamClientInterceptor(retry.StreamClientInterceptor(opts...), match)),
	}
}
