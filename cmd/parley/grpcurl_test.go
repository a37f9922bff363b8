package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/certs/certstest"
	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// outsideTool returns the path of an outside tool built from its pinned
// tools module: from $PARLEY_TOOLS_BIN when CI built it, else built now.
func outsideTool(t *testing.T, name, module, pkg string) string {
	t.Helper()
	if dir := os.Getenv("PARLEY_TOOLS_BIN"); dir != "" {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-modfile="+filepath.Join(root, module), "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("couldn't build %s from %s, skipping: %v\n%s", name, module, err, out)
	}
	return bin
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestGRPCurl talks to a demo network with grpcurl, an outside client, over
// mTLS using only the files the network generated, as the README says.
func TestGRPCurl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds grpcurl; skipped in -short")
	}
	grpcurl := outsideTool(t, "grpcurl", "tools/grpcurl/go.mod", "github.com/fullstorydev/grpcurl/cmd/grpcurl")
	ctx := context.Background()
	dir := t.TempDir()
	net, err := localnet.Generate(ctx, localnet.Options{Dir: dir, NoMediators: true})
	if err != nil {
		t.Fatal(err)
	}
	run, err := net.Start(ctx, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer run.Stop()
	op, err := net.Operator(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if _, err := op.Notify(ctx, demoNotification()); err != nil {
		t.Fatal(err)
	}

	// A CA the agreement does not list, issuing a certificate claiming alpha.
	rogue := certstest.NewParty(t, "alpha")
	rogueCert, rogueKey := rogue.WriteLeaf(t, t.TempDir(), certs.RoleOperator, "ops")

	_, file, _, _ := runtime.Caller(0)
	protoDir := filepath.Join(filepath.Dir(file), "..", "..", "proto")
	alpha, bravo := net.Parties["alpha"], net.Parties["bravo"]
	tlsArgs := func(cert, key string) []string {
		args := []string{"-cacert", alpha.CAFile, "-max-time", "20"}
		if cert != "" {
			args = append(args, "-cert", cert, "-key", key)
		}
		return args
	}
	protoArgs := []string{"-import-path", protoDir, "-import-path", filepath.Join(protoDir, "vendor"), "-proto", "parley/v1/services.proto"}
	tests := []struct {
		name     string
		args     []string
		wantOK   bool
		wantText string
	}{
		{"list services with alpha's operator", append(tlsArgs(alpha.OperatorCert, alpha.OperatorKey), alpha.Address, "list"), true, "parley.v1.LogService"},
		{"read an entry", append(append(tlsArgs(alpha.OperatorCert, alpha.OperatorKey), "-d", `{"sender":"alpha","seq":1}`), alpha.Address, "parley.v1.LogService/GetEntry"), true, `"sender": "alpha"`},
		{"no client certificate", append(tlsArgs("", ""), alpha.Address, "list"), false, "certificate required"},
		{"another CA's certificate claiming alpha", append(tlsArgs(rogueCert, rogueKey), alpha.Address, "list"), false, "bad certificate"},
		{"bravo's operator submitting to alpha", append(append(append(tlsArgs(bravo.OperatorCert, bravo.OperatorKey), protoArgs...),
			"-d", `{"body":{"consultation_request":{"addressee":"charlie","kind":"CONSULTATION_KIND_EXPLANATION","concern":"x"}}}`),
			alpha.Address, "parley.v1.SubmissionService/Submit"), false, "PermissionDenied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			var out bytes.Buffer
			cmd := exec.CommandContext(ctx, grpcurl, tt.args...)
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if (err == nil) != tt.wantOK {
				t.Fatalf("got err=%v, want ok=%v; output:\n%s", err, tt.wantOK, out.String())
			}
			if !strings.Contains(out.String(), tt.wantText) {
				t.Fatalf("output does not contain %q:\n%s", tt.wantText, out.String())
			}
		})
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func demoNotification() *parleyv1.ActivityNotification {
	return notification("Grpcurl Check", time.Now().UTC().AddDate(0, 0, 60), 3, 9000, "Range 7")
}
