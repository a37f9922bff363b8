package chaos

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
	"github.com/parley-dev/parley/mediator"
)

// hasMediatorCommand reports whether bin has the "mediator" command, by
// reading its command list.
func hasMediatorCommand(ctx context.Context, bin string) bool {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "help").Output()
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "mediator" {
			return true
		}
	}
	return false
}

// MediatorProcess is a mediator running as its own OS process (parley
// mediator -c mediator.yaml): witness, mirror and auditor.
type MediatorProcess struct {
	id, bin, cfg, addr string
	out                io.Writer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartMediator runs mediator id of network n as its own process from the
// binary bin, with its output to out, and waits until its port accepts
// connections. The reserved listener for its address is released first.
func StartMediator(ctx context.Context, n *localnet.Network, bin, id string, out io.Writer) (*MediatorProcess, error) {
	md, ok := n.Mediators[id]
	if !ok {
		return nil, fmt.Errorf("no mediator %q in the network", id)
	}
	if l, ok := n.Listener("mediator/" + id); ok {
		_ = l.Close()
	}
	m := &MediatorProcess{id: id, bin: bin, cfg: md.ConfigFile, addr: md.Address, out: out}
	if err := m.Restart(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// Restart starts the mediator again after Kill or Stop and waits (at most
// a minute) until its port accepts connections.
func (m *MediatorProcess) Restart(ctx context.Context) error { return m.start(ctx, time.Minute) }

func (m *MediatorProcess) start(ctx context.Context, timeout time.Duration) error {
	m.mu.Lock()
	cmd := exec.Command(m.bin, "mediator", "-c", m.cfg)
	cmd.Stdout, cmd.Stderr = m.out, m.out
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("couldn't start mediator %s: %w", m.id, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()

	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", m.addr, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("mediator %s exited while starting", m.id)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mediator %s not listening on %s after %s: %w", m.id, m.addr, timeout, err)
		}
	}
}

// PID returns the process id of the latest start, 0 before the first.
func (m *MediatorProcess) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Kill ends the mediator with SIGKILL (a crash) and waits for it.
func (m *MediatorProcess) Kill() { m.signal(syscall.SIGKILL) }

// Stop ends the mediator with SIGTERM (a clean shutdown) and waits for it.
func (m *MediatorProcess) Stop() { m.signal(syscall.SIGTERM) }

func (m *MediatorProcess) signal(sig syscall.Signal) {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// fetchAudit asks mediator id for a fresh audit report (GET /audit) with
// its own certificate, as "parley audit -network" does.
func fetchAudit(ctx context.Context, n *localnet.Network, id string) (*mediator.Report, error) {
	m := n.Mediators[id]
	hc, err := config.MediatorClient(n.Agreement.Agreement, m.CertFile, m.KeyFile, id, 3*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("mediator %s: %w", id, err)
	}
	defer hc.CloseIdleConnections()
	body, err := mediator.RequestAudit(ctx, hc, "https://"+m.Address, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("mediator %s: %w", id, err)
	}
	defer body.Close()
	return mediator.ReadReport(body)
}
