package localnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/parley-dev/parley/mediator"
	"github.com/parley-dev/parley/server"
)

// BuildBinary builds cmd/parley into dir and returns its path. Tests that
// run nodes as separate OS processes call it once.
func BuildBinary(ctx context.Context, dir string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("couldn't locate the module root")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(dir, "parley")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/parley")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("couldn't build parley: %w\n%s", err, out)
	}
	return bin, nil
}

// Process is a node running as its own OS process (parley node -c ...).
type Process struct {
	Party string
	bin   string
	cfg   string
	out   io.Writer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartProcess runs party's node as a separate process from the binary bin,
// with its output to out, and waits until it answers health checks. The
// reserved listeners for the party (gRPC and tiles) are released first.
func (n *Network) StartProcess(ctx context.Context, bin, party string, out io.Writer) (*Process, error) {
	p, ok := n.Parties[party]
	if !ok {
		return nil, fmt.Errorf("no party %q", party)
	}
	for _, id := range []string{party, "tiles/" + party} {
		if l, ok := n.Listener(id); ok {
			_ = l.Close()
		}
	}
	proc := &Process{Party: party, bin: bin, cfg: p.ConfigFile, out: out}
	if err := proc.start(); err != nil {
		return nil, err
	}
	if err := n.WaitHealthy(ctx, party, 60*time.Second); err != nil {
		_ = proc.Kill()
		return nil, err
	}
	return proc, nil
}

func (p *Process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin, "node", "-c", p.cfg)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("couldn't start node %s: %w", p.Party, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	return nil
}

// PID returns the operating system's id of the running process (of the
// latest start), for reading its resource use; 0 if it was never started.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Kill ends the process with SIGKILL (a crash) and waits for it.
func (p *Process) Kill() error { return p.signal(syscall.SIGKILL) }

// Stop ends the process with SIGTERM (a clean shutdown) and waits for it.
func (p *Process) Stop() error { return p.signal(syscall.SIGTERM) }

func (p *Process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	return nil
}

// Restart starts the process again after Kill or Stop and waits until it
// answers health checks.
func (p *Process) Restart(ctx context.Context, n *Network) error {
	if err := p.start(); err != nil {
		return err
	}
	return n.WaitHealthy(ctx, p.Party, 60*time.Second)
}

// WaitHealthy polls party's node until its health service says SERVING.
// It waits for the node's port to accept connections first (every 5 ms),
// then asks with a fresh client each time: a gRPC channel that failed to
// connect backs off for a second or more before it tries again, which would
// be measured as start-up time.
func (n *Network) WaitHealthy(ctx context.Context, party string, timeout time.Duration) error {
	p, ok := n.Parties[party]
	if !ok {
		return fmt.Errorf("no party %q in the network", party)
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		wait := 50 * time.Millisecond
		if conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", p.Address); err != nil {
			last, wait = err, 5*time.Millisecond
		} else {
			conn.Close()
			ok, err := n.healthy(ctx, party)
			if ok {
				return nil
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return fmt.Errorf("node %s not healthy after %s: %v", party, timeout, last)
}

// healthy asks party's node once, over a new connection, whether it serves.
func (n *Network) healthy(ctx context.Context, party string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := n.Operator(ctx, party)
	if err != nil {
		return false, err
	}
	defer c.Close()
	return c.Healthy(ctx, "")
}

// StartWitnesses runs only the mediators' witnesses in this process, for
// tests that run the nodes as separate processes.
func (n *Network) StartWitnesses(ctx context.Context, logger *slog.Logger) (*Running, error) {
	ctx, cancel := context.WithCancel(ctx)
	r := &Running{Network: n, Nodes: map[string]*server.Node{}, Witnesses: map[string]*mediator.Witness{}, cancel: cancel}
	for _, id := range n.MediatorIDs {
		if err := r.startWitness(ctx, id, logger.With("mediator", id)); err != nil {
			r.Stop()
			return nil, err
		}
	}
	return r, nil
}
