package mediator

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/credentials"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/client"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// HTTP paths the mediator serves besides the witness's [AddCheckpointPath].
const (
	// CosignedPath answers GET with the latest checkpoint the witness
	// cosigned for every log, as JSON ([CosignedResponse]). Other mediators
	// compare it with their own.
	CosignedPath = "/cosigned"
	// AuditPath answers GET with a fresh audit report as JSON ([Report]):
	// the mediator syncs its mirror first. The optional query parameter
	// "now" (RFC 3339) sets the time at which deadlines are judged.
	AuditPath = "/audit"
)

// CosignedResponse is the body of a GET [CosignedPath].
type CosignedResponse struct {
	// Mediator is the answering mediator's id.
	Mediator string `json:"mediator"`
	// Checkpoints maps a log origin to the latest checkpoint cosigned for
	// it: the log's signed note with the witness's cosignature.
	Checkpoints map[string][]byte `json:"checkpoints"`
}

// ServerConfig configures a mediator [Server].
type ServerConfig struct {
	// Agreement is the signed agreement. Required; every party must have
	// signed it (NewServer checks).
	Agreement *agreement.File
	// ID is this mediator's id in the agreement. Required.
	ID string
	// Signer makes the witness's cosignatures (see [NewCosigner]); its
	// verifier key must be the mediator's cosigning_key in the agreement.
	// Required.
	Signer note.Signer
	// DataDir holds the witness database, the mirrored logs and the
	// collected state. Required; created if missing.
	DataDir string
	// Certificate returns the mediator's TLS certificate, issued by its CA
	// as spiffe://<id>/mediator/<name>; it serves the witness and reads the
	// nodes. Required.
	Certificate func() (*tls.Certificate, error)
	// Nodes optionally maps a party id to the address of its node; by
	// default the first endpoint the agreement lists.
	Nodes map[string]string
	// SyncInterval is how often Run mirrors every node. Default 5s.
	SyncInterval time.Duration
	// AuditInterval is how often Run audits the mirror and logs a summary,
	// at most (see Run). Default 1m.
	AuditInterval time.Duration
	// NodeTimeout bounds one sync of one node; a node that does not answer
	// in time is reported as a problem and tried again next time. Default
	// 10s.
	NodeTimeout time.Duration
	// Logger receives the mediator's logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Server is a mediator process: the witness of every party node's log,
// served over HTTPS with mutual TLS, a mirror of every node's log, and the
// auditor over that mirror. It is safe for concurrent use.
type Server struct {
	cfg     ServerConfig
	log     *slog.Logger
	bundle  *certs.TrustBundle
	witness *Witness
	mirrors map[string]*MirrorLog // by party id

	// syncMu serialises syncs; mu guards collected.
	syncMu    sync.Mutex
	mu        sync.Mutex
	collected *Collected
	// clientsMu guards clients.
	clientsMu sync.Mutex
	clients   map[string]*client.Client
	peerHTTP  *http.Client
	// auditMu serialises audits, which share progress.
	auditMu  sync.Mutex
	progress *auditProgress
}

// NewServer checks cfg, opens the witness database and the mirrors, and
// returns a server ready to Serve and Run. The caller must Close it.
func NewServer(cfg ServerConfig) (*Server, error) {
	var errs []error
	if cfg.Agreement == nil || cfg.Agreement.Agreement == nil {
		return nil, errors.New("invalid mediator config: no agreement")
	}
	a := cfg.Agreement.Agreement
	if err := cfg.Agreement.RequireAllSigned(); err != nil {
		return nil, fmt.Errorf("refusing to start: %w", err)
	}
	m, ok := a.Mediator(cfg.ID)
	if !ok {
		errs = append(errs, fmt.Errorf("id: %q is not a mediator of agreement %q", cfg.ID, a.ID))
	}
	if cfg.Signer == nil {
		errs = append(errs, errors.New("signer: required"))
	} else if ok {
		if v, err := fnote.NewVerifier(m.CosigningKey); err != nil || v.KeyHash() != cfg.Signer.KeyHash() || v.Name() != cfg.Signer.Name() {
			errs = append(errs, fmt.Errorf("signer: key %s+%08x is not the agreement's cosigning key of %s", cfg.Signer.Name(), cfg.Signer.KeyHash(), cfg.ID))
		}
	}
	if cfg.DataDir == "" {
		errs = append(errs, errors.New("data dir: required"))
	}
	if cfg.Certificate == nil {
		errs = append(errs, errors.New("certificate: required"))
	}
	for p := range cfg.Nodes {
		if _, ok := a.Party(p); !ok {
			errs = append(errs, fmt.Errorf("nodes: %q is not a party of the agreement", p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalid mediator config: %w", err)
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = 5 * time.Second
	}
	if cfg.AuditInterval <= 0 {
		cfg.AuditInterval = time.Minute
	}
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("couldn't create data dir: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(cfg.DataDir, agreementCopy), cfg.Agreement.Marshal()); err != nil {
		return nil, fmt.Errorf("couldn't copy the agreement into the data dir: %w", err)
	}
	bundle, err := trustBundle(a)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger.With("mediator", cfg.ID), bundle: bundle,
		mirrors: map[string]*MirrorLog{}, clients: map[string]*client.Client{},
		progress: &auditProgress{verified: map[string]uint64{}, failed: map[[32]byte]bool{}},
	}
	var logs []WitnessedLog
	for _, p := range a.Parties {
		v, err := fnote.NewVerifier(p.CheckpointKey)
		if err != nil {
			return nil, fmt.Errorf("couldn't parse %s's checkpoint key: %w", p.ID, err)
		}
		logs = append(logs, WitnessedLog{Origin: p.LogOrigin, Verifier: v})
	}
	s.witness, err = NewWitness(WitnessConfig{
		Signer: cfg.Signer, DBPath: filepath.Join(cfg.DataDir, witnessDB), Logs: logs,
		Authorize: s.authorizeNode, Logger: s.log, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	for _, p := range a.Parties {
		ml, err := OpenMirrorLog(filepath.Join(cfg.DataDir, mirrorDir, p.ID), true)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("couldn't open the mirror of %s: %w", p.ID, err)
		}
		s.mirrors[p.ID] = ml
	}
	if s.collected, err = loadCollected(cfg.DataDir); err != nil {
		s.Close()
		return nil, err
	}
	s.collected.Mediator = cfg.ID
	s.peerHTTP = &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: certs.ClientConfig(bundle, cfg.Certificate, ""), ForceAttemptHTTP2: true},
	}
	return s, nil
}

// trustBundle returns the trust bundle of every CA in the agreement.
func trustBundle(a *agreement.Agreement) (*certs.TrustBundle, error) {
	pems := map[string][]byte{}
	for _, p := range a.Parties {
		pems[p.ID] = []byte(p.CA)
	}
	for _, m := range a.Mediators {
		pems[m.ID] = []byte(m.CA)
	}
	b, err := certs.NewTrustBundle(pems)
	if err != nil {
		return nil, fmt.Errorf("couldn't build the trust bundle from the agreement: %w", err)
	}
	return b, nil
}

// Witness returns the server's witness.
func (s *Server) Witness() *Witness { return s.witness }

// Mirror returns the mirror of party's log, or nil.
func (s *Server) Mirror(party string) *MirrorLog { return s.mirrors[party] }

// Close closes the nodes' connections, the mirrors and the witness
// database. Serve and Run must have returned.
func (s *Server) Close() error {
	var errs []error
	for _, c := range s.clients {
		errs = append(errs, c.Close())
	}
	for _, m := range s.mirrors {
		errs = append(errs, m.Close())
	}
	if s.witness != nil {
		errs = append(errs, s.witness.Close())
	}
	return errors.Join(errs...)
}

// TLSConfig returns the server's TLS configuration: TLS 1.3, client
// certificates required and verified against the agreement's CAs.
func (s *Server) TLSConfig() *tls.Config {
	return certs.ServerConfig(s.bundle, s.cfg.Certificate)
}

// Handler returns the mediator's HTTP handler: the witness's
// add-checkpoint for party nodes, and [CosignedPath] and [AuditPath] for
// any identity of the agreement. It relies on the TLS layer (TLSConfig)
// for client authentication.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+AddCheckpointPath, s.witness.Handler())
	mux.HandleFunc("GET "+CosignedPath, s.serveCosigned)
	mux.HandleFunc("GET "+AuditPath, s.serveAudit)
	return mux
}

// Serve serves the handler over HTTPS on l until ctx is done.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.ServeTLS(l, "", "")
	<-done
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("couldn't serve the mediator: %w", err)
	}
	return nil
}

