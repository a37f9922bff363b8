package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/parley-dev/parley/envelope"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// Node-to-node exchange (ARCHITECTURE.md §5, issue 5).
//
// Every node pushes its own entries, and only those, to every other party's
// node over one long-lived Deliver stream per peer (delivery.go). Entries of
// third parties travel by anti-entropy instead: each node periodically, and
// as soon as a peer's receipt mentions an entry it lacks, compares feed heads
// with each peer and pulls what it misses (PullFeed). Pulled entries are
// verified exactly like delivered ones, so a peer relays signed entries when
// a direct link is down. Flooding every entry to every peer would cost
// (n-1)² deliveries per entry; pushing own entries costs n-1, and receipts,
// batched (receipts.go), add (n-1)²/B for a batch of B acknowledgements.
//
// The same loop tracks each peer's checkpoints and checks their consistency
// (forks.go), and cross-checks what peers' receipts say they hold, which
// brings equivocations to light wherever two conflicting envelopes meet.

// Defaults of ExchangeConfig.
const (
	DefaultReceiptDelay   = 50 * time.Millisecond
	DefaultReceiptMaxAcks = 500
	DefaultSyncInterval   = 2 * time.Second
	DefaultRelayDelay     = 250 * time.Millisecond
	DefaultBackoffMin     = 100 * time.Millisecond
	DefaultBackoffMax     = 5 * time.Second
	DefaultWindow         = 256

	// maxReceiptAcks is the most acknowledgements one receipt may carry
	// (the schema's limit).
	maxReceiptAcks = 1000
	// ownCacheSize is how many of its own latest envelopes a node keeps in
	// memory for delivery; older ones are read back from the log.
	ownCacheSize = 8192
	// pullLimit bounds the entries pulled from one peer for one feed in one
	// round.
	pullLimit = 4096
	// maxClaims bounds the acknowledgements of entries not held yet that a
	// node remembers to compare once it holds them.
	maxClaims = 100000
	// maxConflictFetches bounds the rounds in which a peer is asked for a
	// conflicting entry it answers without (it may not have indexed it
	// yet): after that many the node gives up on that peer's copy.
	maxConflictFetches = 5
	// rpcTimeout bounds unary calls to peers.
	rpcTimeout = 10 * time.Second
)

// ExchangeConfig configures how a node talks to its peers. The zero value
// serves peers and writes receipts but dials nobody.
type ExchangeConfig struct {
	// PeerTLS returns the mTLS client configuration used to dial the node of
	// party peer: this node's certificate, and the agreement's CAs expecting
	// a server spiffe://<peer>/node/... (certs.ClientConfig). Optional:
	// without it the node neither delivers, pulls nor checks its peers'
	// checkpoints; it still serves them and receipts what they deliver.
	PeerTLS func(peer string) *tls.Config
	// PeerAddresses replaces the agreement's endpoints of some parties'
	// nodes, by party id. For tests only: pointing a peer at an unreachable
	// address (127.0.0.1:1) cuts the direct link to it. Optional.
	PeerAddresses map[string]string
	// ReceiptDelay is the least time between two receipts of the node:
	// acknowledgements arriving sooner after a receipt wait for the next
	// one, which carries all of them (see receipts.go). Default
	// DefaultReceiptDelay.
	ReceiptDelay time.Duration
	// ReceiptMaxAcks is how many acknowledgements fill a receipt, which is
	// then written at once. Default DefaultReceiptMaxAcks, at most 1000.
	ReceiptMaxAcks int
	// SyncInterval is how often the node compares feed heads and
	// checkpoints with each peer. Default DefaultSyncInterval.
	SyncInterval time.Duration
	// RelayDelay is how long the node waits, after a peer's receipt named
	// an entry it lacks, before pulling it from that peer, giving the
	// direct delivery time to arrive. Default DefaultRelayDelay.
	RelayDelay time.Duration
	// BackoffMin and BackoffMax bound the capped exponential backoff, with
	// jitter, between attempts to reach a peer. Defaults DefaultBackoffMin
	// and DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// Window is how many entries may await the peer's answer on a delivery
	// stream. Default DefaultWindow.
	Window int
}

