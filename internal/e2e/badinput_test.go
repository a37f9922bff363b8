package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
	"github.com/parley-dev/parley/internal/localnet/localnettest"
	"github.com/parley-dev/parley/keys"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/server"
)

// idleTimeout is the stream idle timeout of the catalogue's node, short so
// that the silent-stream cases finish quickly.
const idleTimeout = time.Second

// connectionTimeout is the handshake deadline the node's gRPC server sets
// (grpc.ConnectionTimeout in server/grpc.go).
const connectionTimeout = 10 * time.Second

// fixture is alpha's node of a two-party network (alpha, bravo) without
// mediators, running in this process over real gRPC and mutual TLS on
// loopback, with everything needed to attack it: both parties' CAs and
// signing keys, and alpha's first entry.
type fixture struct {
	net    *localnet.Network
	addr   string
	bundle *certs.TrustBundle
	ca     map[string]*certs.CA
	signer map[string]signature.Signer
	keyID  map[string]string
	// nodeCert are the parties' node certificates, as their nodes present.
	nodeCert map[string]*tls.Certificate
	// revoked is an alpha operator certificate listed in the CRL of
	// alpha's CA that the node holds.
	revoked *tls.Certificate
	// alpha is alpha's operator: it submits and observes.
	alpha *client.Client
	// first is alpha's entry at seq 1; the feed stays there.
	first *parleyv1.LogEntry
}

// newFixture starts alpha's node with a short stream idle timeout and a CRL,
// and logs alpha's first entry.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	n, err := localnet.Generate(ctx, localnet.Options{Dir: dir, Parties: []string{"alpha", "bravo"}, NoMediators: true})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	for _, id := range []string{"bravo", "tiles/alpha", "tiles/bravo"} {
		if l, ok := n.Listener(id); ok {
			l.Close()
		}
	}
	fx := &fixture{
		net: n, addr: n.Parties["alpha"].Address,
		ca: map[string]*certs.CA{}, signer: map[string]signature.Signer{}, keyID: map[string]string{},
		nodeCert: map[string]*tls.Certificate{},
	}
	if fx.bundle, err = config.TrustBundle(n.Agreement.Agreement); err != nil {
		t.Fatal(err)
	}
	for _, id := range n.PartyIDs {
		p := n.Parties[id]
		fx.ca[id] = loadCA(t, p.CAFile)
		if fx.signer[id], err = keys.LoadSigner(ctx, p.SigningKey, nil); err != nil {
			t.Fatal(err)
		}
		pub, err := fx.signer[id].PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if fx.keyID[id], err = keys.KeyID(pub); err != nil {
			t.Fatal(err)
		}
		cert, err := tls.LoadX509KeyPair(p.NodeCertFile, p.NodeKeyFile)
		if err != nil {
			t.Fatal(err)
		}
		fx.nodeCert[id] = &cert
	}

	crl := fx.revoke(t, dir)
	startNode(t, n, "alpha", func(c *config.Node) {
		c.CRLs = map[string]string{"alpha": crl}
		// The catalogue makes hundreds of calls as alpha in a few
		// seconds; TestMediatorWrites floods a node with a low limit.
		c.Limits.RatePerParty, c.Limits.BurstPerParty = 1e6, 1e6
	}, func(c *server.Config) { c.StreamIdleTimeout = idleTimeout })

	if fx.alpha, err = n.Operator(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.alpha.Close() })
	if fx.first, err = fx.alpha.Notify(ctx, notification(9000)); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	fx.awaitLogSize(t, 1)
	return fx
}