// identity returns the verified identity of a request's client and
// checks that it belongs to the agreement.
func (s *Server) identity(r *http.Request) (certs.Identity, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return certs.Identity{}, errors.New("no client certificate")
	}
	id, err := certs.IdentityFromCert(r.TLS.PeerCertificates[0])
	if err != nil {
		return certs.Identity{}, err
	}
	a := s.cfg.Agreement.Agreement
	if id.Role == certs.RoleMediator {
		if _, ok := a.Mediator(id.Party); !ok {
			return id, fmt.Errorf("%s is not a mediator of the agreement", id)
		}
	} else if _, ok := a.Party(id.Party); !ok {
		return id, fmt.Errorf("%s is not a party of the agreement", id)
	}
	return id, nil
}

// authorizeNode admits only the nodes of the agreement's parties to the
// witness.
func (s *Server) authorizeNode(r *http.Request) error {
	id, err := s.identity(r)
	if err != nil {
		return err
	}
	if id.Role != certs.RoleNode {
		return fmt.Errorf("%s is not a party node", id)
	}
	return nil
}

func (s *Server) serveCosigned(rw http.ResponseWriter, r *http.Request) {
	if _, err := s.identity(r); err != nil {
		http.Error(rw, err.Error(), http.StatusForbidden)
		return
	}
	resp := CosignedResponse{Mediator: s.cfg.ID, Checkpoints: map[string][]byte{}}
	for _, p := range s.cfg.Agreement.Agreement.Parties {
		cp, err := s.witness.Latest(p.LogOrigin)
		if err == nil {
			resp.Checkpoints[p.LogOrigin] = cp
		}
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(resp)
}

func (s *Server) serveAudit(rw http.ResponseWriter, r *http.Request) {
	id, err := s.identity(r)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusForbidden)
		return
	}
	now := s.cfg.Now()
	if v := r.URL.Query().Get("now"); v != "" {
		if now, err = time.Parse(time.RFC3339, v); err != nil {
			http.Error(rw, fmt.Sprintf("now: got %q, want an RFC 3339 time", v), http.StatusBadRequest)
			return
		}
	}
	ctx := r.Context()
	if err := s.Sync(ctx); err != nil {
		s.log.WarnContext(ctx, "sync before audit was incomplete", "err", err)
	}
	rep, err := s.Audit(now)
	if err != nil {
		s.log.ErrorContext(ctx, "couldn't audit", "err", err)
		http.Error(rw, "couldn't audit; see the mediator's log", http.StatusInternalServerError)
		return
	}
	s.log.InfoContext(ctx, "served audit report", "client", id.String(), "misbehaviour", rep.Misbehaviour)
	rw.Header().Set("Content-Type", "application/json")
	_ = rep.WriteJSON(rw)
	debug.FreeOSMemory()
}

