// Package client is the Go client for a Parley node. It dials with mutual
// TLS from certificate files, wraps the generated gRPC stubs in a small API,
// and checks what the node says: checkpoints against the agreement's keys,
// inclusion and consistency proofs against checkpoints. It never trusts the
// node it talks to.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/certs"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// Config says where and how to dial a node.
type Config struct {
	// Address is the node's gRPC address, host:port. Required.
	Address string
	// CertFile and KeyFile are this client's certificate and key (PEM),
	// issued by its party's (or mediator's) CA. Required.
	CertFile, KeyFile string
	// CAFiles maps each trust domain (party or mediator id) to its CA
	// certificate file (PEM). The node's party must be among them.
	CAFiles map[string]string
	// Party is the party whose node is dialled: the server certificate must
	// carry spiffe://<Party>/node/.... Required.
	Party string
	// Timeout bounds each unary call. Default 30 s.
	Timeout time.Duration
}

// Client talks to one node. It is safe for concurrent use.
type Client struct {
	conn    *grpc.ClientConn
	timeout time.Duration

	// Submission, Exchange, Log and Subscription are the generated stubs,
	// for calls this package does not wrap.
	Submission   parleyv1.SubmissionServiceClient
	Exchange     parleyv1.ExchangeServiceClient
	Log          parleyv1.LogServiceClient
	Subscription parleyv1.SubscriptionServiceClient

	// FindingsPageSize is how many findings Findings and FindingsAsOf ask
	// the node for per call (0: the node's default, 1,000); they call
	// again until they have them all.
	FindingsPageSize int32
}

// Dial connects to the node described by cfg. The connection is made
// lazily; the first call reports handshake errors.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Address == "" || cfg.CertFile == "" || cfg.KeyFile == "" || cfg.Party == "" {
		return nil, errors.New("client config needs address, cert file, key file and party")
	}
	pems := map[string][]byte{}
	for domain, path := range cfg.CAFiles {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("couldn't read CA file for %q: %w", domain, err)
		}
		pems[domain] = b
	}
	if _, ok := pems[cfg.Party]; !ok {
		return nil, fmt.Errorf("no CA file for party %q, whose node is dialled", cfg.Party)
	}
	bundle, err := certs.NewTrustBundle(pems)
	if err != nil {
		return nil, fmt.Errorf("couldn't build the trust bundle: %w", err)
	}
	kp, err := certs.LoadKeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("couldn't load the client certificate: %w", err)
	}
	tlsCfg := certs.ClientConfig(bundle, kp.Certificate, cfg.Party)
	return DialTLS(ctx, cfg.Address, credentials.NewTLS(tlsCfg), cfg.Timeout)
}

// The client's HTTP/2 receive windows. They are fixed rather than sized
// by grpc-go's bandwidth-delay estimate, which sends a PING for nearly
// every answer received and so costs a write, a read and a wake-up on
// both sides per call (a fifth of the client's CPU per Submit in parley
// bench). 4 MiB per stream lets a large GetEntries answer (up to 80 MiB)
// stream without waiting on window updates over links of up to about
// 4 MiB per round trip; 8 MiB per connection bounds what a node can make
// the client hold unread.
const (
	streamWindow = 4 << 20
	connWindow   = 8 << 20
)

