package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/envelope"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier"
)

type submissionService struct {
	parleyv1.UnimplementedSubmissionServiceServer
	n *Node
}

type exchangeService struct {
	parleyv1.UnimplementedExchangeServiceServer
	n *Node
}

type logService struct {
	parleyv1.UnimplementedLogServiceServer
	n *Node
}

type subscriptionService struct {
	parleyv1.UnimplementedSubscriptionServiceServer
	n *Node
}

// statusOf maps an acceptance error to a gRPC status, at the boundary.
func (n *Node) statusOf(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	var gap *verifier.GapError
	var eq *verifier.EquivocationError
	code := codes.Internal
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.As(err, &gap):
		code = codes.FailedPrecondition
	case errors.As(err, &eq):
		code = codes.AlreadyExists
	case errors.Is(err, verifier.ErrWrongPrev):
		code = codes.FailedPrecondition
	case errors.Is(err, verifier.ErrUnknownSender):
		code = codes.PermissionDenied
	case errors.Is(err, envelope.ErrTooLarge):
		code = codes.ResourceExhausted
	case errors.Is(err, verifier.ErrBadSignature), errors.Is(err, verifier.ErrKeyNotValid),
		errors.Is(err, verifier.ErrWrongAgreement), errors.Is(err, verifier.ErrInvalid),
		errors.Is(err, envelope.ErrMalformed), errors.Is(err, envelope.ErrNonCanonical),
		errors.Is(err, envelope.ErrPayloadType), errors.Is(err, envelope.ErrBadSignature),
		errors.Is(err, envelope.ErrUnknownKey):
		code = codes.InvalidArgument
	}
	if code == codes.Internal {
		n.log.ErrorContext(ctx, "internal error", "err", err)
		return status.Error(codes.Internal, "internal error; see the node's log")
	}
	return status.Error(code, err.Error())
}

func (s *submissionService) Submit(ctx context.Context, req *parleyv1.SubmitRequest) (*parleyv1.SubmitResponse, error) {
	if req.GetBody().GetReceipt() != nil {
		return nil, status.Error(codes.InvalidArgument, "receipts are made by the node itself, not submitted by operators")
	}
	res, err := s.n.submit(ctx, req.GetBody())
	if err != nil {
		return nil, s.n.statusOf(ctx, err)
	}
	return &parleyv1.SubmitResponse{Entry: res.entry, Duplicate: res.duplicate}, nil
}

func (s *submissionService) SubmitEnvelope(ctx context.Context, req *parleyv1.SubmitEnvelopeRequest) (*parleyv1.SubmitEnvelopeResponse, error) {
	p, err := envelope.Parse(req.GetEnvelope())
	if err != nil {
		s.n.metrics.entryRejected(err, "submission")
		return nil, s.n.statusOf(ctx, err)
	}
	if sender := p.Statement.GetHeader().GetSender(); sender != s.n.party {
		id, _ := certs.IdentityFrom(ctx)
		return nil, status.Errorf(codes.PermissionDenied, "%s may submit only party %q's own entries, got an envelope from sender %q", id, s.n.party, sender)
	}
	res, err := s.n.accept(ctx, req.GetEnvelope(), "submission")
	if err != nil {
		return nil, s.n.statusOf(ctx, err)
	}
	return &parleyv1.SubmitEnvelopeResponse{Entry: res.entry, Duplicate: res.duplicate}, nil
}

// Deliver receives a peer's entries; see Node.serveDeliver.
func (s *exchangeService) Deliver(stream parleyv1.ExchangeService_DeliverServer) error {
	return s.n.serveDeliver(stream)
}

func (s *exchangeService) PullFeed(req *parleyv1.PullFeedRequest, stream parleyv1.ExchangeService_PullFeedServer) error {
	ctx := stream.Context()
	sent := uint32(0)
	for seq := req.GetFromSeq(); req.GetLimit() == 0 || sent < req.GetLimit(); seq++ {
		entry, ok, err := s.n.entryBySeq(ctx, req.GetSender(), seq)
		if err != nil {
			return s.n.statusOf(ctx, err)
		}
		if !ok {
			return nil
		}
		if err := stream.Send(&parleyv1.PullFeedResponse{Entry: entry}); err != nil {
			return err
		}
		sent++
	}
	return nil
}

