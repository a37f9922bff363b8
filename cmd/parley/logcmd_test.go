package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// logNetwork is a running network with one mediator witnessing, for the
// 'parley log' tests.
type logNetwork struct {
	run     *localnet.Running
	netFile string
	alpha   *client.Client
}

func startLogNetwork(t *testing.T) *logNetwork {
	t.Helper()
	ctx := t.Context()
	net, err := localnet.Generate(ctx, localnet.Options{Dir: t.TempDir(), Parties: []string{"alpha", "bravo"}})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	run, err := net.Start(context.Background(), logger)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(run.Stop)
	alpha, err := run.Operator(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alpha.Close() })
	return &logNetwork{run: run, netFile: filepath.Join(net.Dir, "network.json"), alpha: alpha}
}

// notify submits n notifications to alpha's node and waits for a
// checkpoint that covers them.
func (ln *logNetwork) notify(t *testing.T, n int) {
	t.Helper()
	ctx := t.Context()
	var last *parleyv1.LogEntry
	for i := range n {
		start := time.Now().UTC().AddDate(0, 0, 60).Truncate(time.Hour)
		e, err := ln.alpha.Notify(ctx, &parleyv1.ActivityNotification{
			Designation: fmt.Sprintf("Exercise %d", i),
			Type:        parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
			Start:       timestamppb.New(start),
			End:         timestamppb.New(start.Add(72 * time.Hour)),
			Area:        &parleyv1.Area{PlaceNames: []string{"Range 1"}},
			Forces:      &parleyv1.Forces{Troops: 9000},
		})
		if err != nil {
			t.Fatalf("Notify: %v", err)
		}
		last = e
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		cp, _, err := ln.alpha.Checkpoint(ctx, ln.run.LogKeys("alpha"))
		if err == nil && cp.Size > last.GetIndex() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covers index %d: %v", last.GetIndex(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// parley runs the CLI in-process and returns its exit status and output.
func parley(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustParley runs the CLI and fails the test unless it succeeds.
func mustParley(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := parley(t, args...)
	if code != 0 {
		t.Fatalf("parley %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// matchLines fails unless every pattern matches a line of out.
func matchLines(t *testing.T, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile("(?m)" + p).MatchString(out) {
			t.Errorf("output does not match %q:\n%s", p, out)
		}
	}
}

func TestLogCommands(t *testing.T) {
	ln := startLogNetwork(t)
	ln.notify(t, 3)
	dir := t.TempDir()
	dial := []string{"-network", ln.netFile, "-party", "alpha"}
	cpFile := filepath.Join(dir, "cp3")

	out := mustParley(t, append([]string{"log", "checkpoint", "-o", cpFile}, dial...)...)
	matchLines(t, out,
		`^origin +parley\.local/alpha$`,
		`^size +3$`,
		`^root +[A-Za-z0-9+/]{43}=$`,
		`^cosigned by +secretariat \(1 of 1 mediators, quorum 1\)$`)

	out = mustParley(t, append([]string{"log", "list"}, dial...)...)
	matchLines(t, out,
		`^INDEX +ENTRY +KIND +DIGEST$`,
		`^0 +alpha/1 +notification +[0-9a-f]{64}$`,
		`^2 +alpha/3 +notification +[0-9a-f]{64}$`)
	if n := strings.Count(out, "\n"); n != 4 {
		t.Errorf("list printed %d lines, want a header and 3 entries:\n%s", n, out)
	}
	out = mustParley(t, append([]string{"log", "list", "-from", "1", "-count", "1"}, dial...)...)
	if !strings.Contains(out, "alpha/2") || strings.Contains(out, "alpha/1") || strings.Contains(out, "alpha/3") {
		t.Errorf("list -from 1 -count 1: want only alpha/2, got:\n%s", out)
	}

	e2, err := ln.alpha.Entry(t.Context(), "alpha", 2)
	if err != nil {
		t.Fatal(err)
	}
	out = mustParley(t, append([]string{"log", "show", "alpha", "2"}, dial...)...)
	matchLines(t, out,
		`^entry +alpha/2$`,
		`^kind +notification$`,
		fmt.Sprintf(`^index +%d$`, e2.GetIndex()),
		fmt.Sprintf(`^digest +%x$`, e2.GetDigest()),
		`^signature +valid, key `,
		`^included +in alpha's checkpoint of size 3, root .* \(proof verified\)$`,
		`^statement:$`,
		`"designation": "Exercise 1"`,
		`^envelope:$`,
		"^"+regexp.QuoteMeta(base64.StdEncoding.EncodeToString(e2.GetEnvelope()))+"$")

	out = mustParley(t, append([]string{"log", "prove", "alpha", "3"}, dial...)...)
	matchLines(t, out,
		`^entry +alpha/3$`,
		`^tree size +3$`,
		`^proof +\d+ hashes$`,
		`^inclusion proof verified$`)

	// The log grows; the saved checkpoint is proved a prefix of the new one.
	ln.notify(t, 2)
	out = mustParley(t, append([]string{"log", "consistency", "-old", cpFile}, dial...)...)
	matchLines(t, out,
		`^old +size 3, root `,
		`^new +size 5, root `,
		`^proof +\d+ hashes$`,
		`^consistent: the old log is a prefix of the new one$`)

	// Export feeds 'parley verify', which accepts every entry.
	export := filepath.Join(dir, "alpha.jsonl")
	mustParley(t, append([]string{"log", "export", "-o", export}, dial...)...)
	data, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 5 {
		t.Errorf("export wrote %d lines, want 5", n)
	}
	out = mustParley(t, "verify", "-agreement", ln.run.AgreementFile, export)
	matchLines(t, out, `alpha`)
	stdoutExport := mustParley(t, append([]string{"log", "export"}, dial...)...)
	if stdoutExport != string(data) {
		t.Errorf("export to stdout differs from export to a file")
	}

	// A mediator reads bravo's log with its own certificate and explicit
	// flags; the agreement comes from -agreement.
	m := ln.run.Mediators["secretariat"]
	b := ln.run.Parties["bravo"]
	out = mustParley(t, "log", "checkpoint", "-addr", b.Address, "-party", "bravo",
		"-cert", m.CertFile, "-key", m.KeyFile, "-ca", "bravo="+b.CAFile, "-agreement", ln.run.AgreementFile)
	matchLines(t, out, `^origin +parley\.local/bravo$`, `^size +0$`)
}

func TestLogCommandErrors(t *testing.T) {
	ln := startLogNetwork(t)
	ln.notify(t, 2)
	dir := t.TempDir()
	dial := []string{"-network", ln.netFile, "-party", "alpha"}
	cpFile := filepath.Join(dir, "cp")
	mustParley(t, append([]string{"log", "checkpoint", "-o", cpFile}, dial...)...)
	raw, err := os.ReadFile(cpFile)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// A checkpoint of another size, signed by no one the agreement knows.
	forged := write("forged", bytes.Replace(raw, []byte("\n2\n"), []byte("\n1\n"), 1))
	// bravo's checkpoint is validly signed, but for another origin.
	bravoCP := filepath.Join(dir, "bravo")
	mustParley(t, "log", "checkpoint", "-network", ln.netFile, "-party", "bravo", "-o", bravoCP)
	// The agreement without bravo's signature.
	text := readFileT(t, ln.run.AgreementFile)
	unsigned := write("unsigned.yaml", text[:bytes.Index(text, []byte("  - party: bravo\n"))])

	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no subcommand", []string{"log"}, 2, `^parley log: missing subcommand`},
		{"unknown subcommand", []string{"log", "bogus"}, 2, `^parley log: unknown subcommand "bogus"`},
		{"no party", []string{"log", "checkpoint", "-network", ln.netFile}, 2, `^parley log checkpoint: -party is required`},
		{"no agreement", []string{"log", "checkpoint", "-party", "alpha", "-addr", "x:1"}, 2, `give -agreement`},
		{"show without seq", append([]string{"log", "show", "alpha"}, dial...), 2, `want SENDER SEQ, got 1 arguments`},
		{"show seq 0", append([]string{"log", "show", "alpha", "0"}, dial...), 2, `SEQ: got "0"`},
		{"show missing entry", append([]string{"log", "show", "alpha", "99"}, dial...), 1, `NotFound`},
		{"consistency without -old", append([]string{"log", "consistency"}, dial...), 2, `-old is required`},
		{"consistency with a forged checkpoint", append([]string{"log", "consistency", "-old", forged}, dial...), 1, `checkpoint does not verify`},
		{"consistency with another log's checkpoint", append([]string{"log", "consistency", "-old", bravoCP}, dial...), 1, `checkpoint does not verify`},
		{"agreement not signed by all", []string{"log", "checkpoint", "-network", ln.netFile, "-party", "alpha", "-agreement", unsigned}, 1, `refusing to trust agreement .*bravo`},
		{"not a party", []string{"log", "checkpoint", "-network", ln.netFile, "-party", "zulu"}, 1, `"zulu" is not a party`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := parley(t, tt.args...)
			if code != tt.code {
				t.Fatalf("got exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			matchLines(t, errOut, tt.stderr)
		})
	}
}

func readFileT(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
