package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
)

// partyNames are the party ids of a network, in order; beyond them parties
// are named p13, p14, ...
var partyNames = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett", "kilo", "lima"}

func partyIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		if i < len(partyNames) {
			ids[i] = partyNames[i]
		} else {
			ids[i] = "p" + strconv.Itoa(i+1)
		}
	}
	return ids
}

func mediatorIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "mediator" + strconv.Itoa(i+1)
	}
	return ids
}

// network is a generated network whose mediators and nodes run as separate
// processes of cfg.Binary.
type network struct {
	*localnet.Network
	cfg       *Config
	dir       string
	mediators []*child
	nodes     map[string]*localnet.Process
	order     []string // started nodes, in start order
	logs      []*os.File
	echo      *child
	echoAddr  string
	admin     map[string]string // party → its node's admin address
}

// startNetwork generates a network of parties parties under dir, starts its
// mediators and then the nodes of start (all parties if nil) as processes,
// each node waited for until healthy (which needs the witnesses: a new node
// waits for its first checkpoint to be cosigned).
func startNetwork(ctx context.Context, cfg *Config, dir string, parties int, start []string) (*network, error) {
	ln, err := localnet.Generate(ctx, localnet.Options{
		Dir:                dir,
		Parties:            partyIDs(parties),
		Mediators:          mediatorIDs(cfg.Mediators),
		NoMediators:        cfg.Mediators == 0,
		CheckpointInterval: cfg.CheckpointInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't generate a network of %d parties: %w", parties, err)
	}
	n := &network{Network: ln, cfg: cfg, dir: dir, nodes: map[string]*localnet.Process{}, admin: map[string]string{}}
	for _, id := range ln.PartyIDs {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		n.admin[id] = addr
		err = ln.UpdateNodeConfig(id, func(c *config.Node) {
			// The per-party rate limits are policy, not capacity: lifted,
			// or they, not the node, would be measured.
			c.Limits.RatePerParty = -1
			c.AdminListen = addr
		})
		if err != nil {
			return nil, err
		}
	}
	for _, id := range ln.MediatorIDs {
		if err := n.startMediator(ctx, id); err != nil {
			n.stop()
			return nil, err
		}
	}
	if start == nil {
		start = ln.PartyIDs
	}
	for _, id := range start {
		if err := n.startNode(ctx, id); err != nil {
			n.stop()
			return nil, err
		}
	}
	// Parties not started refuse connections instead of leaving their
	// peers' handshakes hanging on a reserved port.
	for _, id := range ln.PartyIDs {
		for _, l := range []string{id, "tiles/" + id} {
			if l, ok := ln.Listener(l); ok {
				_ = l.Close()
			}
		}
	}
	return n, nil
}

// startMediator runs mediator id (parley mediator -c FILE) and waits until
// its port accepts connections.
func (n *network) startMediator(ctx context.Context, id string) error {
	m := n.Mediators[id]
	if l, ok := n.Listener("mediator/" + id); ok {
		_ = l.Close()
	}
	f, err := n.logFile("mediator-" + id)
	if err != nil {
		return err
	}
	c, err := startChild("mediator "+id, n.cfg.Binary, []string{"mediator", "-c", m.ConfigFile}, f)
	if err != nil {
		return err
	}
	n.mediators = append(n.mediators, c)
	return c.awaitPort(ctx, m.Address)
}

// startNode starts party's node process, its output to dir/logs/<party>.log.
func (n *network) startNode(ctx context.Context, party string) error {
	f, err := n.logFile(party)
	if err != nil {
		return err
	}
	p, err := n.StartProcess(ctx, n.cfg.Binary, party, f)
	if err != nil {
		return fmt.Errorf("couldn't start node %s (its output is in %s): %w", party, f.Name(), err)
	}
	n.nodes[party] = p
	n.order = append(n.order, party)
	return nil
}

func (n *network) logFile(name string) (*os.File, error) {
	dir := filepath.Join(n.dir, "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("couldn't create %s: %w", dir, err)
	}
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("couldn't create a log file: %w", err)
	}
	n.logs = append(n.logs, f)
	return f, nil
}

// stop ends the echo server, the nodes and then the mediators (SIGTERM,
// then SIGKILL if they do not stop in time).
func (n *network) stop() {
	if n.echo != nil {
		n.echo.stop()
		n.echo = nil
	}
	for i := len(n.order) - 1; i >= 0; i-- {
		_ = n.nodes[n.order[i]].Stop()
	}
	n.order = nil
	for _, m := range n.mediators {
		m.stop()
	}
	n.mediators = nil
	for _, f := range n.logs {
		_ = f.Close()
	}
	n.logs = nil
}

// operator dials party's node as that party's operator.
func (n *network) operator(ctx context.Context, party string) (*client.Client, error) {
	c, err := n.Operator(ctx, party)
	if err != nil {
		return nil, fmt.Errorf("couldn't dial %s's node: %w", party, err)
	}
	return c, nil
}