// Run mirrors every node every SyncInterval and audits every
// AuditInterval, until ctx is done. The audits run beside the mirroring,
// which goes on while one runs (an audit of a million entries takes half a
// minute), and are spaced so that they take at most a tenth of the time
// (auditDue).
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.auditEvery(ctx) })
	syncT := time.NewTicker(s.cfg.SyncInterval)
	defer syncT.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-syncT.C:
			if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
				s.log.DebugContext(ctx, "sync incomplete", "err", err)
			}
		}
	}
}

// auditEvery audits the mirror every AuditInterval, spaced out by auditDue,
// and logs a summary of each, until ctx is done.
func (s *Server) auditEvery(ctx context.Context) {
	auditT := time.NewTicker(s.cfg.AuditInterval)
	defer auditT.Stop()
	var (
		lastEnd  time.Time     // when the last audit ended
		lastTook time.Duration // and how long it took
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-auditT.C:
			if !auditDue(time.Now(), lastEnd, lastTook) {
				s.log.DebugContext(ctx, "audit spaced out: the last one took long", "took", lastTook.Round(time.Millisecond).String())
				continue
			}
			start := time.Now()
			rep, err := s.Audit(s.cfg.Now())
			lastEnd = time.Now()
			lastTook = lastEnd.Sub(start)
			if err != nil {
				s.log.ErrorContext(ctx, "couldn't audit", "err", err, "took", lastTook.Round(time.Millisecond).String())
				continue
			}
			s.log.InfoContext(ctx, "audited", "entries", rep.Entries, "findings", len(rep.Findings),
				"evidence", len(rep.Evidence), "misbehaviour", rep.Misbehaviour, "took", lastTook.Round(time.Millisecond).String())
			// An audit holds the statements of every accepted entry; give
			// that memory back now rather than keep it until the next.
			debug.FreeOSMemory()
		}
	}
}

