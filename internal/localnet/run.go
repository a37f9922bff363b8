package localnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

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
	// MediatorServers maps mediator id to its running mediator: the
	// witness (also in Witnesses), the mirror of every node and the
	// auditor.
	MediatorServers map[string]*mediator.Server

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	closer []func() error

	// The nodes stop before the mediators, so that a closing node can
	// still have its last checkpoint cosigned (see Stop).
	stopMediators context.CancelFunc
	nodeWG        sync.WaitGroup
	nodeClosers   []func() error
}

// Start runs every mediator witness and every node of the network in this
// process, on the reserved loopback addresses. Stop ends them.
func (n *Network) Start(ctx context.Context, logger *slog.Logger) (*Running, error) {
	mctx, stopMediators := context.WithCancel(ctx)
	ctx, cancel := context.WithCancel(mctx)
	r := &Running{Network: n, Nodes: map[string]*server.Node{}, Witnesses: map[string]*mediator.Witness{}, cancel: cancel, stopMediators: stopMediators}
	for _, id := range n.MediatorIDs {
		if err := r.startWitness(mctx, id, logger.With("mediator", id)); err != nil {
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

// StartNodes runs the nodes of parties (every party if none is given) in
// this process, without the witnesses, which StartWitnesses runs on their
// own: a test can then stop and restart witnesses under running nodes. A
// new node waits for a quorum of its witnesses to cosign its log's first
// checkpoint (see server.New), so StartNodes returns only once they answer
// or ctx ends.
func (n *Network) StartNodes(ctx context.Context, logger *slog.Logger, parties ...string) (*Running, error) {
	if len(parties) == 0 {
		parties = n.PartyIDs
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Running{Network: n, Nodes: map[string]*server.Node{}, Witnesses: map[string]*mediator.Witness{}, cancel: cancel}
	for _, id := range parties {
		if _, ok := n.Parties[id]; !ok {
			r.Stop()
			return nil, fmt.Errorf("no party %q in the network", id)
		}
		if err := r.startNode(ctx, id, logger); err != nil {
			r.Stop()
			return nil, err
		}
	}
	return r, nil
}

func (r *Running) startWitness(ctx context.Context, id string, logger *slog.Logger) error {
	return r.startMediator(ctx, id, logger)
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
	var tl net.Listener
	if p.TilesAddress != "" {
		if tl, ok = r.Listener("tiles/" + id); !ok {
			if tl, err = net.Listen("tcp", p.TilesAddress); err != nil {
				_ = l.Close()
				_ = node.Close()
				return fmt.Errorf("couldn't listen on %s for tiles: %w", p.TilesAddress, err)
			}
		}
	}
	r.nodeWG.Add(1)
	go func() {
		defer r.nodeWG.Done()
		if err := node.Serve(ctx, l); err != nil {
			r.fail(fmt.Errorf("node %s: %w", id, err))
		}
	}()
	if tl != nil {
		r.nodeWG.Add(1)
		go func() {
			defer r.nodeWG.Done()
			if err := node.ServeTiles(ctx, tl); err != nil {
				r.fail(fmt.Errorf("node %s tiles: %w", id, err))
			}
		}()
	}
	r.nodeClosers = append(r.nodeClosers, node.Close)
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
//
// The nodes stop first: closing a node waits (up to its log's shutdown
// timeout) for a checkpoint that covers every entry it appended, which
// needs the witnesses still up. Only then do the mediators stop.
func (r *Running) Stop() {
	r.cancel()
	r.nodeWG.Wait()
	for i := len(r.nodeClosers) - 1; i >= 0; i-- {
		_ = r.nodeClosers[i]()
	}
	r.nodeClosers = nil
	if r.stopMediators != nil {
		r.stopMediators()
	}
	r.wg.Wait()
	for i := len(r.closer) - 1; i >= 0; i-- {
		_ = r.closer[i]()
	}
	r.closer = nil
}
