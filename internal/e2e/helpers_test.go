package e2e_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
	"github.com/parley-dev/parley/internal/localnet/localnettest"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// parleyBinary builds cmd/parley into a directory of the test, for tests
// that run nodes as separate processes. (The build cache makes a second
// build cheap; no TestMain is needed.)
func parleyBinary(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := localnet.BuildBinary(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("couldn't build parley: %v", err)
	}
	return bin
}

// fsckBinary returns Tessera's fsck command at the version pinned in
// tools/tessera/go.mod: $PARLEY_TOOLS_BIN/fsck if CI built it there (see
// .ci/run), else built now. The test is skipped, with the reason, only if
// it cannot be built (for example without access to the module proxy).
func fsckBinary(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("PARLEY_TOOLS_BIN"); dir != "" {
		if p := filepath.Join(dir, "fsck"); isExecutable(p) {
			return p
		}
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(t.TempDir(), "fsck")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-modfile=tools/tessera/go.mod", "-o", bin, "github.com/transparency-dev/tessera/cmd/fsck")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("Tessera's fsck (pinned in tools/tessera/go.mod) cannot be built here, skipping: %v\n%s", err, out)
	}
	return bin
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// testLogger logs warnings and errors of the network to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// generate makes a network's files in a temporary directory. Its nodes
// have no per-party rate limit: these tests stress and measure the log, not
// the limiter (which server tests cover), and submit faster than its
// default allows.
func generate(t testing.TB, opts localnet.Options) *localnet.Network {
	t.Helper()
	opts.Dir = t.TempDir()
	if len(opts.Parties) == 0 {
		opts.Parties = []string{"alpha", "bravo"}
	}
	net, err := localnet.Generate(context.Background(), opts)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	for _, id := range net.PartyIDs {
		err := net.UpdateNodeConfig(id, func(c *config.Node) { c.Limits.RatePerParty = -1 })
		if err != nil {
			t.Fatalf("UpdateNodeConfig: %v", err)
		}
	}
	return net
}

// start runs a whole network in this process until the test ends.
func start(t testing.TB, opts localnet.Options) *localnet.Running {
	t.Helper()
	run, err := generate(t, opts).Start(context.Background(), testLogger(t))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(run.Stop)
	return run
}

// startAlone runs the mediators' witnesses and party's node only, in this
// process, until the test ends: the other parties' nodes are down, so the
// log holds only what the test submits and no peer shares the CPU.
func startAlone(t testing.TB, opts localnet.Options, party string) *localnet.Network {
	t.Helper()
	net := generate(t, opts)
	witnesses, err := net.StartWitnesses(context.Background(), testLogger(t))
	if err != nil {
		t.Fatalf("StartWitnesses: %v", err)
	}
	t.Cleanup(witnesses.Stop)
	nodes, err := net.StartNodes(context.Background(), testLogger(t), party)
	if err != nil {
		t.Fatalf("StartNodes: %v", err)
	}
	t.Cleanup(nodes.Stop) // cleanups run last first: the node stops before the witnesses
	return net
}

// operator dials party's node as its operator until the test ends.
func operator(t testing.TB, net *localnet.Network, party string) *client.Client {
	t.Helper()
	c, err := net.Operator(context.Background(), party)
	if err != nil {
		t.Fatalf("dial %s: %v", party, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func notification(i int) *parleyv1.ActivityNotification {
	return localnettest.Notification(9000 + uint32(i))
}

// awaitCheckpoint waits (at most timeout) for a verified checkpoint that
// covers size entries.
func awaitCheckpoint(t testing.TB, c *client.Client, keys client.LogKeys, size uint64, timeout time.Duration) (*client.Checkpoint, []byte) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		cp, raw, err := c.Checkpoint(context.Background(), keys)
		if err == nil && cp.Size >= size {
			return cp, raw
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("latest checkpoint has size %d", cp.Size)
			}
			t.Fatalf("no checkpoint covering %d entries within %v: %v", size, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readLog reads every integrated entry of c's node, in index order.
func readLog(t testing.TB, c *client.Client) []*parleyv1.LogEntry {
	t.Helper()
	var all []*parleyv1.LogEntry
	for {
		page, err := c.Entries(context.Background(), uint64(len(all)), 1000)
		if err != nil {
			t.Fatalf("Entries(%d): %v", len(all), err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
	}
}