func (s *exchangeService) FeedHeads(ctx context.Context, _ *parleyv1.FeedHeadsRequest) (*parleyv1.FeedHeadsResponse, error) {
	heads, err := s.n.store.Heads()
	if err != nil {
		return nil, s.n.statusOf(ctx, err)
	}
	resp := &parleyv1.FeedHeadsResponse{}
	for _, p := range s.n.cfg.Agreement.Agreement.Parties {
		if h, ok := heads[p.ID]; ok {
			resp.Heads = append(resp.Heads, &parleyv1.FeedHead{Sender: p.ID, Seq: h.Seq, Digest: h.Digest[:]})
		}
	}
	return resp, nil
}

// entryBySeq reads (sender, seq) from the log, if it is held and readable.
func (n *Node) entryBySeq(ctx context.Context, sender string, seq uint64) (*parleyv1.LogEntry, bool, error) {
	ref, ok, err := n.store.Lookup(sender, seq)
	if err != nil || !ok {
		return nil, false, err
	}
	size, err := n.tlog.DurableSize(ctx)
	if err != nil {
		return nil, false, err
	}
	if ref.Index >= size {
		return nil, false, nil // indexed ahead of the log
	}
	raws, err := n.tlog.Entries(ctx, ref.Index, 1)
	if err != nil {
		return nil, false, err
	}
	if len(raws) != 1 {
		return nil, false, nil
	}
	return &parleyv1.LogEntry{Index: ref.Index, Envelope: raws[0], Digest: ref.Digest[:], Sender: sender, Seq: seq}, true, nil
}

func (s *logService) GetCheckpoint(ctx context.Context, _ *parleyv1.GetCheckpointRequest) (*parleyv1.GetCheckpointResponse, error) {
	cp, err := s.n.tlog.Checkpoint(ctx)
	if err != nil {
		return nil, s.n.statusOf(ctx, err)
	}
	return &parleyv1.GetCheckpointResponse{Checkpoint: cp}, nil
}

func (s *logService) GetEntries(ctx context.Context, req *parleyv1.GetEntriesRequest) (*parleyv1.GetEntriesResponse, error) {
	entries, err := s.n.entries(ctx, req.GetStart(), int(req.GetCount()))
	if err != nil {
		return nil, err
	}
	return &parleyv1.GetEntriesResponse{Entries: entries}, nil
}

// entries reads up to count durable entries from start.
func (n *Node) entries(ctx context.Context, start uint64, count int) ([]*parleyv1.LogEntry, error) {
	out, _, err := n.entriesOf(ctx, start, count, 0)
	return out, err
}

// kindSet says which kinds of entries a reader wants: bit k for kind k.
// The empty set wants every entry.
type kindSet uint64

// kindSetOf returns the set of kinds (every entry for none).
func kindSetOf(kinds []parleyv1.EntryKind) kindSet {
	var set kindSet
	for _, k := range kinds {
		if k > 0 && k < 64 {
			set |= 1 << k
		}
	}
	return set
}

// has reports whether the set wants an entry of kind k.
func (s kindSet) has(k parleyv1.EntryKind) bool {
	return s == 0 || k > 0 && k < 64 && s&(1<<k) != 0
}