// operators dials count clients of party's node, one connection each.
func (n *network) operators(ctx context.Context, party string, count int) ([]*client.Client, error) {
	var cs []*client.Client
	for range count {
		c, err := n.operator(ctx, party)
		if err != nil {
			closeAll(cs)
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func closeAll(cs []*client.Client) {
	for _, c := range cs {
		_ = c.Close()
	}
}

// child is a process of cfg.Binary other than a node: a mediator or the
// echo baseline.
type child struct {
	name string
	out  string // the file with its output
	cmd  *exec.Cmd
	done chan struct{}
}

// startChild starts bin with args, its output to out. The child is killed
// if this process dies first.
func startChild(name, bin string, args []string, out *os.File) (*child, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("couldn't start %s: %w", name, err)
	}
	c := &child{name: name, out: out.Name(), cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	return c, nil
}

// awaitPort waits up to 30 s until addr accepts TCP connections.
func (c *child) awaitPort(ctx context.Context, addr string) error {
	return c.await(ctx, func(ctx context.Context) error {
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = conn.Close()
		}
		return err
	})
}

// await calls ready every 50 ms until it succeeds, for up to 30 s, or the
// child exits.
func (c *child) await(ctx context.Context, ready func(context.Context) error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ready(ctx)
		switch {
		case err == nil:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("%s not ready after 30s (its output is in %s): %w", c.name, c.out, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return fmt.Errorf("%s exited: %v (its output is in %s)", c.name, c.cmd.ProcessState, c.out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop ends the child with SIGTERM, or SIGKILL after 15 s.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// startEcho runs the baseline next to party's node, with that node's
// certificate and TLS configuration, and waits until it answers.
func (n *network) startEcho(ctx context.Context, party string) error {
	addr, err := freePort()
	if err != nil {
		return err
	}
	f, err := n.logFile("echo")
	if err != nil {
		return err
	}
	e, err := startChild("echo server", n.cfg.Binary, EchoArgs(addr, n.Parties[party].ConfigFile), f)
	if err != nil {
		return err
	}
	n.echo, n.echoAddr = e, addr
	c, err := n.echoClient(ctx, party)
	if err != nil {
		return err
	}
	defer c.Close()
	return e.await(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		ok, err := c.Healthy(ctx, "")
		if err == nil && !ok {
			err = errors.New("not serving")
		}
		return err
	})
}

// echoClient dials the baseline exactly as operator dials party's node:
// same certificate, CAs and expected server identity.
func (n *network) echoClient(ctx context.Context, party string) (*client.Client, error) {
	p := n.Parties[party]
	c, err := client.Dial(ctx, client.Config{Address: n.echoAddr, CertFile: p.OperatorCert, KeyFile: p.OperatorKey, CAFiles: n.CAFiles(), Party: party})
	if err != nil {
		return nil, fmt.Errorf("couldn't dial the echo server: %w", err)
	}
	return c, nil
}

// EchoArgs are the arguments of Config.Binary that serve the baseline on
// addr with the TLS configuration of the node configured in nodeConfig.
func EchoArgs(addr, nodeConfig string) []string {
	return []string{"bench", "-serve-echo", addr, "-c", nodeConfig}
}

// proc names a process whose resource use is reported.
type proc struct {
	name string
	pid  int
}

// procs are the processes of the started nodes, in start order, then of
// the mediators.
func (n *network) procs() []proc {
	var ps []proc
	for _, id := range n.order {
		ps = append(ps, proc{name: "node " + id, pid: n.nodes[id].PID()})
	}
	for _, m := range n.mediators {
		ps = append(ps, proc{name: m.name, pid: m.pid()})
	}
	return ps
}

// selfProc is this process: the clients.
func selfProc() proc { return proc{name: "harness (clients)", pid: os.Getpid()} }

// usage samples the CPU time of processes at the start of a measurement.
type usage struct {
	procs []proc
	start []float64
	err   error
}

func startUsage(ps ...proc) *usage {
	u := &usage{procs: ps, start: make([]float64, len(ps))}
	for i, p := range ps {
		s, err := cpuSeconds(p.pid)
		u.start[i] = s
		u.err = errors.Join(u.err, err)
	}
	return u
}

// Process is the resource use of one process during a measurement.
type Process struct {
	// Name says what the process is ("node alpha", "echo", "harness ...").
	Name string `json:"name"`
	// PID is its operating system process id.
	PID int `json:"pid"`
	// CPUSeconds is the user plus system CPU time it used during the
	// measurement (/proc/<pid>/stat utime + stime).
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPer1000 is CPUSeconds per 1,000 operations of the measurement.
	CPUPer1000 float64 `json:"cpu_seconds_per_1000"`
	// PeakRSSMiB is the peak resident set size of the process since it
	// started (VmHWM in /proc/<pid>/status), in MiB.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// finish reads the CPU time and peak RSS of every process now and divides
// by ops.
func (u *usage) finish(ops int64) ([]Process, error) {
	out := make([]Process, len(u.procs))
	errs := u.err
	for i, p := range u.procs {
		s, err := cpuSeconds(p.pid)
		errs = errors.Join(errs, err)
		rss, err := peakRSS(p.pid)
		errs = errors.Join(errs, err)
		out[i] = Process{Name: p.name, PID: p.pid, CPUSeconds: s - u.start[i], PeakRSSMiB: float64(rss) / (1 << 20)}
		if ops > 0 {
			out[i].CPUPer1000 = out[i].CPUSeconds / float64(ops) * 1000
		}
	}
	return out, errs
}

// logf reports a problem that does not stop the run.
func (c *Config) logf(msg string, args ...any) {
	c.Logger.Log(context.Background(), slog.LevelWarn, msg, args...)
}

// freePort returns a loopback address whose port was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("couldn't find a free loopback port: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}
