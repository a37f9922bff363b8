package localnet

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/mediator"
)

// writeMediatorConfig writes m's configuration file (parley mediator -c).
func (n *Network) writeMediatorConfig(m *Mediator) error {
	m.ConfigFile = filepath.Join(filepath.Dir(m.CertFile), "mediator.yaml")
	c := config.Mediator{
		ID: m.ID, Listen: m.Address, Agreement: n.AgreementFile, DataDir: m.DataDir,
		CosigningKey: m.CosigningKey, TLS: config.TLS{Cert: m.CertFile, Key: m.KeyFile},
		SyncInterval: "1s", AuditInterval: "1m", LogLevel: "info",
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("couldn't write mediator config for %s: %w", m.ID, err)
	}
	if err := os.WriteFile(m.ConfigFile, b, 0o644); err != nil {
		return fmt.Errorf("couldn't write mediator config for %s: %w", m.ID, err)
	}
	return nil
}

// startMediator runs mediator id in this process from its configuration
// file: the witness over HTTPS on the reserved address, the mirror of every
// node and the periodic audit.
func (r *Running) startMediator(ctx context.Context, id string, logger *slog.Logger) error {
	m := r.Mediators[id]
	c, err := config.LoadMediator(m.ConfigFile)
	if err != nil {
		return err
	}
	cfg, err := c.Build(logger)
	if err != nil {
		return fmt.Errorf("couldn't configure mediator %s: %w", id, err)
	}
	srv, err := mediator.NewServer(cfg)
	if err != nil {
		return fmt.Errorf("couldn't start mediator %s: %w", id, err)
	}
	l, ok := r.Listener("mediator/" + id)
	if !ok {
		if l, err = net.Listen("tcp", m.Address); err != nil {
			_ = srv.Close()
			return fmt.Errorf("couldn't listen on %s: %w", m.Address, err)
		}
	}
	if r.MediatorServers == nil {
		r.MediatorServers = map[string]*mediator.Server{}
	}
	r.MediatorServers[id] = srv
	r.Witnesses[id] = srv.Witness()
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		if err := srv.Serve(ctx, l); err != nil {
			r.fail(fmt.Errorf("mediator %s: %w", id, err))
		}
	}()
	go func() {
		defer r.wg.Done()
		if err := srv.Run(ctx); err != nil {
			r.fail(fmt.Errorf("mediator %s: %w", id, err))
		}
	}()
	r.closer = append(r.closer, srv.Close)
	return nil
}
