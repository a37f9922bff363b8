package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// TestLogScript runs the scripts in testdata/logscript against a network
// running in the test process, while 'exec parley' runs the CLI as its own
// process, as a user would. Besides the commands of TestScript, scripts
// may use
//
//	startnet [PARTY...]  make a network of parties alpha and bravo and
//	                     mediator secretariat (quorum 1); run the witness and
//	                     the nodes of PARTY... (default alpha: a log that
//	                     holds only what the script submits); set $NETWORK,
//	                     $AGREEMENT, $UNSIGNED_AGREEMENT (without bravo's
//	                     signature), $<PARTY>_ADDR, $<PARTY>_CA,
//	                     $<PARTY>_OPERATOR_CERT and _KEY for each party, and
//	                     $MEDIATOR_CERT, $MEDIATOR_KEY
//	submit PARTY N     submit N notifications as PARTY's operator, wait for a
//	                   checkpoint that covers them, and set $<PARTY>_DIGEST_<SEQ>
//	                   (hex) of each
func TestLogScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "logscript"),
		Setup: func(e *testscript.Env) error {
			e.Values[scriptNetKey{}] = &scriptNet{}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"startnet": cmdStartNet,
			"submit":   cmdSubmit,
			"replace":  cmdReplace,
		},
	})
}

type scriptNetKey struct{}

// scriptNet is the network of one script.
type scriptNet struct {
	net *localnet.Network
}

func cmdStartNet(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: startnet [PARTY...]")
	}
	if len(args) == 0 {
		args = []string{"alpha"}
	}
	sn := ts.Value(scriptNetKey{}).(*scriptNet)
	if sn.net != nil {
		ts.Fatalf("startnet: a network is already running")
	}
	dir := ts.MkAbs("net")
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	net, err := localnet.Generate(ctx, localnet.Options{Dir: dir, Parties: []string{"alpha", "bravo"}})
	ts.Check(err)
	witnesses, err := net.StartWitnesses(ctx, logger)
	ts.Check(err)
	ts.Defer(witnesses.Stop)
	nodes, err := net.StartNodes(ctx, logger, args...)
	ts.Check(err)
	ts.Defer(nodes.Stop) // deferred calls run last first: the nodes stop before the witness
	sn.net = net
	ts.Setenv("NETWORK", filepath.Join(dir, "network.json"))
	ts.Setenv("AGREEMENT", net.AgreementFile)
	// The same agreement without bravo's signature.
	text, err := os.ReadFile(net.AgreementFile)
	ts.Check(err)
	unsigned := regexp.MustCompile(`(?m)^  - party: bravo\n(    .*\n)*`).ReplaceAll(text, nil)
	if len(unsigned) == len(text) {
		ts.Fatalf("startnet: no signature of bravo found in %s", net.AgreementFile)
	}
	ts.Check(os.WriteFile(filepath.Join(dir, "unsigned.yaml"), unsigned, 0o644))
	ts.Setenv("UNSIGNED_AGREEMENT", filepath.Join(dir, "unsigned.yaml"))
	for id, p := range net.Parties {
		id = strings.ToUpper(id)
		ts.Setenv(id+"_ADDR", p.Address)
		ts.Setenv(id+"_CA", p.CAFile)
		ts.Setenv(id+"_OPERATOR_CERT", p.OperatorCert)
		ts.Setenv(id+"_OPERATOR_KEY", p.OperatorKey)
	}
	m := net.Mediators["secretariat"]
	ts.Setenv("MEDIATOR_CERT", m.CertFile)
	ts.Setenv("MEDIATOR_KEY", m.KeyFile)
}

func cmdSubmit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: submit PARTY N")
	}
	sn := ts.Value(scriptNetKey{}).(*scriptNet)
	if sn.net == nil {
		ts.Fatalf("submit: no network; use startnet first")
	}
	party := args[0]
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	ctx := context.Background()
	c, err := sn.net.Operator(ctx, party)
	ts.Check(err)
	defer c.Close()
	var last *parleyv1.LogEntry
	for i := range n {
		start := time.Now().UTC().AddDate(0, 0, 60).Truncate(time.Hour)
		e, err := c.Notify(ctx, &parleyv1.ActivityNotification{
			Designation: fmt.Sprintf("Exercise %d", i+1),
			Type:        parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
			Start:       timestamppb.New(start),
			End:         timestamppb.New(start.Add(72 * time.Hour)),
			Area:        &parleyv1.Area{PlaceNames: []string{"Range 1"}},
			Forces:      &parleyv1.Forces{Troops: 9000},
		})
		ts.Check(err)
		ts.Setenv(fmt.Sprintf("%s_DIGEST_%d", strings.ToUpper(party), e.GetSeq()), fmt.Sprintf("%x", e.GetDigest()))
		last = e
	}
	if last == nil {
		return
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		cp, _, err := c.Checkpoint(ctx, sn.net.LogKeys(party))
		if err == nil && cp.Size > last.GetIndex() {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("submit: no checkpoint of %s covers index %d: %v", party, last.GetIndex(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