func (c *ExchangeConfig) setDefaults() error {
	var errs []error
	def := func(d *time.Duration, v time.Duration, name string) {
		switch {
		case *d == 0:
			*d = v
		case *d < 0:
			errs = append(errs, fmt.Errorf("exchange: %s: got %s, want a positive duration", name, *d))
		}
	}
	def(&c.ReceiptDelay, DefaultReceiptDelay, "receipt delay")
	def(&c.SyncInterval, DefaultSyncInterval, "sync interval")
	def(&c.RelayDelay, DefaultRelayDelay, "relay delay")
	def(&c.BackoffMin, DefaultBackoffMin, "backoff min")
	def(&c.BackoffMax, DefaultBackoffMax, "backoff max")
	if c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("exchange: backoff max %s is below backoff min %s", c.BackoffMax, c.BackoffMin))
	}
	if c.ReceiptMaxAcks == 0 {
		c.ReceiptMaxAcks = DefaultReceiptMaxAcks
	}
	if c.ReceiptMaxAcks < 1 || c.ReceiptMaxAcks > maxReceiptAcks {
		errs = append(errs, fmt.Errorf("exchange: receipt max acks: got %d, want 1 to %d", c.ReceiptMaxAcks, maxReceiptAcks))
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Window < 1 {
		errs = append(errs, fmt.Errorf("exchange: window: got %d, want at least 1", c.Window))
	}
	return errors.Join(errs...)
}

// ExchangeStats counts what a node sent to and fetched from its peers since
// it started.
type ExchangeStats struct {
	// Delivered is how many envelopes the node pushed on Deliver streams,
	// in DeliverRequests requests (several envelopes each to a peer that
	// takes them).
	Delivered, DeliverRequests uint64
	// Pulled is how many entries the node received from PullFeed.
	Pulled uint64
	// HeadsCalls is how many FeedHeads calls the node made.
	HeadsCalls uint64
	// CheckpointCalls is how many GetCheckpoint and GetConsistencyProof
	// calls the node made.
	CheckpointCalls uint64
	// CheckpointsVerified is how many peer checkpoints verified against
	// the agreement's keys and witness quorum, and were consistent with the
	// last one kept or kept as fork evidence.
	CheckpointsVerified uint64
	// Receipts is how many receipts the node wrote, Acks how many
	// acknowledgements they carried.
	Receipts, Acks uint64
}

// ExchangeStats returns the node's exchange counters.
func (n *Node) ExchangeStats() ExchangeStats {
	s := &n.exch.stats
	return ExchangeStats{
		Delivered:           s.delivered.Load(),
		DeliverRequests:     s.deliverRequests.Load(),
		Pulled:              s.pulled.Load(),
		HeadsCalls:          s.heads.Load(),
		CheckpointCalls:     s.checkpoints.Load(),
		CheckpointsVerified: s.verified.Load(),
		Receipts:            s.receipts.Load(),
		Acks:                s.acks.Load(),
	}
}

type counters struct {
	delivered, deliverRequests, pulled, heads, checkpoints, verified, receipts, acks atomic.Uint64
}