// startNode runs party's node of n in this process, on its reserved
// address, with its node.yaml changed by edit and the resulting server
// configuration by tweak, until the test ends.
func startNode(t *testing.T, n *localnet.Network, party string, edit func(*config.Node), tweak func(*server.Config)) {
	t.Helper()
	ctx := context.Background()
	c, err := config.Load(n.Parties[party].ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(c)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
	scfg, err := c.Build(ctx, logger)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if tweak != nil {
		tweak(&scfg)
	}
	node, err := server.New(ctx, scfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	l, ok := n.Listener(party)
	if !ok {
		t.Fatalf("no reserved listener for %s", party)
	}
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- node.Serve(sctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := node.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// revoke issues fx.revoked, an alpha operator certificate, and writes a CRL
// of alpha's CA that revokes it to a file in dir, which it returns.
func (fx *fixture) revoke(t *testing.T, dir string) string {
	t.Helper()
	leaf, err := fx.ca["alpha"].Issue(certs.IssueRequest{Role: certs.RoleOperator, Name: "revoked", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fx.revoked = tlsCert(t, leaf)
	now := time.Now()
	crl, err := fx.ca["alpha"].RevocationList([]x509.RevocationListEntry{{SerialNumber: leaf.Cert.SerialNumber, RevocationTime: now}},
		big.NewInt(1), now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "alpha.crl")
	if err := os.WriteFile(file, crl, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// awaitLogSize waits until alpha's log has integrated size entries.
func (fx *fixture) awaitLogSize(t *testing.T, size int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := fx.snapshot(t)
		if s.entries == size && s.checkpoint == uint64(size) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("got log of %d entries, checkpoint size %d; want %d", s.entries, s.checkpoint, size)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// snapshot is what a refused request must leave unchanged.
type snapshot struct {
	heads      string // FeedHeads
	entries    int    // integrated log entries (GetEntries)
	checkpoint uint64 // size of the published checkpoint (GetCheckpoint)
	evidence   int    // equivocation evidence held (ListEvidence)
}

func (fx *fixture) snapshot(t *testing.T) snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	heads, err := fx.alpha.Exchange.FeedHeads(ctx, &parleyv1.FeedHeadsRequest{})
	if err != nil {
		t.Fatalf("FeedHeads: %v", err)
	}
	entries, err := fx.alpha.Entries(ctx, 0, 1000)
	if err != nil {
		t.Fatalf("GetEntries: %v", err)
	}
	cp, _, err := fx.alpha.Checkpoint(ctx, fx.net.LogKeys("alpha"))
	if err != nil {
		t.Fatalf("GetCheckpoint: %v", err)
	}
	ev, err := fx.alpha.Evidence(ctx)
	if err != nil {
		t.Fatalf("ListEvidence: %v", err)
	}
	return snapshot{heads: protojson.Format(heads), entries: len(entries), checkpoint: cp.Size, evidence: len(ev)}
}

// outcome is what the node answered.
type outcome struct {
	err       error
	duplicate bool
	// delivery is the answer on a Deliver stream, for delivery cases.
	delivery *parleyv1.DeliverResponse
	// alert is why the node refused the TLS handshake, for transport
	// cases: gRPC reports those as Unavailable with whatever the client
	// saw first (the alert, or a broken pipe), so the reason is read from
	// a connection of its own.
	alert string
}

// badCase is one entry of the catalogue.
type badCase struct {
	name string
	call func(t *testing.T, fx *fixture) outcome
	// code and msg are the expected status code and a substring of its
	// message. For a delivery case they are the stream's status (OK), and
	// msg is a substring of the delivery's reason.
	code codes.Code
	msg  string
	// delivery is the expected verdict of a delivery case.
	delivery parleyv1.DeliveryStatus
	// duplicate is the expected duplicate flag of an accepted submission.
	duplicate bool
	// evidence is how many evidence records the case adds.
	evidence int
}

func (tt badCase) check(t *testing.T, got outcome) {
	t.Helper()
	if code := status.Code(got.err); code != tt.code {
		t.Fatalf("got code %v (%v), want %v", code, got.err, tt.code)
	}
	text := status.Convert(got.err).Message()
	if tt.delivery != parleyv1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED {
		if got.delivery.GetStatus() != tt.delivery {
			t.Fatalf("got delivery status %v (%q), want %v", got.delivery.GetStatus(), got.delivery.GetReason(), tt.delivery)
		}
		text = got.delivery.GetReason()
	}
	if got.alert != "" {
		text = got.alert
	}
	if !strings.Contains(text, tt.msg) {
		t.Fatalf("got message %q, want it to contain %q", text, tt.msg)
	}
	if got.err == nil && got.duplicate != tt.duplicate {
		t.Fatalf("got duplicate=%v, want %v", got.duplicate, tt.duplicate)
	}
}

// TestBadInput is the bad-input catalogue (issue 10): every case is a
// hostile or broken request to a real node over real gRPC and mTLS, with
// the status the node must answer and proof that it changed nothing (feed
// heads, log size, checkpoint) beyond the evidence the case is meant to
// leave.
func TestBadInput(t *testing.T) {
	fx := newFixture(t)
	cases := append(append(append(append(envelopeCases(), contentCases()...), readCases()...), identityCases()...), transportCases()...)
	before := fx.snapshot(t)
	wantEvidence := before.evidence
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, tt.call(t, fx))
			wantEvidence += tt.evidence
			after := fx.snapshot(t)
			want := before
			want.evidence = wantEvidence
			if after != want {
				t.Fatalf("node state changed: got %+v, want %+v", after, want)
			}
		})
	}
	t.Run("streams", func(t *testing.T) { testStreams(t, fx) })
	// Nothing landed meanwhile, and the refusals were for the stated
	// reasons: a well-formed envelope built by the same helpers, dated a
	// minute ahead (within the agreed clock skew), is accepted.
	t.Run("control", func(t *testing.T) {
		time.Sleep(3 * fx.checkpointInterval(t)) // let any stray entry reach the checkpoint
		if got := fx.snapshot(t); got.entries != 1 || got.checkpoint != 1 {
			t.Fatalf("got %+v after the catalogue, want the log to hold only alpha's first entry", got)
		}
		raw := fx.envelope(t, "alpha", "alpha", func(st *parleyv1.Statement) { st.Header.IssuedAt = timestamppb.New(time.Now().Add(time.Minute)) })
		resp, err := fx.alpha.SubmitEnvelope(context.Background(), raw)
		if err != nil || resp.GetEntry().GetSeq() != 2 {
			t.Fatalf("got %v, %v; want alpha's seq 2 accepted", resp, err)
		}
	})
}

func (fx *fixture) checkpointInterval(t *testing.T) time.Duration {
	t.Helper()
	c, err := config.Load(fx.net.Parties["alpha"].ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	d, err := time.ParseDuration(c.CheckpointInterval)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// envelopeCases are broken or hostile envelopes submitted by alpha's own
// operator, and raw bytes that are not even a request.
func envelopeCases() []badCase {
	invalid, failed := codes.InvalidArgument, codes.FailedPrecondition
	submit := func(raw func(t *testing.T, fx *fixture) []byte) func(t *testing.T, fx *fixture) outcome {
		return func(t *testing.T, fx *fixture) outcome { return fx.submitEnvelope(t, raw(t, fx)) }
	}
	alphaWith := func(mutate func(fx *fixture, st *parleyv1.Statement)) func(t *testing.T, fx *fixture) []byte {
		return func(t *testing.T, fx *fixture) []byte {
			return fx.envelope(t, "alpha", "alpha", func(st *parleyv1.Statement) { mutate(fx, st) })
		}
	}
	return []badCase{
		{name: "malformed protobuf request", code: codes.Internal, msg: "failed to unmarshal the received message",
			call: func(t *testing.T, fx *fixture) outcome {
				// Field 1 (envelope, bytes) announcing 127 bytes and carrying 2.
				return fx.invokeRaw(t, parleyv1.SubmissionService_SubmitEnvelope_FullMethodName, []byte{0x0a, 0x7f, 0x01, 0x02})
			}},
		{name: "garbage envelope bytes", code: invalid, msg: "malformed envelope",
			call: submit(func(*testing.T, *fixture) []byte { return []byte("\xff\xfenot an envelope") })},
		{name: "truncated envelope", code: invalid, msg: "malformed envelope",
			call: submit(func(t *testing.T, fx *fixture) []byte {
				raw := fx.envelope(t, "alpha", "alpha", nil)
				return raw[:len(raw)-7]
			})},
		{name: "non-canonical envelope with an unknown field", code: invalid, msg: "non-canonical encoding",
			call: submit(func(t *testing.T, fx *fixture) []byte {
				return protowire.AppendBytes(protowire.AppendTag(fx.envelope(t, "alpha", "alpha", nil), 99, protowire.BytesType), []byte("x"))
			})},
		{name: "empty envelope", code: invalid, msg: "envelope: must be at least 1 bytes",
			call: submit(func(*testing.T, *fixture) []byte { return nil })},
		{name: "oversize envelope of 65,536 bytes", code: codes.ResourceExhausted, msg: "envelope too large",
			call: submit(func(*testing.T, *fixture) []byte { return bytes.Repeat([]byte{0x0a}, envelope.MaxSize+1) })},
		{name: "oversize envelope of 65,537 bytes", code: invalid, msg: "envelope: must be at most 65536 bytes",
			call: submit(func(*testing.T, *fixture) []byte { return bytes.Repeat([]byte{0x0a}, envelope.MaxSize+2) })},
		{name: "request above the 1 MiB message limit", code: codes.ResourceExhausted, msg: "larger than max",
			call: submit(func(*testing.T, *fixture) []byte { return make([]byte, 1<<20+1) })},
		{name: "unknown payload type", code: invalid, msg: "unsupported payload type",
			call: submit(func(t *testing.T, fx *fixture) []byte {
				return fx.rawEnvelope(t, "application/json", fx.payload(t, nil), 1)
			})},
		{name: "five signatures", code: invalid, msg: "got 5 signatures",
			call: submit(func(t *testing.T, fx *fixture) []byte {
				return fx.rawEnvelope(t, envelope.PayloadType, fx.payload(t, nil), 5)
			})},
		{name: "bad signature", code: invalid, msg: "signature of alpha does not verify",
			call: submit(func(t *testing.T, fx *fixture) []byte {
				raw := fx.envelope(t, "alpha", "alpha", nil)
				raw[len(raw)-70] ^= 0x01 // inside the 64-byte signature, before the key id
				return raw
			})},
		{name: "signed by bravo's key for an alpha statement", code: invalid, msg: "no signature by a key of alpha",
			call: submit(func(t *testing.T, fx *fixture) []byte { return fx.envelope(t, "bravo", "bravo", nil) })},
		{name: "signed by bravo's key under alpha's key id", code: invalid, msg: "signature of alpha does not verify",
			call: submit(func(t *testing.T, fx *fixture) []byte { return fx.envelope(t, "bravo", "alpha", nil) })},
		{name: "issued before the key's validity window", code: invalid, msg: "signing key not valid at issued_at",
			call: submit(alphaWith(func(fx *fixture, st *parleyv1.Statement) {
				st.Header.IssuedAt = timestamppb.New(fx.net.Agreement.Agreement.EffectiveFrom.Add(-time.Hour))
			}))},
		{name: "issued in 1970", code: invalid, msg: "signing key not valid at issued_at",
			call: submit(alphaWith(func(_ *fixture, st *parleyv1.Statement) { st.Header.IssuedAt = timestamppb.New(time.Unix(0, 0)) }))},
		{name: "issued an hour in the future", code: invalid, msg: "is in the future",
			call: submit(alphaWith(func(_ *fixture, st *parleyv1.Statement) {
				st.Header.IssuedAt = timestamppb.New(time.Now().Add(time.Hour))
			}))},
		{name: "issued on 9999-12-31", code: invalid, msg: "is in the future",
			call: submit(alphaWith(func(_ *fixture, st *parleyv1.Statement) {
				st.Header.IssuedAt = timestamppb.New(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC))
			}))},
		{name: "issued_at beyond the timestamp range", code: invalid, msg: "bad issued_at",
			call: submit(alphaWith(func(_ *fixture, st *parleyv1.Statement) {
				st.Header.IssuedAt = &timestamppb.Timestamp{Seconds: 1 << 40}
			}))},
		{name: "wrong agreement id", code: invalid, msg: "wrong agreement",
			call: submit(alphaWith(func(_ *fixture, st *parleyv1.Statement) { st.Header.AgreementId = "another-treaty" }))},
		{name: "unknown sender", code: codes.PermissionDenied, msg: `got an envelope from sender "zulu"`,
			call: submit(alphaWith(func(_ *fixture, st *parleyv1.Statement) { st.Header.Sender = "zulu" }))},
		{name: "seq 0", code: invalid, msg: "seq is 0",
			call: submit(alphaWith(func(_ *fixture, st *parleyv1.Statement) { st.Header.Seq = 0 }))},
		{name: "prev of 31 bytes", code: invalid, msg: "prev has 31 bytes",
			call: submit(alphaWith(func(_ *fixture, st *parleyv1.Statement) { st.Header.Prev = make([]byte, 31) }))},
		{name: "replay of a logged entry", code: codes.OK, duplicate: true,
			call: func(t *testing.T, fx *fixture) outcome { return fx.submitEnvelope(t, fx.first.GetEnvelope()) }},
		{name: "gap", code: failed, msg: "gap in feed: alpha entry has seq 5, want 2",
			call: submit(alphaWith(func(_ *fixture, st *parleyv1.Statement) { st.Header.Seq = 5 }))},
		{name: "wrong prev", code: failed, msg: "wrong prev",
			call: submit(alphaWith(func(_ *fixture, st *parleyv1.Statement) { st.Header.Prev = make([]byte, 32) }))},
		{name: "seq 2 with no prev", code: failed, msg: "has prev empty",
			call: submit(alphaWith(func(_ *fixture, st *parleyv1.Statement) { st.Header.Prev = nil }))},
		{name: "equivocation at seq 1", code: codes.AlreadyExists, msg: "equivocation: alpha signed two different statements at seq 1", evidence: 1,
			call: submit(alphaWith(equivocate))},
		{name: "the same equivocation again", code: codes.AlreadyExists, msg: "equivocation", evidence: 0,
			call: submit(alphaWith(equivocate))},
	}
}

// equivocate makes the statement a second, different seq 1 of alpha. Its
// date is fixed, so that the envelope is the same each time.
func equivocate(fx *fixture, st *parleyv1.Statement) {
	st.Header.Seq, st.Header.Prev = 1, nil
	st.Header.IssuedAt = timestamppb.New(fx.net.Agreement.Agreement.EffectiveFrom.Add(24 * time.Hour))
	st.Body.GetNotification().Forces.Troops = 12345
}

// contentCases are statements that are well signed and well placed but say
// something the schema forbids.
func contentCases() []badCase {
	invalid := codes.InvalidArgument
	submitBody := func(body func() *parleyv1.Body) func(t *testing.T, fx *fixture) outcome {
		return func(t *testing.T, fx *fixture) outcome { return fx.submit(t, fx.alpha, body()) }
	}
	withNotification := func(mutate func(*parleyv1.ActivityNotification)) func() *parleyv1.Body {
		return func() *parleyv1.Body {
			n := notification(9000)
			mutate(n)
			return &parleyv1.Body{Kind: &parleyv1.Body_Notification{Notification: n}}
		}
	}
	signed := func(mutate func(*parleyv1.ActivityNotification)) func(t *testing.T, fx *fixture) outcome {
		return func(t *testing.T, fx *fixture) outcome {
			return fx.submitEnvelope(t, fx.envelope(t, "alpha", "alpha", func(st *parleyv1.Statement) { mutate(st.Body.GetNotification()) }))
		}
	}
	absurd := func(n *parleyv1.ActivityNotification) { n.Forces.Troops = 5_000_001 }
	endBeforeStart := func(n *parleyv1.ActivityNotification) { n.End = timestamppb.New(n.Start.AsTime().Add(-time.Hour)) }
	return []badCase{
		{name: "absurd troops (Submit)", code: invalid, msg: "forces.troops", call: submitBody(withNotification(absurd))},
		{name: "absurd troops (pre-signed)", code: invalid, msg: "invalid statement: body.notification", call: signed(absurd)},
		{name: "absurd battle tanks (Submit)", code: invalid, msg: "forces.battle_tanks",
			call: submitBody(withNotification(func(n *parleyv1.ActivityNotification) { n.Forces.BattleTanks = 4_000_000_000 }))},
		{name: "negative troops as a 10-byte varint", code: invalid, msg: "forces.troops",
			call: func(t *testing.T, fx *fixture) outcome {
				// uint32 cannot say -1; a sender that encodes int64 -1 into
				// the field is read as 4,294,967,295 and refused as absurd.
				req := negativeTroopsRequest(t)
				return fx.invokeRaw(t, parleyv1.SubmissionService_Submit_FullMethodName, req)
			}},
		{name: "end before start (Submit)", code: invalid, msg: "end must be after start", call: submitBody(withNotification(endBeforeStart))},
		{name: "end before start (pre-signed)", code: invalid, msg: "end must be after start", call: signed(endBeforeStart)},
		{name: "no area", code: invalid, msg: "an area needs place names",
			call: submitBody(withNotification(func(n *parleyv1.ActivityNotification) { n.Area = &parleyv1.Area{} }))},
		{name: "body without a kind", code: invalid, msg: "kind",
			call: submitBody(func() *parleyv1.Body { return &parleyv1.Body{} })},
		{name: "receipt submitted by an operator", code: invalid, msg: "receipts are made by the node itself",
			call: submitBody(func() *parleyv1.Body {
				ack := &parleyv1.Acknowledgement{Sender: "bravo", Seq: 1, Digest: make([]byte, 32), ReceivedAt: timestamppb.Now()}
				return &parleyv1.Body{Kind: &parleyv1.Body_Receipt{Receipt: &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{ack}}}}
			})},
	}
}

// negativeTroopsRequest is a SubmitRequest for a valid notification whose
// troops field holds the varint of int64(-1).
func negativeTroopsRequest(t *testing.T) []byte {
	t.Helper()
	n := notification(1)
	n.Forces = nil
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	minusOne := uint64(1<<64 - 1)
	forces := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), minusOne)
	body = protowire.AppendBytes(protowire.AppendTag(body, 10, protowire.BytesType), forces)
	b := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), body) // Body.notification
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), b)  // SubmitRequest.body
}

