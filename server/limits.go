package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-dev/parley/certs"
)

// Limits bound what callers may ask of a node. A zero field takes the
// default of [DefaultLimits].
type Limits struct {
	// MaxRecvMessageBytes bounds one message the node receives. An
	// envelope is at most 64 KiB, so the default, 1 MiB, leaves room.
	MaxRecvMessageBytes int
	// MaxSendMessageBytes bounds one message the node sends: a page of
	// entries can hold up to 1,000 envelopes. Default 80 MiB.
	MaxSendMessageBytes int
	// MaxConcurrentStreams bounds the calls in flight on one connection;
	// clients queue the calls above it. Default 100.
	MaxConcurrentStreams uint32
	// KeepaliveMinTime is the shortest interval between a client's
	// keepalive pings: a client that pings more often is disconnected
	// (GOAWAY "too_many_pings"). Default 10 s.
	KeepaliveMinTime time.Duration
	// KeepaliveTime is how long a connection may be idle before the node
	// pings the client, and KeepaliveTimeout how long it then waits for the
	// answer before closing the connection. Defaults 1 min and 20 s.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// RatePerParty is how many calls per second, sustained, all the
	// identities of one trust domain (a party or a mediator) may make
	// together; calls above it fail with RESOURCE_EXHAUSTED. Health checks
	// are not limited. Default 100; negative disables the limit (and the
	// entry limit below).
	RatePerParty float64
	// EntryRatePerParty is how many entries per second, sustained, one
	// trust domain may stream to the node (entry delivery between nodes;
	// each streamed message counts one, and a Deliver request one per
	// envelope it carries):
	// they wait for it instead of failing, so a flooding peer is slowed
	// down by flow control. It is separate from RatePerParty because one
	// notification brings several entries (receipts). Default 5,000.
	EntryRatePerParty float64
	// EntryBurstPerParty is how many streamed entries may arrive at once
	// above EntryRatePerParty. Default 10,000.
	EntryBurstPerParty int
	// BurstPerParty is how many calls a trust domain may make at once above
	// the sustained rate. Default 200.
	BurstPerParty int
	// ShutdownGrace bounds how long the node waits, when it stops, for
	// calls in flight to finish before it closes their connections.
	// Subscriptions are ended at once. Default 10 s.
	ShutdownGrace time.Duration
}

// maxMessageSize is the default bound of a message the node sends, and
// what its own clients accept: an envelope is at most 64 KiB, a page of
// entries at most 1,000 of them.
const maxMessageSize = 80 << 20

// DefaultLimits are the limits a node applies to the fields of
// Config.Limits left zero.
var DefaultLimits = Limits{
	MaxRecvMessageBytes:  1 << 20,
	MaxSendMessageBytes:  maxMessageSize,
	MaxConcurrentStreams: 100,
	KeepaliveMinTime:     10 * time.Second,
	KeepaliveTime:        time.Minute,
	KeepaliveTimeout:     20 * time.Second,
	RatePerParty:         100,
	BurstPerParty:        200,
	EntryRatePerParty:    5000,
	EntryBurstPerParty:   10000,
	ShutdownGrace:        10 * time.Second,
}