// entriesOf is entries keeping only those of the kinds wanted: it reads up
// to count log entries from start and also returns how many it read.
func (n *Node) entriesOf(ctx context.Context, start uint64, count int, kinds kindSet) (out []*parleyv1.LogEntry, read int, err error) {
	size, err := n.tlog.DurableSize(ctx)
	if err != nil {
		return nil, 0, n.statusOf(ctx, err)
	}
	if start >= size {
		if start > size {
			return nil, 0, status.Errorf(codes.OutOfRange, "start %d is beyond the log size %d", start, size)
		}
		return nil, 0, nil
	}
	if rem := size - start; uint64(count) > rem {
		count = int(rem)
	}
	raws, err := n.tlog.Entries(ctx, start, count)
	if err != nil {
		return nil, 0, n.statusOf(ctx, err)
	}
	if kinds == 0 {
		out = make([]*parleyv1.LogEntry, 0, len(raws))
	}
	for i, raw := range raws {
		// Every entry was verified before it was logged: reading its
		// sender, seq and kind is enough (a full parse per entry served
		// cost about 4 % of a node's CPU with one subscriber).
		if kinds != 0 {
			if k, ok := envelope.PeekKind(raw); !ok || !kinds.has(k) {
				continue
			}
		}
		h, ok := envelope.PeekHeader(raw)
		if !ok {
			return nil, 0, n.statusOf(ctx, fmt.Errorf("log entry %d has no readable header", start+uint64(i)))
		}
		d := envelope.Digest(raw)
		out = append(out, &parleyv1.LogEntry{Index: start + uint64(i), Envelope: raw, Digest: d[:], Sender: h.Sender, Seq: h.Seq})
	}
	return out, len(raws), nil
}

func (s *logService) GetEntry(ctx context.Context, req *parleyv1.GetEntryRequest) (*parleyv1.GetEntryResponse, error) {
	entry, ok, err := s.n.entryBySeq(ctx, req.GetSender(), req.GetSeq())
	if err != nil {
		return nil, s.n.statusOf(ctx, err)
	}
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no entry %s/%d in %s's log", req.GetSender(), req.GetSeq(), s.n.party)
	}
	return &parleyv1.GetEntryResponse{Entry: entry}, nil
}

func (s *logService) GetInclusionProof(ctx context.Context, req *parleyv1.GetInclusionProofRequest) (*parleyv1.GetInclusionProofResponse, error) {
	if req.GetIndex() >= req.GetTreeSize() {
		return nil, status.Errorf(codes.InvalidArgument, "index %d must be below tree size %d", req.GetIndex(), req.GetTreeSize())
	}
	if err := s.n.checkSize(ctx, req.GetTreeSize()); err != nil {
		return nil, err
	}
	hashes, err := s.n.tlog.InclusionProof(ctx, req.GetIndex(), req.GetTreeSize())
	if err != nil {
		return nil, s.n.statusOf(ctx, err)
	}
	return &parleyv1.GetInclusionProofResponse{Index: req.GetIndex(), TreeSize: req.GetTreeSize(), Hashes: hashes}, nil
}

func (s *logService) GetConsistencyProof(ctx context.Context, req *parleyv1.GetConsistencyProofRequest) (*parleyv1.GetConsistencyProofResponse, error) {
	if req.GetFromSize() > req.GetToSize() {
		return nil, status.Errorf(codes.InvalidArgument, "from_size %d must not exceed to_size %d", req.GetFromSize(), req.GetToSize())
	}
	if err := s.n.checkSize(ctx, req.GetToSize()); err != nil {
		return nil, err
	}
	hashes, err := s.n.tlog.ConsistencyProof(ctx, req.GetFromSize(), req.GetToSize())
	if err != nil {
		return nil, s.n.statusOf(ctx, err)
	}
	return &parleyv1.GetConsistencyProofResponse{FromSize: req.GetFromSize(), ToSize: req.GetToSize(), Hashes: hashes}, nil
}

func (n *Node) checkSize(ctx context.Context, treeSize uint64) error {
	size, err := n.tlog.Size(ctx)
	if err != nil {
		return n.statusOf(ctx, err)
	}
	if treeSize > size {
		return status.Errorf(codes.OutOfRange, "tree size %d is beyond the published size %d", treeSize, size)
	}
	return nil
}