// readCases are read requests with arguments out of range.
func readCases() []badCase {
	invalid := codes.InvalidArgument
	read := func(f func(ctx context.Context, c *client.Client) error) func(t *testing.T, fx *fixture) outcome {
		return func(t *testing.T, fx *fixture) outcome {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return outcome{err: f(ctx, fx.alpha)}
		}
	}
	return []badCase{
		{name: "GetEntries of 0 entries", code: invalid, msg: "count",
			call: read(func(ctx context.Context, c *client.Client) error {
				_, err := c.Log.GetEntries(ctx, &parleyv1.GetEntriesRequest{Count: 0})
				return err
			})},
		{name: "GetEntries beyond the log", code: codes.OutOfRange, msg: "beyond the log size",
			call: read(func(ctx context.Context, c *client.Client) error {
				_, err := c.Log.GetEntries(ctx, &parleyv1.GetEntriesRequest{Start: 1 << 62, Count: 10})
				return err
			})},
		{name: "GetEntry of a malformed sender", code: invalid, msg: "sender",
			call: read(func(ctx context.Context, c *client.Client) error {
				_, err := c.Log.GetEntry(ctx, &parleyv1.GetEntryRequest{Sender: "../../etc/passwd", Seq: 1})
				return err
			})},
		{name: "inclusion proof beyond the published tree", code: codes.OutOfRange, msg: "beyond the published size",
			call: read(func(ctx context.Context, c *client.Client) error {
				_, err := c.Log.GetInclusionProof(ctx, &parleyv1.GetInclusionProofRequest{Index: 0, TreeSize: 1 << 40})
				return err
			})},
		{name: "inclusion proof of an index outside the tree", code: invalid, msg: "must be below tree size",
			call: read(func(ctx context.Context, c *client.Client) error {
				_, err := c.Log.GetInclusionProof(ctx, &parleyv1.GetInclusionProofRequest{Index: 5, TreeSize: 1})
				return err
			})},
		{name: "consistency proof backwards", code: invalid, msg: "must not exceed to_size",
			call: read(func(ctx context.Context, c *client.Client) error {
				_, err := c.Log.GetConsistencyProof(ctx, &parleyv1.GetConsistencyProofRequest{FromSize: 2, ToSize: 1})
				return err
			})},
		{name: "PullFeed from seq 0", code: invalid, msg: "from_seq",
			call: read(func(ctx context.Context, c *client.Client) error {
				s, err := c.Exchange.PullFeed(ctx, &parleyv1.PullFeedRequest{Sender: "alpha", FromSeq: 0})
				if err != nil {
					return err
				}
				_, err = s.Recv()
				return err
			})},
	}
}