// auditSpread is how many times its own duration an audit is spread over:
// after an audit that took d, the next periodic one starts no sooner than
// (auditSpread - 1) × d after it ended.
const auditSpread = 10

// auditDue reports whether a periodic audit may start at now, the last one
// having ended at end (zero if there was none) after taking took.
func auditDue(now, end time.Time, took time.Duration) bool {
	return end.IsZero() || now.Sub(end) >= (auditSpread-1)*took
}

// Audit audits the mirror as it is, judging deadlines at now. Audits run
// one at a time; each verifies the signatures and content of only the
// envelopes mirrored since the one before (see [Audit]).
func (s *Server) Audit(now time.Time) (*Report, error) {
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	s.mu.Lock()
	col := s.collected.clone()
	s.mu.Unlock()
	return Audit(AuditInput{Agreement: s.cfg.Agreement, Mediator: s.cfg.ID, Logs: s.mirrors, Collected: col, Now: now, progress: s.progress})
}

// Sync mirrors every node once, collects the witness's state, the nodes'
// evidence and the other mediators' cosigned checkpoints, and writes the
// collected state. It returns the problems met, joined; a problem with one
// node does not stop the others.
func (s *Server) Sync(ctx context.Context) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	a := s.cfg.Agreement.Agreement
	var errs []error
	problems := map[string]string{}
	note := func(id string, err error) {
		if err != nil {
			problems[id] = err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
		}
	}
	// Every node in parallel, each within its own time limit, so that one
	// unreachable node does not hold up the others.
	type result struct {
		ev   []NodeEquivocation
		kept []SeenCheckpoint
		err  error
	}
	results := make([]result, len(a.Parties))
	var wg sync.WaitGroup
	for i, p := range a.Parties {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, s.cfg.NodeTimeout)
			defer cancel()
			r := &results[i]
			r.ev, r.kept, r.err = s.syncParty(pctx, p.ID)
		}()
	}
	wg.Wait()
	var nodeEvidence []NodeEquivocation
	var seen []SeenCheckpoint
	for i, p := range a.Parties {
		note(p.ID, results[i].err)
		nodeEvidence = append(nodeEvidence, results[i].ev...)
		seen = append(seen, results[i].kept...)
	}
	var peers []PeerCheckpoint
	for _, m := range a.Mediators {
		if m.ID == s.cfg.ID {
			continue
		}
		got, err := s.fetchPeer(ctx, m)
		note("mediator/"+m.ID, err)
		peers = append(peers, got...)
	}
	cosigned := map[string][]byte{}
	for _, p := range a.Parties {
		if cp, err := s.witness.Latest(p.LogOrigin); err == nil {
			cosigned[p.LogOrigin] = cp
		}
	}
	forks, err := s.witness.Evidence()
	note("witness", err)

	s.mu.Lock()
	c := s.collected
	c.At = s.cfg.Now().UTC()
	c.Cosigned = cosigned
	c.WitnessForks = forks
	c.Problems = problems
	c.NodeEvidence = mergeNodeEvidence(c.NodeEvidence, nodeEvidence)
	c.Peers = mergePeers(c.Peers, peers)
	c.Checkpoints = mergeSeen(c.Checkpoints, seen)
	err = c.save(s.cfg.DataDir)
	s.mu.Unlock()
	note("collected", err)
	return errors.Join(errs...)
}