func (s *subscriptionService) Subscribe(req *parleyv1.SubscribeRequest, stream parleyv1.SubscriptionService_SubscribeServer) error {
	ctx := stream.Context()
	next := req.GetFromIndex()
	evRead := -1 // the hub's evidence count when the store was last read
	// sent holds the digests of the evidence sent already.
	sent := map[[sha256.Size]byte]bool{}
	var (
		lastEval time.Time
		// lastFindings is the list last sent: the node hands out the same
		// list until it evaluates again (findings), and of a new list only
		// what lastFindings does not hold is sent (eachNew). The node
		// keeps no record per finding sent: for millions of findings, a
		// set of their digests held tens of bytes each per subscriber.
		lastFindings *findingsList
	)
	kinds := kindSetOf(req.GetKinds())
	poll := time.NewTicker(s.n.cfg.CheckpointInterval)
	defer poll.Stop()
	for {
		wake, evCount := s.n.hub.waiter()
		for {
			batch, read, err := s.n.entriesOf(ctx, next, 256, kinds)
			if err != nil {
				return err
			}
			if read == 0 {
				break
			}
			for _, e := range batch {
				if err := stream.Send(&parleyv1.SubscribeResponse{Kind: &parleyv1.SubscribeResponse_Entry{Entry: e}, At: timestamppb.Now()}); err != nil {
					return err
				}
			}
			next += uint64(read)
		}
		if req.GetIncludeFindings() {
			// Evidence comes from the store, kept across restarts:
			// everything at the start, then whatever is new.
			var evs []*parleyv1.Evidence
			if evCount != evRead {
				var err error
				if evs, err = s.n.evidence(); err != nil {
					return s.n.statusOf(ctx, err)
				}
				evRead = evCount
			}
			for _, ev := range evs {
				key := sha256.Sum256(append([]byte("e"), mustMarshal(ev)...))
				if sent[key] {
					continue
				}
				sent[key] = true
				if err := stream.Send(&parleyv1.SubscribeResponse{Kind: &parleyv1.SubscribeResponse_Evidence{Evidence: ev}, At: timestamppb.Now()}); err != nil {
					return err
				}
			}
			// Rule evaluation covers the whole log: at most once a
			// second per subscriber, however fast entries arrive.
			if time.Since(lastEval) >= time.Second {
				fs, err := s.n.findings(ctx)
				if err != nil {
					return s.n.statusOf(ctx, err)
				}
				lastEval = time.Now()
				if fs != lastFindings {
					var sendErr error
					err := eachNew(lastFindings, fs, func(f *parleyv1.Finding) error {
						sendErr = stream.Send(&parleyv1.SubscribeResponse{Kind: &parleyv1.SubscribeResponse_Finding{Finding: f}, At: timestamppb.Now()})
						return sendErr
					})
					if sendErr != nil {
						return sendErr
					}
					if err != nil {
						return s.n.statusOf(ctx, err)
					}
					lastFindings = fs
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-poll.C:
		}
	}
}

func (s *subscriptionService) ListFindings(ctx context.Context, req *parleyv1.ListFindingsRequest) (*parleyv1.ListFindingsResponse, error) {
	at := s.n.cfg.Now()
	if req.GetAsOf() != nil {
		at = req.GetAsOf().AsTime()
	}
	var (
		upTo   *uint64
		offset uint64
	)
	if req.GetPageToken() != "" {
		tok, err := parseFindingsToken(req.GetPageToken())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if req.GetAsOf() == nil {
			at = time.Unix(0, tok.at)
		}
		if tok.at != at.UnixNano() || tok.query != findingsQuery(req) {
			return nil, status.Error(codes.InvalidArgument, "page_token was made for another list: ask for the next page with party, rule and as_of as they were for the first")
		}
		upTo, offset = &tok.size, tok.offset
	}
	fs, size, err := s.n.findingsOver(ctx, at, upTo, req.GetAsOf() == nil && upTo == nil)
	if errors.Is(err, errBeyondLog) {
		return nil, status.Errorf(codes.InvalidArgument, "page_token is not one this node made: %v", err)
	}
	if err != nil {
		return nil, s.n.statusOf(ctx, err)
	}
	// A page is read from the whole list, from where the last page's
	// reading stopped (the token's offset is a position in fs, not among
	// the matching findings): each page costs its own findings and the ones
	// it skips, and nothing is copied, however long the list. (Filtering
	// the whole list again for every page made listing a million findings
	// quadratic: over ten minutes, mostly copying and collecting garbage.)
	page := cmp.Or(int(req.GetPageSize()), defaultFindingsPage)
	resp := &parleyv1.ListFindingsResponse{}
	err = fs.each(int(min(offset, uint64(fs.Len()))), func(i int, f *parleyv1.Finding) bool {
		if (req.GetParty() != "" && f.GetParty() != req.GetParty()) || (req.GetRule() != "" && f.GetRule() != req.GetRule()) {
			return true
		}
		if len(resp.Findings) == page {
			resp.NextPageToken = findingsToken{at: at.UnixNano(), size: size, offset: uint64(i), query: findingsQuery(req)}.String()
			return false
		}
		resp.Findings = append(resp.Findings, f)
		return true
	})
	if err != nil {
		return nil, s.n.statusOf(ctx, err)
	}
	return resp, nil
}

// defaultFindingsPage is how many findings ListFindings returns at most
// when the request sets no page size.
const defaultFindingsPage = 1000

// findingsToken is what a ListFindings page token says: the rest of the
// list judged as of at over the first size entries of the log, from
// position offset of the whole (unfiltered) list, for the query whose
// findingsQuery is query.
type findingsToken struct {
	at     int64 // Unix nanoseconds
	size   uint64
	offset uint64
	query  uint64
}

// findingsTokenLen is the length of a findingsToken's bytes.
const findingsTokenLen = 32

// String encodes t as a page token.
func (t findingsToken) String() string {
	b := make([]byte, 0, findingsTokenLen)
	b = binary.BigEndian.AppendUint64(b, uint64(t.at))
	b = binary.BigEndian.AppendUint64(b, t.size)
	b = binary.BigEndian.AppendUint64(b, t.offset)
	b = binary.BigEndian.AppendUint64(b, t.query)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseFindingsToken decodes a page token made by findingsToken.String.
func parseFindingsToken(s string) (findingsToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != findingsTokenLen {
		return findingsToken{}, fmt.Errorf("page_token %q is not one this node made: pass next_page_token as it was returned", s)
	}
	return findingsToken{
		at:     int64(binary.BigEndian.Uint64(b)),
		size:   binary.BigEndian.Uint64(b[8:]),
		offset: binary.BigEndian.Uint64(b[16:]),
		query:  binary.BigEndian.Uint64(b[24:]),
	}, nil
}

// findingsQuery identifies the filters of a ListFindings request, so that
// a page token is not used for another list.
func findingsQuery(req *parleyv1.ListFindingsRequest) uint64 {
	h := sha256.Sum256([]byte(req.GetParty() + "\x00" + req.GetRule()))
	return binary.BigEndian.Uint64(h[:])
}

func (s *subscriptionService) ListEvidence(ctx context.Context, _ *parleyv1.ListEvidenceRequest) (*parleyv1.ListEvidenceResponse, error) {
	evs, err := s.n.evidence()
	if err != nil {
		return nil, s.n.statusOf(ctx, err)
	}
	return &parleyv1.ListEvidenceResponse{Evidence: evs}, nil
}

// evidence returns the evidence of misbehaviour the node keeps: every
// equivocation and fork it saw.
func (n *Node) evidence() ([]*parleyv1.Evidence, error) {
	var out []*parleyv1.Evidence
	for _, kind := range []string{"equivocation", "fork"} {
		kept, err := n.store.Evidence(kind)
		if err != nil {
			return nil, err
		}
		for _, raw := range kept {
			ev := &parleyv1.Evidence{}
			if err := proto.Unmarshal(raw, ev); err != nil {
				return nil, fmt.Errorf("stored evidence does not parse: %w", err)
			}
			out = append(out, ev)
		}
	}
	return out, nil
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", m, err)) // only for messages built here
	}
	return b
}