// identityCases are authenticated peers asking for what their identity does
// not allow, and envelopes delivered by a peer node that must be refused.
func identityCases() []badCase {
	denied := codes.PermissionDenied
	rejected := parleyv1.DeliveryStatus_DELIVERY_STATUS_REJECTED
	return []badCase{
		{name: "bravo's operator submits to alpha's node", code: denied, msg: "may not submit to alpha's node",
			call: func(t *testing.T, fx *fixture) outcome {
				return fx.submit(t, fx.dial(t, fx.leaf(t, "bravo", certs.RoleOperator, "ops2"), nil), notificationBody())
			}},
		{name: "alpha's operator submits bravo's signed envelope", code: denied, msg: `may submit only party "alpha"'s own entries, got an envelope from sender "bravo"`,
			call: func(t *testing.T, fx *fixture) outcome {
				return fx.submitEnvelope(t, fx.envelope(t, "bravo", "bravo", func(st *parleyv1.Statement) {
					st.Header.Sender, st.Header.Seq, st.Header.Prev = "bravo", 1, nil
				}))
			}},
		{name: "alpha's node certificate used to submit", code: denied, msg: "only operators of party",
			call: func(t *testing.T, fx *fixture) outcome {
				return fx.submit(t, fx.dial(t, fx.nodeCert["alpha"], nil), notificationBody())
			}},
		{name: "bravo's operator reads alpha's node", code: denied, msg: "operators read their own party's node",
			call: func(t *testing.T, fx *fixture) outcome {
				c := fx.dial(t, fx.leaf(t, "bravo", certs.RoleOperator, "ops3"), nil)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, err := c.Log.GetCheckpoint(ctx, &parleyv1.GetCheckpointRequest{})
				return outcome{err: err}
			}},
		{name: "alpha's operator delivers", code: denied, msg: "may not deliver entries",
			call: func(t *testing.T, fx *fixture) outcome {
				return fx.deliver(t, fx.dial(t, nil, nil), fx.envelope(t, "alpha", "alpha", nil))
			}},
		{name: "bravo's node delivers an alpha statement it signed", code: codes.OK, delivery: rejected, msg: "no signature by a key of alpha",
			call: func(t *testing.T, fx *fixture) outcome {
				return fx.deliver(t, fx.dial(t, fx.nodeCert["bravo"], nil), fx.envelope(t, "bravo", "bravo", nil))
			}},
		{name: "bravo's node delivers an entry of an unknown sender", code: codes.OK, delivery: rejected, msg: "unknown sender",
			call: func(t *testing.T, fx *fixture) outcome {
				return fx.deliver(t, fx.dial(t, fx.nodeCert["bravo"], nil), fx.envelope(t, "bravo", "bravo", func(st *parleyv1.Statement) {
					st.Header.Sender, st.Header.Seq, st.Header.Prev = "zulu", 1, nil
				}))
			}},
		{name: "bravo's node delivers garbage", code: codes.OK, delivery: rejected, msg: "malformed envelope",
			call: func(t *testing.T, fx *fixture) outcome {
				return fx.deliver(t, fx.dial(t, fx.nodeCert["bravo"], nil), []byte("\xff\xfenot an envelope"))
			}},
		{name: "bravo's node delivers a bravo entry dated next year", code: codes.OK, delivery: rejected, msg: "is in the future",
			call: func(t *testing.T, fx *fixture) outcome {
				return fx.deliver(t, fx.dial(t, fx.nodeCert["bravo"], nil), fx.envelope(t, "bravo", "bravo", func(st *parleyv1.Statement) {
					st.Header.Sender, st.Header.Seq, st.Header.Prev = "bravo", 1, nil
					st.Header.IssuedAt = timestamppb.New(time.Now().AddDate(1, 0, 0))
				}))
			}},
	}
}