// withDefaults returns l with its zero fields set from DefaultLimits, or
// an error for a negative field (other than RatePerParty).
func (l Limits) withDefaults() (Limits, error) {
	d := DefaultLimits
	switch {
	case l.MaxRecvMessageBytes < 0, l.MaxSendMessageBytes < 0, l.BurstPerParty < 0, l.EntryRatePerParty < 0, l.EntryBurstPerParty < 0:
		return l, errors.New("limits: sizes and burst must not be negative")
	case l.KeepaliveMinTime < 0, l.KeepaliveTime < 0, l.KeepaliveTimeout < 0, l.ShutdownGrace < 0:
		return l, errors.New("limits: durations must not be negative")
	}
	setDefault(&l.MaxRecvMessageBytes, d.MaxRecvMessageBytes)
	setDefault(&l.MaxSendMessageBytes, d.MaxSendMessageBytes)
	setDefault(&l.MaxConcurrentStreams, d.MaxConcurrentStreams)
	setDefault(&l.KeepaliveMinTime, d.KeepaliveMinTime)
	setDefault(&l.KeepaliveTime, d.KeepaliveTime)
	setDefault(&l.KeepaliveTimeout, d.KeepaliveTimeout)
	setDefault(&l.RatePerParty, d.RatePerParty)
	setDefault(&l.BurstPerParty, d.BurstPerParty)
	setDefault(&l.EntryRatePerParty, d.EntryRatePerParty)
	setDefault(&l.EntryBurstPerParty, d.EntryBurstPerParty)
	setDefault(&l.ShutdownGrace, d.ShutdownGrace)
	return l, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// partyLimiter is a token bucket per trust domain of the callers. Trust
// domains come from verified certificates, so there are at most as many
// buckets as parties and mediators in the agreement. It is safe for
// concurrent use.
type partyLimiter struct {
	limit       rate.Limit
	burst       int
	entryLimit  rate.Limit
	entryBurst  int
	metrics     *metrics
	mu          sync.Mutex
	buckets     map[string]*rate.Limiter // calls
	entryBucket map[string]*rate.Limiter // streamed messages
}

// newPartyLimiter returns the limiter of l, or nil when l disables it.
func newPartyLimiter(l Limits, m *metrics) *partyLimiter {
	if l.RatePerParty < 0 {
		return nil
	}
	return &partyLimiter{
		limit: rate.Limit(l.RatePerParty), burst: l.BurstPerParty,
		entryLimit: rate.Limit(l.EntryRatePerParty), entryBurst: l.EntryBurstPerParty,
		metrics: m, buckets: map[string]*rate.Limiter{}, entryBucket: map[string]*rate.Limiter{},
	}
}

// bucket returns the token bucket of the caller of ctx, and its trust domain.
func (p *partyLimiter) bucket(ctx context.Context) (*rate.Limiter, string) {
	party := ""
	if id, ok := certs.PeerIdentity(ctx); ok {
		party = id.Party
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.buckets[party]
	if !ok {
		b = rate.NewLimiter(p.limit, p.burst)
		p.buckets[party] = b
	}
	return b, party
}

// Limit takes a token for a call, or says why the call is refused. It
// implements the go-grpc-middleware ratelimit.Limiter, which turns the
// error into RESOURCE_EXHAUSTED.
func (p *partyLimiter) Limit(ctx context.Context) error {
	b, party := p.bucket(ctx)
	if b.Allow() {
		return nil
	}
	p.metrics.rateLimited.WithLabelValues(party).Inc()
	return fmt.Errorf("trust domain %q is over its rate limit of %g calls/s (burst %d); retry with backoff", party, float64(p.limit), p.burst)
}

// streamInterceptor makes every message a caller streams to the node wait
// for a token of the caller's trust domain: a peer delivering entries is
// slowed down (HTTP/2 flow control pushes back to it), not refused.
func (p *partyLimiter) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !info.IsClientStream {
		return handler(srv, ss)
	}
	party := ""
	if id, ok := certs.PeerIdentity(ss.Context()); ok {
		party = id.Party
	}
	p.mu.Lock()
	b, ok := p.entryBucket[party]
	if !ok {
		b = rate.NewLimiter(p.entryLimit, p.entryBurst)
		p.entryBucket[party] = b
	}
	p.mu.Unlock()
	return handler(srv, &throttledStream{ServerStream: ss, bucket: b})
}

type throttledStream struct {
	grpc.ServerStream
	bucket *rate.Limiter
}

func (s *throttledStream) RecvMsg(m any) error {
	if err := s.wait(1); err != nil {
		return err
	}
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	// A Deliver request may carry more envelopes than its first: each
	// costs a token too, before the next message is read.
	if r, ok := m.(interface{ GetMore() [][]byte }); ok {
		for n := len(r.GetMore()); n > 0; {
			k := min(n, max(s.bucket.Burst(), 1))
			if err := s.wait(k); err != nil {
				return err
			}
			n -= k
		}
	}
	return nil
}

// wait waits for n tokens (at most the bucket's burst).
func (s *throttledStream) wait(n int) error {
	if err := s.bucket.WaitN(s.Context(), n); err != nil {
		if cerr := s.Context().Err(); cerr != nil {
			return status.FromContextError(cerr).Err()
		}
		return status.Errorf(codes.ResourceExhausted, "couldn't wait for the rate limit: %v", err)
	}
	return nil
}