// dial returns the (cached) client of party's node.
func (s *Server) dial(ctx context.Context, party string) (*client.Client, error) {
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	if c, ok := s.clients[party]; ok {
		return c, nil
	}
	addr := s.cfg.Nodes[party]
	if addr == "" {
		p, _ := s.cfg.Agreement.Agreement.Party(party)
		if len(p.Endpoints) == 0 {
			return nil, fmt.Errorf("no endpoint for %s's node", party)
		}
		addr = p.Endpoints[0]
	}
	creds := credentials.NewTLS(certs.ClientConfig(s.bundle, s.cfg.Certificate, party))
	c, err := client.DialTLS(ctx, addr, creds, 30*time.Second)
	if err != nil {
		return nil, err
	}
	s.clients[party] = c
	return c, nil
}

// syncParty brings the mirror of party's log up to the node's latest
// checkpoint, and returns the evidence the node reports and the
// checkpoints to keep for the auditor (those the mirror could not
// reconcile).
func (s *Server) syncParty(ctx context.Context, party string) ([]NodeEquivocation, []SeenCheckpoint, error) {
	a := s.cfg.Agreement.Agreement
	p, _ := a.Party(party)
	c, err := s.dial(ctx, party)
	if err != nil {
		return nil, nil, err
	}
	ml := s.mirrors[party]
	log := s.log.With("party", party)

	var nodeEv []NodeEquivocation
	evs, err := c.Evidence(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't read the node's evidence: %w", err)
	}
	for _, ev := range evs {
		if eq := ev.GetEquivocation(); eq != nil {
			nodeEv = append(nodeEv, NodeEquivocation{Node: party, Sender: eq.GetSender(), Seq: eq.GetSeq(), First: eq.GetFirst(), Second: eq.GetSecond(), Source: eq.GetSource()})
		}
	}

	resp, err := c.Log.GetCheckpoint(ctx, &parleyv1.GetCheckpointRequest{})
	if err != nil {
		return nodeEv, nil, fmt.Errorf("couldn't get the node's checkpoint: %w", err)
	}
	raw := resp.GetCheckpoint()
	logV, err := fnote.NewVerifier(p.CheckpointKey)
	if err != nil {
		return nodeEv, nil, fmt.Errorf("couldn't parse %s's checkpoint key: %w", party, err)
	}
	cp, _, _, err := flog.ParseCheckpoint(raw, p.LogOrigin, logV)
	if err != nil {
		return nodeEv, nil, fmt.Errorf("node served a checkpoint that does not verify: %w", err)
	}
	size := ml.Size()
	now := s.cfg.Now().UTC()
	keep := func(note string, proof [][]byte) []SeenCheckpoint {
		log.WarnContext(ctx, "kept a checkpoint the mirror cannot reconcile", "size", cp.Size, "mirror_size", size, "note", note)
		return []SeenCheckpoint{{Party: party, Checkpoint: raw, At: now, Proof: proof, Note: note}}
	}
	if cp.Size <= size {
		root, err := ml.RootAt(cp.Size)
		if err != nil {
			return nodeEv, nil, err
		}
		if !bytes.Equal(root, cp.Hash) {
			return nodeEv, keep("root hash differs from the mirrored entries at its size", nil), nil
		}
		if cp.Size == size && !bytes.Equal(ml.Checkpoint(), raw) && size > 0 {
			// Same tree, perhaps more cosignatures: keep the latest.
			if err := ml.SetCheckpoint(raw); err != nil {
				return nodeEv, nil, err
			}
		}
		return nodeEv, nil, nil
	}
	var raws [][]byte
	for next := size; next < cp.Size; {
		n := min(cp.Size-next, 1000)
		entries, err := c.Entries(ctx, next, uint32(n))
		if err != nil {
			return nodeEv, nil, err
		}
		if len(entries) == 0 {
			return nodeEv, nil, fmt.Errorf("node served no entries from %d, below its checkpoint size %d", next, cp.Size)
		}
		for _, e := range entries {
			if e.GetIndex() != next {
				return nodeEv, nil, fmt.Errorf("node served entry index %d, want %d", e.GetIndex(), next)
			}
			raws = append(raws, e.GetEnvelope())
			next++
		}
	}
	leaves := hashLeaves(raws)
	root, err := ml.RootWith(leaves)
	if err != nil {
		return nodeEv, nil, err
	}
	if !bytes.Equal(root, cp.Hash) {
		// Either the node rewrote what the mirror holds (a fork) or it
		// served entries that are not its log. Its own consistency proof
		// tells which, for the auditor.
		var pr [][]byte
		if size > 0 {
			if resp, err := c.Log.GetConsistencyProof(ctx, &parleyv1.GetConsistencyProofRequest{FromSize: size, ToSize: cp.Size}); err == nil {
				pr = resp.GetHashes()
			}
		}
		return nodeEv, keep("the entries served do not reproduce the checkpoint's root hash", pr), nil
	}
	// Entries and checkpoint together: an audit meanwhile sees both or
	// neither.
	if err := ml.appendCheckpointed(raws, leaves, raw); err != nil {
		return nodeEv, nil, err
	}
	log.DebugContext(ctx, "mirrored", "from", size, "to", cp.Size)
	return nodeEv, nil, nil
}