// transportCases are clients that must not get past the TLS handshake.
func transportCases() []badCase {
	unavailable := codes.Unavailable
	notify := func(cert func(t *testing.T, fx *fixture) *tls.Certificate, tweak func(*tls.Config)) func(t *testing.T, fx *fixture) outcome {
		return func(t *testing.T, fx *fixture) outcome {
			c := cert(t, fx)
			o := fx.submit(t, fx.dial(t, c, tweak), notificationBody())
			o.alert = fx.handshake(t, c, tweak)
			return o
		}
	}
	issued := func(req certs.IssueRequest) func(t *testing.T, fx *fixture) *tls.Certificate {
		return func(t *testing.T, fx *fixture) *tls.Certificate {
			leaf, err := fx.ca["alpha"].Issue(req)
			if err != nil {
				t.Fatal(err)
			}
			return tlsCert(t, leaf)
		}
	}
	return []badCase{
		{name: "no client certificate", code: unavailable, msg: "certificate required",
			call: notify(func(*testing.T, *fixture) *tls.Certificate { return &tls.Certificate{} }, nil)},
		{name: "certificate from an unknown CA", code: unavailable, msg: "bad certificate",
			call: notify(func(t *testing.T, _ *fixture) *tls.Certificate {
				rogue, err := certs.NewCA("alpha", time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				leaf, err := rogue.Issue(certs.IssueRequest{Role: certs.RoleOperator, Name: "ops", Validity: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				return tlsCert(t, leaf)
			}, nil)},
		{name: "alpha's CA issuing for bravo's trust domain", code: unavailable, msg: "bad certificate",
			call: notify(func(t *testing.T, fx *fixture) *tls.Certificate {
				return fx.forge(t, "alpha", func(c *x509.Certificate) { c.URIs = []*url.URL{mustURL(t, "spiffe://bravo/operator/ops")} })
			}, nil)},
		{name: "two URI SANs", code: unavailable, msg: "bad certificate",
			call: notify(func(t *testing.T, fx *fixture) *tls.Certificate {
				return fx.forge(t, "alpha", func(c *x509.Certificate) {
					c.URIs = []*url.URL{mustURL(t, "spiffe://alpha/operator/ops"), mustURL(t, "spiffe://alpha/node/node")}
				})
			}, nil)},
		{name: "no URI SAN", code: unavailable, msg: "bad certificate",
			call: notify(func(t *testing.T, fx *fixture) *tls.Certificate {
				return fx.forge(t, "alpha", func(c *x509.Certificate) { c.URIs = nil; c.DNSNames = []string{"ops.alpha"} })
			}, nil)},
		{name: "expired certificate", code: unavailable, msg: "bad certificate",
			call: notify(issued(certs.IssueRequest{Role: certs.RoleOperator, Name: "old", NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour}), nil)},
		{name: "certificate not valid yet", code: unavailable, msg: "bad certificate",
			call: notify(issued(certs.IssueRequest{Role: certs.RoleOperator, Name: "early", NotBefore: time.Now().Add(24 * time.Hour), Validity: 24 * time.Hour}), nil)},
		{name: "certificate without client auth usage", code: unavailable, msg: "bad certificate",
			call: notify(func(t *testing.T, fx *fixture) *tls.Certificate {
				return fx.forge(t, "alpha", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })
			}, nil)},
		{name: "revoked certificate", code: unavailable, msg: "bad certificate",
			call: notify(func(_ *testing.T, fx *fixture) *tls.Certificate { return fx.revoked }, nil)},
		{name: "TLS 1.2 client", code: unavailable, msg: "protocol version",
			call: notify(func(*testing.T, *fixture) *tls.Certificate { return nil }, func(c *tls.Config) {
				c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
			})},
		{name: "plaintext client", code: unavailable, msg: "",
			call: func(t *testing.T, fx *fixture) outcome {
				c, err := client.DialTLS(context.Background(), fx.addr, insecure.NewCredentials(), 10*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				return fx.submit(t, c, notificationBody())
			}},
	}
}

// testStreams checks that a peer cannot hold the node's connections or
// streams open by saying nothing, and that the node keeps serving others
// meanwhile.
func testStreams(t *testing.T, fx *fixture) {
	before := fx.snapshot(t)
	tests := []struct {
		name string
		run  func(t *testing.T)
		slow bool
	}{
		{name: "Deliver stream that never sends", run: func(t *testing.T) {
			c := fx.dial(t, fx.nodeCert["bravo"], nil)
			stream, err := c.Exchange.Deliver(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			fx.snapshot(t) // other calls are served while the stream waits
			start := time.Now()
			_, err = stream.Recv()
			elapsed := time.Since(start)
			if got := status.Code(err); got != codes.DeadlineExceeded || !strings.Contains(err.Error(), "no message on the stream") {
				t.Fatalf("got %v (%v), want DeadlineExceeded saying no message came", got, err)
			}
			if elapsed > idleTimeout+5*time.Second {
				t.Fatalf("stream ended after %s, want about %s", elapsed, idleTimeout)
			}
		}},
		{name: "Deliver stream that goes silent", run: func(t *testing.T) {
			c := fx.dial(t, fx.nodeCert["bravo"], nil)
			stream, err := c.Exchange.Deliver(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&parleyv1.DeliverRequest{Envelope: []byte("\x0a\x05hello")}); err != nil {
				t.Fatal(err)
			}
			if resp, err := stream.Recv(); err != nil || resp.GetStatus() != parleyv1.DeliveryStatus_DELIVERY_STATUS_REJECTED {
				t.Fatalf("got %v, %v; want REJECTED", resp, err)
			}
			if _, err = stream.Recv(); status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("got %v, want DeadlineExceeded once the stream went silent", err)
			}
		}},
		{name: "slow TLS handshake", slow: true, run: func(t *testing.T) {
			conn := fx.rawConn(t)
			// The start of a TLS record, one byte at a time.
			hello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
			fx.awaitClose(t, conn, func(i int) []byte { return hello[i%len(hello) : i%len(hello)+1] })
		}},
		{name: "silent after the TLS handshake", slow: true, run: func(t *testing.T) {
			cfg := certs.ClientConfig(fx.bundle, certs.Static(*fx.nodeCert["bravo"]), "alpha")
			cfg.NextProtos = []string{"h2"}
			conn := tls.Client(fx.rawConn(t), cfg)
			if err := conn.Handshake(); err != nil {
				t.Fatalf("handshake: %v", err)
			}
			fx.awaitClose(t, conn, nil) // never sends the HTTP/2 preface
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.slow && testing.Short() {
				t.Skip("slow case; skipped with -short")
			}
			t.Parallel()
			tt.run(t)
		})
	}
	t.Cleanup(func() {
		if after := fx.snapshot(t); after != before {
			t.Errorf("node state changed: got %+v, want %+v", after, before)
		}
	})
}

// handshake makes a TLS connection to the node as fx.dial would and
// returns why the node refused it: the handshake's error or, in TLS 1.3,
// where the client finishes first, the alert the node sends next.
func (fx *fixture) handshake(t *testing.T, cert *tls.Certificate, tweak func(*tls.Config)) string {
	t.Helper()
	if cert == nil {
		cert = fx.operatorCert(t)
	}
	cfg := certs.ClientConfig(fx.bundle, certs.Static(*cert), "alpha")
	cfg.NextProtos = []string{"h2"}
	if tweak != nil {
		tweak(cfg)
	}
	conn := tls.Client(fx.rawConn(t), cfg)
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := conn.Handshake(); err != nil {
		return err.Error()
	}
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		return err.Error()
	}
	t.Fatal("the node accepted the TLS connection")
	return ""
}

// rawConn is a plain TCP connection to the node.
func (fx *fixture) rawConn(t *testing.T) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fx.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// awaitClose trickles next(i) to conn every 500 ms (nothing if next is nil)
// and checks that the node closes the connection within its handshake
// deadline, serving other clients meanwhile.
func (fx *fixture) awaitClose(t *testing.T, conn net.Conn, next func(i int) []byte) {
	t.Helper()
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, conn)
		closed <- err
	}()
	start := time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-closed:
			if elapsed := time.Since(start); elapsed > connectionTimeout+3*time.Second {
				t.Fatalf("node closed the connection after %s, want within %s", elapsed, connectionTimeout)
			}
			return
		case <-tick.C:
			if time.Since(start) > connectionTimeout+3*time.Second {
				t.Fatalf("node kept the connection open for %s, want it closed within %s", time.Since(start), connectionTimeout)
			}
			if next != nil {
				if _, err := conn.Write(next(i)); err != nil {
					return // closed by the node
				}
			}
			if i == 4 {
				fx.snapshot(t) // other clients are served
			}
		}
	}
}

