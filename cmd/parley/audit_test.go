package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/internal/localnet"
	"github.com/parley-dev/parley/keys"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// TestAuditCommand runs "parley audit" against a running network: clean
// at first (the demo's audit step passes and writes its pages), then with
// exit status 3 and verified evidence once alpha has equivocated, both
// from the running mediator (-network) and from its data directory
// (-dir).
func TestAuditCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network")
	}
	ctx := t.Context()
	dir := t.TempDir()
	net, err := localnet.Generate(ctx, localnet.Options{Dir: dir, EffectiveFrom: time.Now().UTC().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	run, err := net.Start(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer run.Stop()

	var out bytes.Buffer
	ok, err := runAuditStep(ctx, &out, net, dir)
	if err != nil || !ok {
		t.Fatalf("audit step of a clean network: ok %v, err %v\n%s", ok, err, out.String())
	}
	for _, f := range []string{"audit.html", "audit.json"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("audit step wrote no %s: %v", f, err)
		}
	}
	if !strings.Contains(out.String(), "result: CLEAN") {
		t.Errorf("audit step output lacks the clean result:\n%s", out.String())
	}

	// alpha equivocates: bravo gets one entry 1, alpha's node logs another.
	now := time.Now().UTC()
	signer, err := keys.LoadSigner(ctx, net.Parties["alpha"].SigningKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(designation string) []byte {
		st := &parleyv1.Statement{
			Header: &parleyv1.Header{AgreementId: net.Agreement.Agreement.ID, Sender: "alpha", Seq: 1, IssuedAt: timestamppb.New(now)},
			Body:   &parleyv1.Body{Kind: &parleyv1.Body_Notification{Notification: notification(designation, now.AddDate(0, 0, 60), 3, 9500, "North")}},
		}
		raw, err := envelope.Sign(ctx, st, signer, "")
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	e1, e2 := sign("Northern Shield"), sign("Northern Shield bis")
	a := net.Parties["alpha"]
	asAlphaNode, err := client.Dial(ctx, client.Config{Address: net.Parties["bravo"].Address, CertFile: a.NodeCertFile, KeyFile: a.NodeKeyFile, CAFiles: net.CAFiles(), Party: "bravo"})
	if err != nil {
		t.Fatal(err)
	}
	defer asAlphaNode.Close()
	stream, err := asAlphaNode.Exchange.Deliver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&parleyv1.DeliverRequest{Envelope: e2}); err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || resp.GetStatus() != parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED {
		t.Fatalf("delivering to bravo: %v %v", resp, err)
	}
	op, err := net.Operator(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if _, err := op.SubmitEnvelope(ctx, e1); err != nil {
		t.Fatal(err)
	}

	htmlFile := filepath.Join(dir, "bad.html")
	var stdout, stderr bytes.Buffer
	code := 0
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		stdout.Reset()
		stderr.Reset()
		code = Main([]string{"audit", "-network", filepath.Join(dir, "network.json"), "-html", htmlFile}, &stdout, &stderr)
		if code != 0 {
			break
		}
	}
	if code != exitMisbehaviour || !strings.Contains(stdout.String(), "equivocation against alpha (verified)") {
		t.Fatalf("audit -network: got status %d, want %d with the equivocation\nstdout:\n%s\nstderr:\n%s", code, exitMisbehaviour, stdout.String(), stderr.String())
	}
	if b, err := os.ReadFile(htmlFile); err != nil || !bytes.Contains(b, []byte(`<svg id="timeline"`)) {
		t.Errorf("audit -html wrote no page with the timeline: %v", err)
	}

	stdout.Reset()
	code = Main([]string{"audit", "-dir", net.Mediators[net.MediatorIDs[0]].DataDir, "-format", "json"}, &stdout, &stderr)
	var rep struct {
		SchemaVersion int  `json:"schema_version"`
		Misbehaviour  bool `json:"misbehaviour"`
		Evidence      []struct {
			Kind     string `json:"kind"`
			Verified bool   `json:"verified"`
		} `json:"evidence"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("audit -dir -format json: %v\n%s", err, stdout.String())
	}
	if code != exitMisbehaviour || !rep.Misbehaviour || rep.SchemaVersion != 1 || len(rep.Evidence) == 0 || !rep.Evidence[0].Verified {
		t.Errorf("audit -dir: status %d, report %+v; want status 3 and verified evidence", code, rep)
	}

	if code := Main([]string{"audit", "-dir", dir, "-c", "x"}, &stdout, &stderr); code != 2 {
		t.Errorf("audit with two sources: got status %d, want 2", code)
	}
}