// fetchPeer asks another mediator for the checkpoints it cosigned.
func (s *Server) fetchPeer(ctx context.Context, m agreement.Mediator) ([]PeerCheckpoint, error) {
	u := strings.TrimSuffix(m.WitnessEndpoint, "/") + CosignedPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("couldn't ask mediator %s: %w", m.ID, err)
	}
	resp, err := s.peerHTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("couldn't ask mediator %s: %w", m.ID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("couldn't read mediator %s's answer: %w", m.ID, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("mediator %s answered %s: %s", m.ID, resp.Status, bytes.TrimSpace(body))
	}
	if id, err := certs.IdentityFromCert(resp.TLS.PeerCertificates[0]); err != nil || id.Party != m.ID {
		return nil, fmt.Errorf("mediator %s's endpoint is served by %v, not by %s", m.ID, id, m.ID)
	}
	var cr CosignedResponse
	if err := json.Unmarshal(body, &cr); err != nil {
		return nil, fmt.Errorf("couldn't decode mediator %s's answer: %w", m.ID, err)
	}
	now := s.cfg.Now().UTC()
	var out []PeerCheckpoint
	for _, p := range s.cfg.Agreement.Agreement.Parties {
		if cp, ok := cr.Checkpoints[p.LogOrigin]; ok {
			out = append(out, PeerCheckpoint{Mediator: m.ID, Origin: p.LogOrigin, Checkpoint: cp, At: now})
		}
	}
	return out, nil
}

// mergeNodeEvidence adds new node evidence, once per (node, envelopes).
func mergeNodeEvidence(old, add []NodeEquivocation) []NodeEquivocation {
	out := slices.Clone(old)
	for _, e := range add {
		if !slices.ContainsFunc(out, func(o NodeEquivocation) bool {
			return o.Node == e.Node && bytes.Equal(o.First, e.First) && bytes.Equal(o.Second, e.Second)
		}) {
			out = append(out, e)
		}
	}
	return out
}

// mergePeers keeps the latest checkpoint per (mediator, origin), and any
// earlier one that is not a prefix by size of it, for the auditor.
func mergePeers(old, add []PeerCheckpoint) []PeerCheckpoint {
	out := slices.Clone(old)
	for _, p := range add {
		i := slices.IndexFunc(out, func(o PeerCheckpoint) bool { return o.Mediator == p.Mediator && o.Origin == p.Origin })
		if i < 0 {
			out = append(out, p)
		} else {
			out[i] = p
		}
	}
	return out
}

// mergeSeen adds kept checkpoints, once per (party, checkpoint text).
func mergeSeen(old, add []SeenCheckpoint) []SeenCheckpoint {
	out := slices.Clone(old)
	for _, c := range add {
		if !slices.ContainsFunc(out, func(o SeenCheckpoint) bool {
			return o.Party == c.Party && bytes.Equal(noteText(o.Checkpoint), noteText(c.Checkpoint))
		}) {
			out = append(out, c)
		}
	}
	return out
}
