package localnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/mediator"
	"github.com/parley-dev/parley/server"
)

// Running is a started network: in-process nodes and witnesses.
type Running struct {
	*Network
	// Nodes maps party id to its running node.
	Nodes map[string]*server.Node
	// Witnesses maps mediator id to its witness.
	Witnesses map[string]*mediator.Witness

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	closer []func() error
}

// Start runs every mediator witness and every node of the network in this
// process, on the reserved loopback addresses. Stop ends them.
func (n *Network) Start(ctx context.Context, logger *slog.Logger) (*Running, error) {
	ctx, cancel := context.WithCancel(ctx)
	r := &Running{Network: n, Nodes: map[string]*server.Node{}, Witnesses: map[string]*mediator.Witness{}, cancel: cancel}
	for _, id := range n.MediatorIDs {
		if err := r.startWitness(ctx, id, logger.With("mediator", id)); err != nil {
			r.Stop()
			return nil, err
		}
	}
	for _, id := range n.PartyIDs {
		if err := r.startNode(ctx, id, logger); err != nil {
			r.Stop()
			return nil, err
		}
	}
	return r, nil
}

func (r *Running) startWitness(ctx context.Context, id string, logger *slog.Logger) error {
	m := r.Mediators[id]
	skey, err := os.ReadFile(m.CosigningKey)
	if err != nil {
		return fmt.Errorf("couldn't read the cosigning key of %s: %w", id, err)
	}
	signer, err := mediator.NewCosigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return err
	}
	var logs []mediator.WitnessedLog
	for _, p := range r.Agreement.Agreement.Parties {
		v, err := fnote.NewVerifier(p.CheckpointKey)
		if err != nil {
			return fmt.Errorf("couldn't parse %s's checkpoint key: %w", p.ID, err)
		}
		logs = append(logs, mediator.WitnessedLog{Origin: p.LogOrigin, Verifier: v})
	}
	if err := os.MkdirAll(m.DataDir, 0o755); err != nil {
		return err
	}
	w, err := mediator.NewWitness(mediator.WitnessConfig{
		Signer: signer, DBPath: m.DataDir + "/witness.db", Logs: logs, Logger: logger,
		Authorize: RequireNode,
	})
	if err != nil {
		return fmt.Errorf("couldn't start witness %s: %w", id, err)
	}
	r.Witnesses[id] = w
	bundle, err := config.TrustBundle(r.Agreement.Agreement)
	if err != nil {
		return err
	}
	kp, err := certs.LoadKeyPair(m.CertFile, m.KeyFile)
	if err != nil {
		return err
	}
	l, ok := r.Listener("mediator/" + id)
	if !ok {
		if l, err = net.Listen("tcp", m.Address); err != nil {
			return fmt.Errorf("couldn't listen on %s: %w", m.Address, err)
		}
	}
	srv := &http.Server{
		Handler:           w.Handler(),
		TLSConfig:         certs.ServerConfig(bundle, kp.Certificate),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.fail(fmt.Errorf("witness %s: %w", id, err))
		}
	}()
	go func() {
		defer r.wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	r.closer = append(r.closer, w.Close)
	return nil
}

// RequireNode admits only party nodes (spiffe://<party>/node/...) to a
// witness endpoint; the TLS layer has already verified the chain.
func RequireNode(r *http.Request) error {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return errors.New("no client certificate")
	}
	id, err := certs.IdentityFromCert(r.TLS.PeerCertificates[0])
	if err != nil {
		return err
	}
	if id.Role != certs.RoleNode {
		return fmt.Errorf("%s is not a party node", id)
	}
	return nil
}

func (r *Running) startNode(ctx context.Context, id string, logger *slog.Logger) error {
	p := r.Parties[id]
	c, err := config.Load(p.ConfigFile)
	if err != nil {
		return err
	}
	scfg, err := c.Build(ctx, logger)
	if err != nil {
		return fmt.Errorf("couldn't configure node %s: %w", id, err)
	}
	node, err := server.New(ctx, scfg)
	if err != nil {
		return fmt.Errorf("couldn't start node %s: %w", id, err)
	}
	r.Nodes[id] = node
	l, ok := r.Listener(id)
	if !ok {
		if l, err = net.Listen("tcp", p.Address); err != nil {
			_ = node.Close()
			return fmt.Errorf("couldn't listen on %s: %w", p.Address, err)
		}
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := node.Serve(ctx, l); err != nil {
			r.fail(fmt.Errorf("node %s: %w", id, err))
		}
	}()
	r.closer = append(r.closer, node.Close)
	return nil
}

func (r *Running) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

// Err reports errors of components that stopped on their own.
func (r *Running) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.errs...)
}

// Stop ends every node and witness and waits for them.
func (r *Running) Stop() {
	r.cancel()
	r.wg.Wait()
	for i := len(r.closer) - 1; i >= 0; i-- {
		_ = r.closer[i]()
	}
	r.closer = nil
}