// TestBadAgreementFiles checks that a node refuses to start on an agreement
// that not every party signed, naming the party, both through the node
// configuration (config.Build) and through server.New directly.
func TestBadAgreementFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n, err := localnet.Generate(ctx, localnet.Options{Dir: dir, Parties: []string{"alpha", "bravo", "charlie"}, NoMediators: true})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	for _, id := range []string{"alpha", "bravo", "charlie", "tiles/alpha", "tiles/bravo", "tiles/charlie"} {
		if l, ok := n.Listener(id); ok {
			l.Close()
		}
	}
	signedFile := n.Agreement.Marshal()
	unsigned, _, ok := bytes.Cut(signedFile, []byte(agreement.Separator+"\n"))
	if !ok {
		t.Fatalf("agreement file has no %q line", agreement.Separator)
	}
	signedBy := func(ids ...string) []byte {
		f, err := agreement.Parse(unsigned)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			s, err := keys.LoadSigner(ctx, n.Parties[id].SigningKey, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Sign(ctx, id, s); err != nil {
				t.Fatal(err)
			}
		}
		return f.Marshal()
	}
	tests := []struct {
		name string
		file []byte
		want []string
	}{
		{"unsigned", unsigned, []string{"missing signatures of alpha, bravo, charlie"}},
		{"bravo's signature missing", signedBy("alpha", "charlie"), []string{"missing signatures of bravo"}},
		{"text changed after signing", bytes.Replace(signedFile, []byte("title: "), []byte("title: Amended "), 1),
			[]string{"bad signatures: party alpha", "party bravo", "party charlie"}},
		{"bravo's signature tampered", tamperSignature(t, signedFile, "bravo"), []string{"bad signatures: party bravo"}},
		{"bravo's signature by charlie's key", signatureOf(t, signedBy("alpha", "bravo", "charlie"), "bravo", signedBy("charlie")),
			[]string{"bad signatures: party bravo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agreement.yaml")
			if err := os.WriteFile(path, tt.file, 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := config.Load(n.Parties["alpha"].ConfigFile)
			if err != nil {
				t.Fatal(err)
			}
			c.Agreement = path
			_, err = c.Build(ctx, slog.New(slog.DiscardHandler))
			checkRefusal(t, "config.Build", err, tt.want)

			// server.New refuses it too, whoever built its configuration.
			good, err := config.Load(n.Parties["alpha"].ConfigFile)
			if err != nil {
				t.Fatal(err)
			}
			scfg, err := good.Build(ctx, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if scfg.Agreement, err = agreement.Parse(tt.file); err != nil {
				t.Fatal(err)
			}
			scfg.DataDir = t.TempDir()
			node, err := server.New(ctx, scfg)
			if err == nil {
				node.Close()
			}
			checkRefusal(t, "server.New", err, tt.want)
		})
	}
}