// exchange is a node's side of the conversation with its peers. Its
// goroutines run from start until stop.
type exchange struct {
	n     *Node
	cfg   ExchangeConfig
	log   *slog.Logger
	peers map[string]*peer // every other party, by id
	own   *ownFeed
	rcpt  *receipter
	keys  *checkpointKeys
	stats counters

	// cpMu serializes checkpoint checks.
	cpMu sync.Mutex

	// mu guards claims, nclaims, fetched, pulling and notHeld.
	mu sync.Mutex
	// claims are acknowledgements, in peers' receipts, of entries this
	// node did not hold yet: once it does, a different digest means the
	// receipting peer holds a conflicting envelope. Several peers may
	// claim one entry; nclaims counts the claims of all entries.
	claims  map[feedKey][]claim
	nclaims int
	// fetched are the conflicting entries already fetched and checked
	// from a peer, or given up on after maxConflictFetches answers without
	// them, by peer: each is settled once.
	fetched map[string]map[feedKey]bool
	// pulling are the feeds being pulled from some peer: the sync loops
	// of other peers leave them alone meanwhile.
	pulling map[string]bool

	// notHeld, if set, is called by inspectReceipt when it finds that the
	// node does not hold an acknowledged entry. For tests only.
	notHeld func(sender string, seq uint64)

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type claim struct {
	digest [32]byte
	by     string
}

// peer is another party's node.
type peer struct {
	id    string
	addrs []string
	conns []*grpc.ClientConn
	cur   atomic.Int32 // index into conns of the address in use

	// kick wakes the sync loop early (buffered, one pending wake).
	kick chan struct{}
	mu   sync.Mutex
	// want are entries the peer's receipts named that this node lacks.
	want map[feedKey]bool
	// conflicts are entries the peer holds with another digest than this
	// node; each is fetched to obtain the signed evidence. The value counts
	// the rounds in which the peer answered without the entry: the first
	// fetch comes as soon as the sync loop wakes, the retries with the
	// periodic rounds, until the entry is checked or maxConflictFetches.
	conflicts map[feedKey]int
	// seen are the peer's feed heads at the last periodic round; nil
	// before the first.
	seen map[string]uint64
}

func (p *peer) conn() *grpc.ClientConn { return p.conns[int(p.cur.Load())%len(p.conns)] }

func (p *peer) exchangeClient() parleyv1.ExchangeServiceClient {
	return parleyv1.NewExchangeServiceClient(p.conn())
}

func (p *peer) logClient() parleyv1.LogServiceClient { return parleyv1.NewLogServiceClient(p.conn()) }

// failover moves to the peer's next address, if it has several.
func (p *peer) failover() {
	if len(p.conns) > 1 {
		p.cur.Add(1)
	}
}

func (p *peer) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func newExchange(n *Node) (*exchange, error) {
	keys, err := newCheckpointKeys(n.cfg.Agreement.Agreement)
	if err != nil {
		return nil, err
	}
	x := &exchange{
		keys:    keys,
		n:       n,
		cfg:     n.cfg.Exchange,
		log:     n.log,
		peers:   map[string]*peer{},
		own:     newOwnFeed(),
		claims:  map[feedKey][]claim{},
		fetched: map[string]map[feedKey]bool{},
		pulling: map[string]bool{},
	}
	x.rcpt = newReceipter(x)
	return x, nil
}

// start launches the exchange's goroutines: the receipt writer always, and,
// when the node may dial its peers, one delivery worker and one sync loop per
// peer.
func (x *exchange) start() error {
	ctx, cancel := context.WithCancel(context.Background())
	x.cancel = cancel
	if err := x.rcpt.recover(ctx); err != nil {
		cancel()
		return err
	}
	x.wg.Add(1)
	go x.rcpt.run(ctx)
	if x.cfg.PeerTLS == nil {
		x.log.Info("no peer TLS configuration: serving peers without dialling them")
		return nil
	}
	for _, ap := range x.n.cfg.Agreement.Agreement.Parties {
		if ap.ID == x.n.party {
			continue
		}
		p := &peer{id: ap.ID, addrs: ap.Endpoints, kick: make(chan struct{}, 1), want: map[feedKey]bool{}, conflicts: map[feedKey]int{}}
		if a, ok := x.cfg.PeerAddresses[ap.ID]; ok {
			p.addrs = []string{a}
		}
		if len(p.addrs) == 0 {
			x.log.Warn("party lists no node endpoint; entries reach it only through others", "peer", ap.ID)
			continue
		}
		for _, addr := range p.addrs {
			conn, err := x.dial(ap.ID, addr)
			if err != nil {
				x.stop()
				return err
			}
			p.conns = append(p.conns, conn)
		}
		x.peers[ap.ID] = p
	}
	for _, p := range x.peers {
		x.wg.Add(2)
		go x.deliverLoop(ctx, p)
		go x.syncLoop(ctx, p)
	}
	x.log.Info("exchange started", "peers", len(x.peers))
	return nil
}

// dial sets up (lazily) a connection to one address of peer's node.
func (x *exchange) dial(peer, addr string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(credentials.NewTLS(x.cfg.PeerTLS(peer))),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize)),
		// Fixed windows, as the node's server has (see streamWindow).
		grpc.WithStaticStreamWindowSize(streamWindow),
		grpc.WithStaticConnWindowSize(connWindow),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: x.cfg.BackoffMin, Multiplier: 1.6, Jitter: 0.2, MaxDelay: x.cfg.BackoffMax},
			MinConnectTimeout: 5 * time.Second,
		}),
		// The server lets clients ping every 10 s at most.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 20 * time.Second, Timeout: 10 * time.Second}),
	)
	if err != nil {
		return nil, fmt.Errorf("couldn't set up a connection to %s's node at %s: %w", peer, addr, err)
	}
	return conn, nil
}

// stop ends the exchange's goroutines and waits for them; the receipt
// writer writes what it holds first. It is safe to call more than once.
func (x *exchange) stop() {
	if x.cancel != nil {
		x.cancel()
	}
	x.wg.Wait()
	for _, p := range x.peers {
		for _, c := range p.conns {
			_ = c.Close()
		}
	}
}

// accepted is called for every entry the node has made durable (not for
// duplicates). It must not block.
func (x *exchange) accepted(entry *parleyv1.LogEntry, p *envelope.Parsed) {
	sender, seq := entry.GetSender(), entry.GetSeq()
	if sender == x.n.party {
		x.own.put(seq, entry.GetIndex(), entry.GetEnvelope())
	}
	key := feedKey{sender, seq}
	x.mu.Lock()
	claims := x.claims[key]
	delete(x.claims, key)
	x.nclaims -= len(claims)
	x.mu.Unlock()
	for _, c := range claims {
		if c.digest != p.Digest {
			x.conflict(c.by, sender, seq)
		}
	}
	if sender == x.n.party {
		return
	}
	body := p.Statement.GetBody()
	if r := body.GetReceipt(); r != nil {
		x.inspectReceipt(sender, r)
		return
	}
	x.rcpt.add(sender, seq, p.Digest, x.n.cfg.Now())
}