// DialTLS connects with ready-made transport credentials. Idempotent calls
// (reads, SubmitEnvelope) are retried with backoff when the node is
// unavailable or rate-limits the caller; see retryOptions.
func DialTLS(_ context.Context, address string, creds credentials.TransportCredentials, timeout time.Duration, opts ...grpc.DialOption) (*Client, error) {
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	opts = append(append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(80 << 20)),
		grpc.WithStaticStreamWindowSize(streamWindow),
		grpc.WithStaticConnWindowSize(connWindow),
	}, retryOptions()...), opts...)
	conn, err := grpc.NewClient(address, opts...)
	if err != nil {
		return nil, fmt.Errorf("couldn't set up a connection to %s: %w", address, err)
	}
	return &Client{
		conn:         conn,
		timeout:      timeout,
		Submission:   parleyv1.NewSubmissionServiceClient(conn),
		Exchange:     parleyv1.NewExchangeServiceClient(conn),
		Log:          parleyv1.NewLogServiceClient(conn),
		Subscription: parleyv1.NewSubscriptionServiceClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

// Notify submits an activity notification; the node signs it with the
// party's key, sequences and logs it, and returns the logged entry.
func (c *Client) Notify(ctx context.Context, n *parleyv1.ActivityNotification) (*parleyv1.LogEntry, error) {
	resp, err := c.Submit(ctx, &parleyv1.Body{Kind: &parleyv1.Body_Notification{Notification: n}})
	if err != nil {
		return nil, err
	}
	return resp.GetEntry(), nil
}

// Submit submits any statement body for the node to sign.
func (c *Client) Submit(ctx context.Context, body *parleyv1.Body) (*parleyv1.SubmitResponse, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.Submission.Submit(ctx, &parleyv1.SubmitRequest{Body: body})
	if err != nil {
		return nil, fmt.Errorf("couldn't submit: %w", err)
	}
	return resp, nil
}

// SubmitEnvelope submits an envelope signed elsewhere (an offline signing
// station). Resubmitting the same envelope is harmless.
func (c *Client) SubmitEnvelope(ctx context.Context, raw []byte) (*parleyv1.SubmitEnvelopeResponse, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.Submission.SubmitEnvelope(ctx, &parleyv1.SubmitEnvelopeRequest{Envelope: raw})
	if err != nil {
		return nil, fmt.Errorf("couldn't submit envelope: %w", err)
	}
	return resp, nil
}

// Entry reads the entry (sender, seq) from the node's log.
func (c *Client) Entry(ctx context.Context, sender string, seq uint64) (*parleyv1.LogEntry, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.Log.GetEntry(ctx, &parleyv1.GetEntryRequest{Sender: sender, Seq: seq})
	if err != nil {
		return nil, fmt.Errorf("couldn't get entry %s/%d: %w", sender, seq, err)
	}
	return resp.GetEntry(), nil
}

// Entries reads up to count entries from index start.
func (c *Client) Entries(ctx context.Context, start uint64, count uint32) ([]*parleyv1.LogEntry, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.Log.GetEntries(ctx, &parleyv1.GetEntriesRequest{Start: start, Count: count})
	if err != nil {
		return nil, fmt.Errorf("couldn't get entries from %d: %w", start, err)
	}
	return resp.GetEntries(), nil
}

// Findings lists the node's findings, optionally for one party or rule.
func (c *Client) Findings(ctx context.Context, party, rule string) ([]*parleyv1.Finding, error) {
	return c.FindingsAsOf(ctx, party, rule, time.Time{})
}

// FindingsAsOf lists the findings with deadlines judged at t instead of
// now (zero t: now): what will be overdue by then if nothing more is said.
// A long list comes in pages, one call each, all judged as of the first
// page's time over the same entries; FindingsAsOf returns them all (see
// FindingsSeq for a list too long to hold).
func (c *Client) FindingsAsOf(ctx context.Context, party, rule string, t time.Time) ([]*parleyv1.Finding, error) {
	var out []*parleyv1.Finding
	for f, err := range c.FindingsSeq(ctx, party, rule, t) {
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// FindingsSeq yields the findings FindingsAsOf lists, page by page as the
// node sends them, without holding the list: a node's list can run to
// millions of findings (one per entry and party for the receipts of a long
// silence). Leaving the loop early asks for no more pages. An error ends
// the sequence, yielded once with a nil finding.
func (c *Client) FindingsSeq(ctx context.Context, party, rule string, t time.Time) iter.Seq2[*parleyv1.Finding, error] {
	return func(yield func(*parleyv1.Finding, error) bool) {
		req := &parleyv1.ListFindingsRequest{Party: party, Rule: rule, PageSize: c.FindingsPageSize}
		if !t.IsZero() {
			req.AsOf = timestamppb.New(t)
		}
		for {
			resp, err := c.findingsPage(ctx, req)
			if err != nil {
				yield(nil, fmt.Errorf("couldn't list findings: %w", err))
				return
			}
			for _, f := range resp.GetFindings() {
				if !yield(f, nil) {
					return
				}
			}
			next := resp.GetNextPageToken()
			if next == "" {
				return
			}
			// Every page but the last holds a finding: a node that says
			// otherwise would keep this loop going.
			if len(resp.GetFindings()) == 0 {
				yield(nil, errors.New("couldn't list findings: the node returned an empty page and a next page"))
				return
			}
			req.PageToken = next
		}
	}
}

// findingsPage asks for one page of findings, within the client's timeout.
func (c *Client) findingsPage(ctx context.Context, req *parleyv1.ListFindingsRequest) (*parleyv1.ListFindingsResponse, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return c.Subscription.ListFindings(ctx, req)
}

// Evidence lists the misbehaviour evidence the node holds.
func (c *Client) Evidence(ctx context.Context) ([]*parleyv1.Evidence, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.Subscription.ListEvidence(ctx, &parleyv1.ListEvidenceRequest{})
	if err != nil {
		return nil, fmt.Errorf("couldn't list evidence: %w", err)
	}
	return resp.GetEvidence(), nil
}

// Subscribe streams entries from log index from, then new entries (and
// findings and evidence if includeFindings) until ctx is done. Each event
// is passed to fn; Subscribe returns fn's first error, or the stream's.
func (c *Client) Subscribe(ctx context.Context, from uint64, includeFindings bool, fn func(*parleyv1.SubscribeResponse) error) error {
	return c.SubscribeWith(ctx, &parleyv1.SubscribeRequest{FromIndex: from, IncludeFindings: includeFindings}, fn)
}

// SubscribeWith is Subscribe with every field of the request, such as the
// kinds of entries wanted:
//
//	c.SubscribeWith(ctx, &parleyv1.SubscribeRequest{
//		Kinds: []parleyv1.EntryKind{parleyv1.EntryKind_ENTRY_KIND_RECEIPT},
//	}, fn)
func (c *Client) SubscribeWith(ctx context.Context, req *parleyv1.SubscribeRequest, fn func(*parleyv1.SubscribeResponse) error) error {
	stream, err := c.Subscription.Subscribe(ctx, req)
	if err != nil {
		return fmt.Errorf("couldn't subscribe: %w", err)
	}
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("subscription ended: %w", err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}

// Healthy reports whether the node's health service says SERVING for
// service ("" for the node as a whole).
func (c *Client) Healthy(ctx context.Context, service string) (bool, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := healthpb.NewHealthClient(c.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return false, fmt.Errorf("couldn't check health: %w", err)
	}
	return resp.GetStatus() == healthpb.HealthCheckResponse_SERVING, nil
}