func checkRefusal(t *testing.T, what string, err error, want []string) {
	t.Helper()
	if !errors.Is(err, agreement.ErrNotSigned) {
		t.Fatalf("%s: got %v, want an error wrapping ErrNotSigned", what, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: got %q, want it to contain %q", what, err, w)
		}
	}
}

// tamperSignature flips a bit of party's signature in an agreement file.
func tamperSignature(t *testing.T, file []byte, party string) []byte {
	t.Helper()
	f, err := agreement.Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Signatures {
		if f.Signatures[i].Party == party {
			f.Signatures[i].Sig = bytes.Clone(f.Signatures[i].Sig)
			f.Signatures[i].Sig[0] ^= 0x01
			return f.Marshal()
		}
	}
	t.Fatalf("no signature of %s", party)
	return nil
}

// signatureOf replaces party's signature in file by the only signature in
// donor, keeping party's name on it.
func signatureOf(t *testing.T, file []byte, party string, donor []byte) []byte {
	t.Helper()
	f, err := agreement.Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	d, err := agreement.Parse(donor)
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Signatures {
		if f.Signatures[i].Party == party {
			f.Signatures[i].KeyID, f.Signatures[i].Sig = d.Signatures[0].KeyID, d.Signatures[0].Sig
			return f.Marshal()
		}
	}
	t.Fatalf("no signature of %s", party)
	return nil
}

// TestNegativeForcesInJSON checks the JSON path: a notification file (as
// parley notify and grpcurl read them) cannot carry a negative number of
// troops, which protojson refuses before any request is made.
func TestNegativeForcesInJSON(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"negative troops", `{"troops": -1}`, "troops"},
		{"troops above uint32", `{"troops": 4294967296}`, "troops"},
		{"fractional tanks", `{"battleTanks": 1.5}`, "battle_tanks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f parleyv1.Forces
			err := protojson.Unmarshal([]byte(tt.json), &f)
			if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), "battleTanks", "battle_tanks"), tt.want) {
				t.Fatalf("got %v (forces %v), want an error about %s", err, &f, tt.want)
			}
		})
	}
}

// TestMediatorWrites runs a network with a mediator and checks that the
// mediator's identity, which may read every node, can write to none.
func TestMediatorWrites(t *testing.T) {
	ctx := context.Background()
	n, err := localnet.Generate(ctx, localnet.Options{Dir: t.TempDir(), Parties: []string{"alpha", "bravo"}})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	for _, id := range []string{"bravo", "tiles/alpha", "tiles/bravo"} {
		if l, ok := n.Listener(id); ok {
			l.Close()
		}
	}
	// Only alpha's node runs, witnessed by the mediator: with bravo's
	// node running, receipts would change alpha's log meanwhile.
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
	run, err := n.StartWitnesses(ctx, logger)
	if err != nil {
		t.Fatalf("StartWitnesses: %v", err)
	}
	t.Cleanup(run.Stop)
	// A limit low enough that a flood exceeds it even on a loaded machine,
	// high enough for the test's own calls.
	startNode(t, n, "alpha", func(c *config.Node) { c.Limits.RatePerParty, c.Limits.BurstPerParty = 50, 50 }, nil)
	m := n.Mediators[n.MediatorIDs[0]]
	medCert, err := tls.LoadX509KeyPair(m.CertFile, m.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	medCA := loadCA(t, m.CAFile)
	bundle, err := config.TrustBundle(n.Agreement.Agreement)
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{net: n, addr: n.Parties["alpha"].Address, bundle: bundle}
	if fx.alpha, err = n.Operator(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.alpha.Close() })
	first, err := fx.alpha.Notify(ctx, notification(9000))
	if err != nil {
		t.Fatalf("Notify: %v", err)
	}
	fx.awaitLogSize(t, 1)
	denied := codes.PermissionDenied
	tests := []badCase{
		{name: "mediator submits", code: denied, msg: "may not submit to alpha's node",
			call: func(t *testing.T, fx *fixture) outcome {
				return fx.submit(t, fx.dial(t, &medCert, nil), notificationBody())
			}},
		{name: "mediator submits a signed envelope", code: denied, msg: "may not submit to alpha's node",
			call: func(t *testing.T, fx *fixture) outcome {
				c := fx.dial(t, &medCert, nil)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, err := c.Submission.SubmitEnvelope(ctx, &parleyv1.SubmitEnvelopeRequest{Envelope: first.GetEnvelope()})
				return outcome{err: err}
			}},
		{name: "mediator delivers", code: denied, msg: "may not deliver entries",
			call: func(t *testing.T, fx *fixture) outcome {
				return fx.deliver(t, fx.dial(t, &medCert, nil), first.GetEnvelope())
			}},
		{name: "mediator's CA issuing an operator", code: denied, msg: "is not a party of the agreement",
			call: func(t *testing.T, fx *fixture) outcome {
				leaf, err := medCA.Issue(certs.IssueRequest{Role: certs.RoleOperator, Name: "ops", Validity: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				return fx.submit(t, fx.dial(t, tlsCert(t, leaf), nil), notificationBody())
			}},
		{name: "mediator reads (allowed)", code: codes.OK,
			call: func(t *testing.T, fx *fixture) outcome {
				c := fx.dial(t, &medCert, nil)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, err := c.Log.GetCheckpoint(ctx, &parleyv1.GetCheckpointRequest{})
				return outcome{err: err}
			}},
		{name: "mediator floods beyond the rate limit", code: codes.ResourceExhausted, msg: `trust domain "secretariat" is over its rate limit`,
			call: func(t *testing.T, fx *fixture) outcome {
				// Reads are allowed, but not without bound: here 50 calls/s
				// per trust domain after a burst of 50.
				return flood(t, fx.dial(t, &medCert, nil))
			}},
	}
	before := fx.snapshot(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, tt.call(t, fx))
			if after := fx.snapshot(t); after != before {
				t.Fatalf("node state changed: got %+v, want %+v", after, before)
			}
		})
	}
}