// inspectReceipt compares what peer's receipt acknowledges with what this
// node holds: a different digest means peer holds an envelope that conflicts
// with this node's, an entry not held yet is pulled from peer soon.
//
// The claim on an entry is recorded before the node looks for the entry,
// and withdrawn if it is found: accepted, which takes the claim of an
// entry once it is durable, may run at any moment in between, and then
// either finds the claim or the entry is found here (pending from the
// moment its seq is taken, before accepted runs). Looking first would lose
// the claim of an entry accepted between the look and the record.
func (x *exchange) inspectReceipt(author string, r *parleyv1.Receipt) {
	for _, a := range r.GetAcks() {
		sender, seq := a.GetSender(), a.GetSeq()
		if sender == author || len(a.GetDigest()) != 32 {
			continue
		}
		k := feedKey{sender, seq}
		c := claim{by: author}
		copy(c.digest[:], a.GetDigest())
		x.mu.Lock()
		if x.nclaims < maxClaims && !slices.Contains(x.claims[k], c) {
			x.claims[k] = append(x.claims[k], c)
			x.nclaims++
		}
		notHeld := x.notHeld
		x.mu.Unlock()
		held, ok := x.held(sender, seq)
		if !ok {
			if notHeld != nil {
				notHeld(sender, seq)
			}
			if sender != x.n.party {
				if p := x.peers[author]; p != nil {
					p.mu.Lock()
					p.want[k] = true
					p.mu.Unlock()
					p.wake()
				}
			}
			continue
		}
		// Held: compare here, and withdraw the claim unless accepted has
		// taken it meanwhile (it then compared it too, which is harmless).
		x.mu.Lock()
		if cs := x.claims[k]; slices.Contains(cs, c) {
			if cs = slices.DeleteFunc(cs, func(o claim) bool { return o == c }); len(cs) == 0 {
				delete(x.claims, k)
			} else {
				x.claims[k] = cs
			}
			x.nclaims--
		}
		x.mu.Unlock()
		if held != c.digest {
			x.conflict(author, sender, seq)
		}
	}
}

// held returns the digest of the entry (sender, seq) this node holds, if it
// holds one (durable or in flight).
func (x *exchange) held(sender string, seq uint64) ([32]byte, bool) {
	x.n.mu.Lock()
	if pe, ok := x.n.pending[feedKey{sender, seq}]; ok {
		x.n.mu.Unlock()
		return pe.state.Digest, true
	}
	x.n.mu.Unlock()
	ref, ok, err := x.n.store.Lookup(sender, seq)
	if err != nil || !ok {
		return [32]byte{}, false
	}
	return ref.Digest, true
}

// conflict notes that peer holds an entry (sender, seq) other than this
// node's: the sync loop fetches it, and accepting it yields the signed
// evidence (or finds a harmless re-signature of the same statement).
func (x *exchange) conflict(peerID, sender string, seq uint64) {
	k := feedKey{sender, seq}
	x.mu.Lock()
	done := x.fetched[peerID][k]
	x.mu.Unlock()
	if done {
		return
	}
	p := x.peers[peerID]
	if p == nil {
		x.log.Warn("a party holds a conflicting entry but its node cannot be dialled", "peer", peerID, "sender", sender, "seq", seq)
		return
	}
	p.mu.Lock()
	_, pending := p.conflicts[k]
	if !pending {
		p.conflicts[k] = 0
	}
	p.mu.Unlock()
	if pending {
		return
	}
	x.log.Warn("peer holds a different entry; fetching it as evidence", "peer", peerID, "sender", sender, "seq", seq)
	p.wake()
}

// fetchedFrom notes that the conflicting entry k was fetched from peer.
func (x *exchange) fetchedFrom(peerID string, k feedKey) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.fetched[peerID] == nil {
		x.fetched[peerID] = map[feedKey]bool{}
	}
	x.fetched[peerID][k] = true
}

// retry is a capped exponential backoff with jitter.
type retry struct {
	min, max, cur time.Duration
}

// next returns the next delay: the current step, doubled each time up to
// max, of which a random half is jitter.
func (r *retry) next() time.Duration {
	if r.cur == 0 {
		r.cur = r.min
	} else {
		r.cur = min(2*r.cur, r.max)
	}
	half := r.cur / 2
	return half + rand.N(half+1)
}

func (r *retry) reset() { r.cur = 0 }

// sleep waits for d or until ctx is done, and reports whether ctx is still
// live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// jitter returns d ± 10%.
func jitter(d time.Duration) time.Duration {
	tenth := d / 10
	return d - tenth + rand.N(2*tenth+1)
}
