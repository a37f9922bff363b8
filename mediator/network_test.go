package mediator_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
	"github.com/parley-dev/parley/keys"
	"github.com/parley-dev/parley/mediator"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier/rules"
)

// testNet is a local network whose mediator runs a mediator.Server.
type testNet struct {
	*localnet.Network
	srv *mediator.Server
}

// startNet generates a network of alpha, bravo and charlie with one
// mediator and starts the mediator and the nodes of up (every party's if
// up is empty).
func startNet(t *testing.T, opts localnet.Options, up ...string) *testNet {
	t.Helper()
	ctx := t.Context()
	opts.Dir = t.TempDir()
	net, err := localnet.Generate(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	meds, err := net.StartWitnesses(ctx, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(meds.Stop)
	nodes, err := net.StartNodes(ctx, logger, up...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nodes.Stop)
	return &testNet{Network: net, srv: meds.MediatorServers[net.MediatorIDs[0]]}
}

// dial dials party's node with another identity's certificate files.
func (n *testNet) dial(t *testing.T, party, certFile, keyFile string) *client.Client {
	t.Helper()
	c, err := client.Dial(t.Context(), client.Config{Address: n.Parties[party].Address, CertFile: certFile, KeyFile: keyFile, CAFiles: n.CAFiles(), Party: party})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (n *testNet) operator(t *testing.T, party string) *client.Client {
	p := n.Parties[party]
	return n.dial(t, party, p.OperatorCert, p.OperatorKey)
}

// sign signs body as party's entry seq, chained to prev, with the party's
// signing key file (an offline signing station).
func (n *testNet) sign(t *testing.T, party string, seq uint64, prev []byte, issued time.Time, body *parleyv1.Body) []byte {
	t.Helper()
	signer, err := keys.LoadSigner(t.Context(), n.Parties[party].SigningKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &parleyv1.Statement{
		Header: &parleyv1.Header{AgreementId: n.Agreement.Agreement.ID, Sender: party, Seq: seq, Prev: prev, IssuedAt: timestamppb.New(issued)},
		Body:   body,
	}
	raw, err := envelope.Sign(t.Context(), st, signer, "")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// deliver delivers raw to to's node over the exchange stream, as a node
// of party from.
func (n *testNet) deliver(t *testing.T, from, to string, raw []byte) *parleyv1.DeliverResponse {
	t.Helper()
	p := n.Parties[from]
	c := n.dial(t, to, p.NodeCertFile, p.NodeKeyFile)
	stream, err := c.Exchange.Deliver(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&parleyv1.DeliverRequest{Envelope: raw}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	return resp
}

// waitMirrored syncs the mediator until its mirror of each party's log
// holds the given envelopes.
func (n *testNet) waitMirrored(t *testing.T, want map[string][][]byte) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := n.srv.Sync(t.Context())
		missing := ""
		for party, raws := range want {
			ml := n.srv.Mirror(party)
			held, rerr := ml.Entries(0, ml.Size())
			if rerr != nil {
				t.Fatal(rerr)
			}
			for _, raw := range raws {
				if !slices.ContainsFunc(held, func(h []byte) bool { return bytes.Equal(h, raw) }) {
					missing = fmt.Sprintf("%s's log lacks %x (sync: %v)", party, envelope.Digest(raw), err)
				}
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mirror not caught up after 60s: %s", missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func notificationBody(designation string, start time.Time, troops uint32) *parleyv1.Body {
	return &parleyv1.Body{Kind: &parleyv1.Body_Notification{Notification: &parleyv1.ActivityNotification{
		Designation: designation, Type: parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
		Purpose: "training", ParticipatingStates: []string{"alpha"}, LevelOfCommand: "corps",
		Start: timestamppb.New(start), End: timestamppb.New(start.Add(5 * 24 * time.Hour)),
		Area:   &parleyv1.Area{PlaceNames: []string{"Training area " + designation}},
		Forces: &parleyv1.Forces{Troops: troops},
	}}}
}

// reportRoundTrip encodes rep as JSON and decodes it, as a third party
// receives it.
func reportRoundTrip(t *testing.T, rep *mediator.Report) *mediator.Report {
	t.Helper()
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	got, err := mediator.ReadReport(&b)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestAuditFindsPlantedMisbehaviour plants every kind of misbehaviour in a
// running network (charlie's node is down throughout) and checks that the
// audit report finds each with evidence that verifies from the report
// alone:
//
//   - equivocation: alpha signs two entries 1; bravo gets one over the
//     exchange, alpha's own node logs the other;
//   - omitted entry: bravo receipts charlie's entry 1, which bravo's log
//     never held;
//   - forked log: alpha's checkpoint key signs a second root for a size the
//     witness cosigned, and submits it to the witness;
//   - late notification: alpha notifies an activity 20 days ahead;
//   - missing receipt: charlie never receipts anything.
func TestAuditFindsPlantedMisbehaviour(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network")
	}
	n := startNet(t, localnet.Options{}, "alpha", "bravo")
	if l, ok := n.Listener("charlie"); ok {
		l.Close() // charlie's node refuses connections
	}
	ctx := t.Context()
	now := time.Now().UTC()

	// Omitted entry: charlie's offline-signed notification, receipted by
	// bravo (signed with bravo's key, submitted to bravo's own node) but
	// never delivered to bravo.
	charlie1 := n.sign(t, "charlie", 1, nil, now, notificationBody("Southern Gate", now.AddDate(0, 0, 60), 9500))
	bravoOp := n.operator(t, "bravo")
	heads, err := bravoOp.Exchange.FeedHeads(ctx, &parleyv1.FeedHeadsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var bravoSeq uint64
	var bravoPrev []byte
	for _, h := range heads.GetHeads() {
		if h.GetSender() == "bravo" {
			bravoSeq, bravoPrev = h.GetSeq(), h.GetDigest()
		}
	}
	cd := envelope.Digest(charlie1)
	receipt := n.sign(t, "bravo", bravoSeq+1, bravoPrev, now, &parleyv1.Body{Kind: &parleyv1.Body_Receipt{Receipt: &parleyv1.Receipt{
		Acks: []*parleyv1.Acknowledgement{{Sender: "charlie", Seq: 1, Digest: cd[:], ReceivedAt: timestamppb.New(now)}},
	}}})
	if _, err := bravoOp.SubmitEnvelope(ctx, receipt); err != nil {
		t.Fatalf("bravo's receipt: %v", err)
	}

	// Equivocation: bravo gets e2 first, alpha's node logs e1.
	e1 := n.sign(t, "alpha", 1, nil, now, notificationBody("Northern Shield", now.AddDate(0, 0, 60), 9500))
	e2 := n.sign(t, "alpha", 1, nil, now, notificationBody("Northern Shield (revised)", now.AddDate(0, 0, 61), 9600))
	if resp := n.deliver(t, "alpha", "bravo", e2); resp.GetStatus() != parleyv1.DeliveryStatus_DELIVERY_STATUS_ACCEPTED {
		t.Fatalf("delivering e2 to bravo: got %v (%s), want accepted", resp.GetStatus(), resp.GetReason())
	}
	alphaOp := n.operator(t, "alpha")
	if _, err := alphaOp.SubmitEnvelope(ctx, e1); err != nil {
		t.Fatalf("alpha's e1: %v", err)
	}

	// Late notification, by ordinary submission.
	late, err := alphaOp.Notify(ctx, notificationBody("Eastern Resolve", now.AddDate(0, 0, 20), 11000).GetNotification())
	if err != nil {
		t.Fatal(err)
	}

	n.waitMirrored(t, map[string][][]byte{"alpha": {e1, late.GetEnvelope()}, "bravo": {e2, receipt}})

	// Forked log: a second root for the size the witness cosigned last.
	plantFork(t, n, "alpha")

	// Audit the data directory two hours on, past the receipt window.
	if err := n.srv.Sync(ctx); err != nil {
		t.Logf("sync: %v", err) // charlie's node is down
	}
	rep, err := mediator.AuditDir(n.Mediators[n.MediatorIDs[0]].DataDir, now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		rep.WriteText(os.Stderr)
	}
	rep = reportRoundTrip(t, rep)
	// The mediator's own audits say the same, the second verifying only
	// what the first did not.
	own, err := n.srv.Audit(now.Add(2 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	again, err := n.srv.Audit(now.Add(2 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if g, w := reportText(t, again), reportText(t, own); g != w {
		t.Errorf("the mediator's second audit differs from its first:\n%s\nwant\n%s", g, w)
	}
	if g, w := evidenceNames(own), evidenceNames(rep); !slices.Equal(g, w) {
		t.Errorf("the mediator's audit found evidence %v, the audit of its data directory %v", g, w)
	}
	a := n.Agreement.Agreement
	if !rep.Misbehaviour || rep.Result != "misbehaviour" {
		t.Errorf("got misbehaviour %v result %q, want true and misbehaviour", rep.Misbehaviour, rep.Result)
	}
	find := func(kind, party string) *mediator.Evidence {
		for _, e := range rep.Evidence {
			if e.Kind == kind && e.Party == party {
				return e
			}
		}
		t.Errorf("no %s evidence against %s; evidence: %v", kind, party, evidenceNames(rep))
		return nil
	}
	if e := find(mediator.KindEquivocation, "alpha"); e != nil {
		got := []string{e.Envelopes[0].Digest, e.Envelopes[1].Digest}
		slices.Sort(got)
		d1, d2 := envelope.Digest(e1), envelope.Digest(e2)
		want := []string{hex.EncodeToString(d1[:]), hex.EncodeToString(d2[:])}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("equivocation evidence holds %v, want %v", got, want)
		}
	}
	if e := find(mediator.KindOmission, "bravo"); e != nil {
		if e.Acknowledged == nil || e.Acknowledged.Sender != "charlie" || e.Acknowledged.Seq != 1 {
			t.Errorf("omission evidence acknowledges %+v, want charlie/1", e.Acknowledged)
		}
	}
	find(mediator.KindFork, "alpha")
	for _, e := range rep.Evidence {
		if err := mediator.VerifyEvidence(a, e); err != nil {
			t.Errorf("evidence %s does not verify from the report alone: %v", e.ID, err)
		}
		if !e.Verified {
			t.Errorf("evidence %s is not marked verified", e.ID)
		}
	}
	hasFinding := func(rule, party string, entry *parleyv1.LogEntry) {
		t.Helper()
		for _, f := range rep.Findings {
			if f.Rule != rule || f.Party != party {
				continue
			}
			if entry == nil || slices.ContainsFunc(f.Entries, func(r mediator.EntryRef) bool { return r.Sender == entry.GetSender() && r.Seq == entry.GetSeq() }) {
				return
			}
		}
		t.Errorf("no %s finding about %s (entry %v)", rule, party, entry)
	}
	hasFinding(rules.RuleLead, "alpha", late)
	hasFinding(rules.RuleReceipt, "charlie", late)
	hasFinding(mediator.RuleFanout, "alpha", nil)
	hasFinding(mediator.RuleOmission, "bravo", nil)
	hasFinding(mediator.RuleFork, "alpha", nil)
	for _, item := range rep.Timeline {
		if item.Sender == "alpha" && item.Seq == late.GetSeq() && item.Status != "late" {
			t.Errorf("timeline shows alpha/%d as %q, want late", item.Seq, item.Status)
		}
	}
	// The tampering is caught even when the evidence is altered in
	// transit.
	for _, e := range rep.Evidence {
		if e.Kind != mediator.KindEquivocation {
			continue
		}
		bad := *e
		bad.Envelopes = slices.Clone(e.Envelopes)
		bad.Envelopes[1].Envelope = bad.Envelopes[0].Envelope
		if err := mediator.VerifyEvidence(a, &bad); err == nil {
			t.Error("equivocation evidence with one envelope twice verifies")
		}
	}
}

func evidenceNames(rep *mediator.Report) []string {
	var out []string
	for _, e := range rep.Evidence {
		out = append(out, e.Kind+"/"+e.Party)
	}
	return out
}

// plantFork signs, with party's checkpoint key, a checkpoint with the size
// of the one the witness cosigned last but another root hash, and submits
// it to the witness as party's node, until the witness records the fork.
func plantFork(t *testing.T, n *testNet, party string) {
	t.Helper()
	p := n.Parties[party]
	skey, err := os.ReadFile(p.CheckpointKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	m := n.Mediators[n.MediatorIDs[0]]
	bundle, err := config.TrustBundle(n.Agreement.Agreement)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := certs.LoadKeyPair(p.NodeCertFile, p.NodeKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: certs.ClientConfig(bundle, kp.Certificate, m.ID)}}
	for range 50 {
		latest, err := n.srv.Witness().Latest(p.LogOrigin)
		if err != nil {
			t.Fatal(err)
		}
		cp, _, _, err := flog.ParseCheckpoint(latest, p.LogOrigin, verifierOf(t, n, party))
		if err != nil {
			t.Fatal(err)
		}
		root := make([]byte, 32)
		rand.Read(root)
		forged, err := note.Sign(&note.Note{Text: string(flog.Checkpoint{Origin: p.LogOrigin, Size: cp.Size, Hash: root}.Marshal())}, signer)
		if err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("old %d\n\n%s", cp.Size, forged)
		resp, err := hc.Post("https://"+m.Address+mediator.AddCheckpointPath, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		evs, err := n.srv.Witness().Evidence()
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the witness recorded no fork evidence")
}

func verifierOf(t *testing.T, n *testNet, party string) note.Verifier {
	t.Helper()
	p, _ := n.Agreement.Agreement.Party(party)
	v, err := note.NewVerifier(p.CheckpointKey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAuditCleanNetwork runs an honest network: the report is clean, and
// the mediator's certificate can read every node but never write.
func TestAuditCleanNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network")
	}
	n := startNet(t, localnet.Options{EffectiveFrom: time.Now().UTC().Add(-time.Hour).Truncate(time.Second)})
	ctx := t.Context()
	now := time.Now().UTC()
	want := map[string][][]byte{}
	for i, party := range n.PartyIDs {
		e, err := n.operator(t, party).Notify(ctx, notificationBody(fmt.Sprintf("Exercise %d", i), now.AddDate(0, 0, 60+i), 9000+uint32(i)*100).GetNotification())
		if err != nil {
			t.Fatal(err)
		}
		want[party] = [][]byte{e.GetEnvelope()}
	}
	n.waitMirrored(t, want)

	m := n.Mediators[n.MediatorIDs[0]]
	for _, party := range n.PartyIDs {
		c := n.dial(t, party, m.CertFile, m.KeyFile)
		if _, err := c.Entries(ctx, 0, 1); err != nil {
			t.Errorf("mediator reading %s's node: %v", party, err)
		}
		_, err := c.Notify(ctx, notificationBody("Impostor", now.AddDate(0, 0, 60), 100).GetNotification())
		if got := status.Code(errorsUnwrapAll(err)); got != codes.PermissionDenied {
			t.Errorf("mediator submitting to %s's node: got %v (%v), want PermissionDenied", party, got, err)
		}
		_, err = c.SubmitEnvelope(ctx, want[party][0])
		if got := status.Code(errorsUnwrapAll(err)); got != codes.PermissionDenied {
			t.Errorf("mediator submitting an envelope to %s's node: got %v (%v), want PermissionDenied", party, got, err)
		}
	}

	rep, err := n.srv.Audit(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rep = reportRoundTrip(t, rep)
	if testing.Verbose() {
		rep.WriteText(os.Stderr)
	}
	if rep.Misbehaviour || len(rep.Evidence) > 0 {
		t.Errorf("clean network: got misbehaviour %v with %d pieces of evidence, want none: %v", rep.Misbehaviour, len(rep.Evidence), evidenceNames(rep))
	}
	for _, f := range rep.Findings {
		if f.Severity == "violation" || f.Severity == "misbehaviour" {
			t.Errorf("clean network: finding %s %s %s: %s", f.Rule, f.Severity, f.Party, f.Summary)
		}
	}
	if rep.Result != "clean" {
		t.Errorf("got result %q, want clean", rep.Result)
	}
	if len(rep.Timeline) < len(n.PartyIDs) {
		t.Errorf("timeline has %d activities, want %d", len(rep.Timeline), len(n.PartyIDs))
	}
	checkSummaries(t, rep)
	for _, l := range rep.Logs {
		if !l.Witnessed || l.Size == 0 {
			t.Errorf("log of %s: size %d witnessed %v, want a witnessed non-empty mirror", l.Party, l.Size, l.Witnessed)
		}
	}
}

// errorsUnwrapAll returns the innermost error, where the gRPC status is.
func errorsUnwrapAll(err error) error {
	for {
		if _, ok := status.FromError(err); ok {
			return err
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// TestMediatorsCompareCosigned runs two mediators: each fetches what the
// other cosigned over mutual TLS and finds it consistent with its mirror.
func TestMediatorsCompareCosigned(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network")
	}
	n := startNet(t, localnet.Options{Mediators: []string{"osce", "un"}, EffectiveFrom: time.Now().UTC().Add(-time.Hour)})
	e, err := n.operator(t, "alpha").Notify(t.Context(), notificationBody("Exercise", time.Now().AddDate(0, 0, 60), 9500).GetNotification())
	if err != nil {
		t.Fatal(err)
	}
	n.waitMirrored(t, map[string][][]byte{"alpha": {e.GetEnvelope()}})
	var col mediator.Collected
	b, err := os.ReadFile(filepath.Join(n.Mediators[n.MediatorIDs[0]].DataDir, "collected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &col); err != nil {
		t.Fatal(err)
	}
	peers := map[string]bool{}
	for _, p := range col.Peers {
		if p.Mediator != "un" {
			t.Errorf("peer checkpoint from %q, want un", p.Mediator)
		}
		peers[p.Origin] = true
	}
	if len(peers) != len(n.PartyIDs) {
		t.Errorf("got the other mediator's checkpoints of %v, want every log; problems: %v", peers, col.Problems)
	}
	rep, err := n.srv.Audit(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Misbehaviour || len(rep.Problems) > 0 {
		t.Errorf("two honest mediators: misbehaviour %v, problems %v", rep.Misbehaviour, rep.Problems)
	}
}