// flood calls FeedHeads from 8 goroutines until a call fails, at most 5,000
// times, and returns the first failure.
func flood(t *testing.T, c *client.Client) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	calls := make(chan struct{}, 5000)
	for range cap(calls) {
		calls <- struct{}{}
	}
	close(calls)
	failed := make(chan error, 8)
	for range 8 {
		go func() {
			for range calls {
				if _, err := c.Exchange.FeedHeads(ctx, &parleyv1.FeedHeadsRequest{}); err != nil {
					failed <- err
					cancel()
					return
				}
			}
			failed <- nil
		}()
	}
	var first error
	for range 8 {
		if err := <-failed; err != nil && first == nil {
			first = err
		}
	}
	return outcome{err: first}
}

// --- requests ---

func (fx *fixture) submitEnvelope(t *testing.T, raw []byte) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := fx.alpha.Submission.SubmitEnvelope(ctx, &parleyv1.SubmitEnvelopeRequest{Envelope: raw})
	return outcome{err: err, duplicate: resp.GetDuplicate()}
}

func (fx *fixture) submit(t *testing.T, c *client.Client, body *parleyv1.Body) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Submission.Submit(ctx, &parleyv1.SubmitRequest{Body: body})
	return outcome{err: err, duplicate: resp.GetDuplicate()}
}

// deliver sends raw on a new Deliver stream of c and returns the answer.
func (fx *fixture) deliver(t *testing.T, c *client.Client, raw []byte) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := c.Exchange.Deliver(ctx)
	if err != nil {
		return outcome{err: err}
	}
	if err := stream.Send(&parleyv1.DeliverRequest{Envelope: raw}); err != nil && !errors.Is(err, io.EOF) {
		return outcome{err: err}
	}
	resp, err := stream.Recv()
	if err != nil {
		return outcome{err: err}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	return outcome{delivery: resp}
}

// invokeRaw sends req, raw bytes, as the request message of method, as
// alpha's operator.
func (fx *fixture) invokeRaw(t *testing.T, method string, req []byte) outcome {
	t.Helper()
	creds := credentials.NewTLS(certs.ClientConfig(fx.bundle, certs.Static(*fx.operatorCert(t)), "alpha"))
	conn, err := grpc.NewClient(fx.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var resp []byte
	err = conn.Invoke(ctx, method, req, &resp, grpc.ForceCodecV2(rawCodec{}))
	return outcome{err: err}
}

// rawCodec sends and receives messages as raw bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// dial connects to alpha's node presenting cert (alpha's operator when nil),
// with tweak applied to the client's TLS configuration.
func (fx *fixture) dial(t *testing.T, cert *tls.Certificate, tweak func(*tls.Config)) *client.Client {
	t.Helper()
	if cert == nil {
		cert = fx.operatorCert(t)
	}
	cfg := certs.ClientConfig(fx.bundle, certs.Static(*cert), "alpha")
	if tweak != nil {
		tweak(cfg)
	}
	c, err := client.DialTLS(context.Background(), fx.addr, credentials.NewTLS(cfg), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// operatorCert is alpha's operator certificate.
func (fx *fixture) operatorCert(t *testing.T) *tls.Certificate {
	t.Helper()
	op, err := tls.LoadX509KeyPair(fx.net.Parties["alpha"].OperatorCert, fx.net.Parties["alpha"].OperatorKey)
	if err != nil {
		t.Fatal(err)
	}
	return &op
}

// --- envelopes ---

// statement is alpha's next statement (seq 2, chained to the first entry,
// issued now) with a valid notification; mutate changes it.
func (fx *fixture) statement(mutate func(*parleyv1.Statement)) *parleyv1.Statement {
	st := &parleyv1.Statement{
		Header: &parleyv1.Header{
			AgreementId: fx.net.Agreement.Agreement.ID,
			Sender:      "alpha",
			Seq:         2,
			Prev:        bytes.Clone(fx.first.GetDigest()),
			IssuedAt:    timestamppb.Now(),
		},
		Body: notificationBody(),
	}
	if mutate != nil {
		mutate(st)
	}
	return st
}

// envelope signs fx.statement(mutate) with signer's key, naming keyOf's key
// id.
func (fx *fixture) envelope(t *testing.T, signer, keyOf string, mutate func(*parleyv1.Statement)) []byte {
	t.Helper()
	raw, err := envelope.Sign(context.Background(), fx.statement(mutate), fx.signer[signer], fx.keyID[keyOf])
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return raw
}

func (fx *fixture) payload(t *testing.T, mutate func(*parleyv1.Statement)) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(fx.statement(mutate))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawEnvelope builds an envelope by hand, with alpha's signature over
// payloadType and payload repeated n times.
func (fx *fixture) rawEnvelope(t *testing.T, payloadType string, payload []byte, n int) []byte {
	t.Helper()
	sig, err := fx.signer["alpha"].SignMessage(bytes.NewReader(envelope.PAE(payloadType, payload)))
	if err != nil {
		t.Fatal(err)
	}
	env := &parleyv1.Envelope{PayloadType: payloadType, Payload: payload}
	for range n {
		env.Signatures = append(env.Signatures, &parleyv1.Signature{Sig: sig, Keyid: fx.keyID["alpha"]})
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func notification(troops uint32) *parleyv1.ActivityNotification {
	return localnettest.Notification(troops)
}

func notificationBody() *parleyv1.Body {
	return &parleyv1.Body{Kind: &parleyv1.Body_Notification{Notification: notification(9000)}}
}

// --- certificates ---

func loadCA(t *testing.T, certFile string) *certs.CA {
	t.Helper()
	cert, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(strings.TrimSuffix(certFile, ".crt") + ".key")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certs.LoadCA(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func tlsCert(t *testing.T, leaf *certs.Leaf) *tls.Certificate {
	t.Helper()
	c, err := leaf.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// leaf issues a certificate from party's CA.
func (fx *fixture) leaf(t *testing.T, party string, role certs.Role, name string) *tls.Certificate {
	t.Helper()
	l, err := fx.ca[party].Issue(certs.IssueRequest{Role: role, Name: name, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tlsCert(t, l)
}

// forge signs, with party's CA key, a certificate that CA.Issue refuses to
// make: an alpha operator certificate changed by mutate.
func (fx *fixture) forge(t *testing.T, party string, mutate func(*x509.Certificate)) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "forged"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{mustURL(t, "spiffe://"+party+"/operator/ops")},
	}
	mutate(tmpl)
	ca := fx.ca[party]
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Certificate(), key.Public(), caSigner(t, ca))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// caSigner returns the CA's private key.
func caSigner(t *testing.T, ca *certs.CA) crypto.Signer {
	t.Helper()
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := keys.ParsePrivatePEM(keyPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
