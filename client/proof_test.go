package client_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/localnet"
	"github.com/parley-dev/parley/internal/localnet/localnettest"
	"github.com/parley-dev/parley/mediator"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// startNetwork runs a real network on loopback (parties alpha and bravo,
// one mediator witnessing, quorum 1) and returns it with alpha's operator
// client.
func startNetwork(t *testing.T) (*localnet.Running, *client.Client) {
	t.Helper()
	net, err := localnet.Generate(t.Context(), localnet.Options{Dir: t.TempDir(), Parties: []string{"alpha", "bravo"}})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	run, err := net.Start(context.Background(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(run.Stop)
	c, err := run.Operator(t.Context(), "alpha")
	if err != nil {
		t.Fatalf("Operator: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return run, c
}

func notification(i int) *parleyv1.ActivityNotification {
	return localnettest.Notification(9000 + uint32(i))
}

// notify submits n notifications and returns the logged entries.
func notify(t *testing.T, c *client.Client, n int) []*parleyv1.LogEntry {
	t.Helper()
	var out []*parleyv1.LogEntry
	for i := range n {
		e, err := c.Notify(t.Context(), notification(i))
		if err != nil {
			t.Fatalf("Notify: %v", err)
		}
		out = append(out, e)
	}
	return out
}

// checkpointCovering waits for a verified checkpoint of at least size
// entries. The log holds other parties' entries and receipts too, so
// callers ask for the index of their last entry plus one.
func checkpointCovering(t *testing.T, c *client.Client, keys client.LogKeys, size uint64) (*client.Checkpoint, []byte) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		cp, raw, err := c.Checkpoint(t.Context(), keys)
		if err == nil && cp.Size >= size {
			return cp, raw
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of size %d: last error %v", size, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAppendAndProve(t *testing.T) {
	run, alpha := startNetwork(t)
	keys := run.LogKeys("alpha")
	entries := notify(t, alpha, 5)
	for i, e := range entries {
		if e.GetSender() != "alpha" || e.GetSeq() != uint64(i+1) {
			t.Fatalf("entry %d: got %s/%d, want alpha/%d", i, e.GetSender(), e.GetSeq(), i+1)
		}
	}
	older, raw := checkpointCovering(t, alpha, keys, entries[4].GetIndex()+1)
	if older.Origin != "parley.local/alpha" {
		t.Errorf("got origin %q, want parley.local/alpha", older.Origin)
	}
	if !bytes.Contains(raw, []byte("\n— parley.local/mediator/secretariat ")) {
		t.Errorf("checkpoint carries no cosignature of the mediator:\n%s", raw)
	}
	for _, e := range entries {
		got, err := alpha.Entry(t.Context(), "alpha", e.GetSeq())
		if err != nil {
			t.Fatalf("Entry(%d): %v", e.GetSeq(), err)
		}
		if !proto.Equal(got, e) {
			t.Errorf("Entry(%d): got %v, want the entry Notify returned, %v", e.GetSeq(), got, e)
		}
		if err := alpha.ProveInclusion(t.Context(), older, got); err != nil {
			t.Errorf("ProveInclusion(%d): %v", e.GetSeq(), err)
		}
	}
	more := notify(t, alpha, 3)
	newer, _ := checkpointCovering(t, alpha, keys, more[2].GetIndex()+1)
	if err := alpha.ProveConsistency(t.Context(), older, newer); err != nil {
		t.Errorf("ProveConsistency(%d, %d): %v", older.Size, newer.Size, err)
	}
	if err := alpha.ProveInclusion(t.Context(), newer, more[2]); err != nil {
		t.Errorf("ProveInclusion of the last entry: %v", err)
	}
	// An entry the checkpoint does not cover yet cannot be proved in it.
	if err := alpha.ProveInclusion(t.Context(), older, more[0]); err == nil {
		t.Errorf("ProveInclusion of index %d in a checkpoint of size %d: got nil error", more[0].GetIndex(), older.Size)
	}
}

// cut returns raw without the signature lines that contain name.
func cut(raw []byte, name string) []byte {
	body, sigs, _ := bytes.Cut(raw, []byte("\n\n"))
	var keep [][]byte
	for _, line := range bytes.SplitAfter(sigs, []byte("\n")) {
		if !bytes.Contains(line, []byte(" "+name+" ")) {
			keep = append(keep, line)
		}
	}
	return append(append(bytes.Clone(body), "\n\n"...), bytes.Join(keep, nil)...)
}

// replaceLine returns raw with its line i (from 0) replaced by s.
func replaceLine(raw []byte, i int, s string) []byte {
	lines := bytes.Split(raw, []byte("\n"))
	lines[i] = []byte(s)
	return bytes.Join(lines, []byte("\n"))
}

// flipSignature flips a bit in the base64 signature of the line that
// starts with "— name ".
func flipSignature(raw []byte, name string) []byte {
	out := bytes.Clone(raw)
	i := bytes.Index(out, []byte("— "+name+" "))
	end := i + bytes.IndexByte(out[i:], '\n')
	// The fourth character from the end is signature material, not padding.
	c := &out[end-4]
	if *c == 'A' {
		*c = 'B'
	} else {
		*c = 'A'
	}
	return out
}

func TestCheckpointForgeries(t *testing.T) {
	run, alpha := startNetwork(t)
	keys := run.LogKeys("alpha")
	e := notify(t, alpha, 2)[1]
	_, raw := checkpointCovering(t, alpha, keys, e.GetIndex()+1)
	bravo, err := run.Operator(t.Context(), "bravo")
	if err != nil {
		t.Fatal(err)
	}
	defer bravo.Close()
	_, bravoRaw := checkpointCovering(t, bravo, run.LogKeys("bravo"), 0)
	_, rogueKey, err := mediator.GenerateCosigningKey("parley.local/mediator/secretariat")
	if err != nil {
		t.Fatal(err)
	}
	witness := "parley.local/mediator/secretariat"

	// The genuine checkpoint verifies.
	if _, err := client.VerifyCheckpoint(raw, keys); err != nil {
		t.Fatalf("VerifyCheckpoint of the node's checkpoint: %v", err)
	}
	tests := []struct {
		name string
		raw  []byte
		keys func(client.LogKeys) client.LogKeys
	}{
		{"node signature flipped", flipSignature(raw, "parley.local/alpha"), nil},
		{"size changed", replaceLine(raw, 1, "1"), nil},
		{"root changed", replaceLine(raw, 2, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="), nil},
		{"another log's checkpoint", bravoRaw, nil},
		{"wrong origin expected", raw, func(k client.LogKeys) client.LogKeys { k.Origin = "parley.local/bravo"; return k }},
		{"node signature missing", cut(raw, "parley.local/alpha"), nil},
		{"witness cosignature missing", cut(raw, witness), nil},
		{"witness cosignature flipped", flipSignature(raw, witness), nil},
		{"cosigned by a witness the agreement does not list", raw, func(k client.LogKeys) client.LogKeys { k.WitnessKeys = []string{rogueKey}; return k }},
		{"quorum above the cosigners", raw, func(k client.LogKeys) client.LogKeys {
			k.WitnessKeys = append(k.WitnessKeys, rogueKey)
			k.Quorum = 2
			return k
		}},
		{"one cosignature counted twice", raw, func(k client.LogKeys) client.LogKeys {
			k.WitnessKeys = append(k.WitnessKeys, k.WitnessKeys[0])
			k.Quorum = 2
			return k
		}},
		{"not a note", []byte("parley.local/alpha\n2\n"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := keys
			if tt.keys != nil {
				k = tt.keys(k)
			}
			cp, err := client.VerifyCheckpoint(tt.raw, k)
			if !errors.Is(err, client.ErrCheckpoint) {
				t.Fatalf("got %v, %v; want an error wrapping ErrCheckpoint", cp, err)
			}
		})
	}
	// Served by a lying node, the forged checkpoint is refused the same way.
	liar := newLiar(t, alpha)
	liar.checkpoint = func(raw []byte) []byte { return cut(raw, witness) }
	if cp, _, err := liar.client.Checkpoint(t.Context(), keys); !errors.Is(err, client.ErrCheckpoint) {
		t.Fatalf("Checkpoint from a node that strips cosignatures: got %v, %v; want ErrCheckpoint", cp, err)
	}
}

func TestInclusionForgeries(t *testing.T) {
	run, alpha := startNetwork(t)
	keys := run.LogKeys("alpha")
	entries := notify(t, alpha, 6)
	cp, _ := checkpointCovering(t, alpha, keys, entries[5].GetIndex()+1)
	e := entries[2]
	other := entries[3]
	tests := []struct {
		name   string
		entry  *parleyv1.LogEntry
		tamper func(*parleyv1.GetInclusionProofResponse)
	}{
		{"hash flipped", e, func(r *parleyv1.GetInclusionProofResponse) { r.Hashes[0][0] ^= 1 }},
		{"last hash flipped", e, func(r *parleyv1.GetInclusionProofResponse) { r.Hashes[len(r.Hashes)-1][31] ^= 0x80 }},
		{"hash dropped", e, func(r *parleyv1.GetInclusionProofResponse) { r.Hashes = r.Hashes[1:] }},
		{"hash added", e, func(r *parleyv1.GetInclusionProofResponse) { r.Hashes = append(r.Hashes, r.Hashes[0]) }},
		{"hashes swapped", e, func(r *parleyv1.GetInclusionProofResponse) { r.Hashes[0], r.Hashes[1] = r.Hashes[1], r.Hashes[0] }},
		{"no proof", e, func(r *parleyv1.GetInclusionProofResponse) { r.Hashes = nil }},
		{"entry at the wrong index", withIndex(e, other.GetIndex()), nil},
		{"another entry's envelope", withEnvelope(e, other), nil},
		{"digest of another envelope", withDigest(e, other.GetDigest()), nil},
	}
	liar := newLiar(t, alpha)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			liar.inclusion = tt.tamper
			if err := liar.client.ProveInclusion(t.Context(), cp, tt.entry); !errors.Is(err, client.ErrProof) {
				t.Fatalf("got %v, want an error wrapping ErrProof", err)
			}
		})
	}
	// The liar tells the truth when it does not tamper.
	liar.inclusion = nil
	if err := liar.client.ProveInclusion(t.Context(), cp, e); err != nil {
		t.Fatalf("ProveInclusion through an honest relay: %v", err)
	}
}

func withIndex(e *parleyv1.LogEntry, index uint64) *parleyv1.LogEntry {
	c := proto.Clone(e).(*parleyv1.LogEntry)
	c.Index = index
	return c
}

// withEnvelope is e claiming other's envelope and digest at e's index.
func withEnvelope(e, other *parleyv1.LogEntry) *parleyv1.LogEntry {
	c := proto.Clone(e).(*parleyv1.LogEntry)
	c.Envelope, c.Digest = other.GetEnvelope(), other.GetDigest()
	return c
}

func withDigest(e *parleyv1.LogEntry, digest []byte) *parleyv1.LogEntry {
	c := proto.Clone(e).(*parleyv1.LogEntry)
	c.Digest = digest
	return c
}

func TestConsistencyForgeries(t *testing.T) {
	run, alpha := startNetwork(t)
	keys := run.LogKeys("alpha")
	e := notify(t, alpha, 3)[2]
	older, _ := checkpointCovering(t, alpha, keys, e.GetIndex()+1)
	e = notify(t, alpha, 4)[3]
	newer, _ := checkpointCovering(t, alpha, keys, e.GetIndex()+1)
	if newer.Size == older.Size {
		t.Fatalf("checkpoints of sizes %d and %d: want the log to have grown", older.Size, newer.Size)
	}
	if err := alpha.ProveConsistency(t.Context(), older, newer); err != nil {
		t.Fatalf("ProveConsistency of genuine checkpoints: %v", err)
	}
	forkedRoot := *older
	forkedRoot.Hash = bytes.Clone(older.Hash)
	forkedRoot.Hash[0] ^= 1
	tests := []struct {
		name         string
		older, newer *client.Checkpoint
		tamper       func(*parleyv1.GetConsistencyProofResponse)
	}{
		{"hash flipped", older, newer, func(r *parleyv1.GetConsistencyProofResponse) { r.Hashes[0][5] ^= 1 }},
		{"hash dropped", older, newer, func(r *parleyv1.GetConsistencyProofResponse) { r.Hashes = r.Hashes[:len(r.Hashes)-1] }},
		{"hash added", older, newer, func(r *parleyv1.GetConsistencyProofResponse) { r.Hashes = append(r.Hashes, r.Hashes[0]) }},
		{"no proof", older, newer, func(r *parleyv1.GetConsistencyProofResponse) { r.Hashes = nil }},
		{"older root forked", &forkedRoot, newer, nil},
		{"two roots for one size", older, &forkedRoot, nil},
	}
	liar := newLiar(t, alpha)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			liar.consistency = tt.tamper
			if err := liar.client.ProveConsistency(t.Context(), tt.older, tt.newer); !errors.Is(err, client.ErrProof) {
				t.Fatalf("got %v, want an error wrapping ErrProof", err)
			}
		})
	}
	// A proof for other sizes does not prove these.
	resp, err := alpha.Log.GetConsistencyProof(t.Context(), &parleyv1.GetConsistencyProofRequest{FromSize: 2, ToSize: newer.Size})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.VerifyConsistency(older, newer, resp.GetHashes()); !errors.Is(err, client.ErrProof) {
		t.Fatalf("VerifyConsistency with a proof from size 2: got %v, want ErrProof", err)
	}
}

// liar is a log service that relays to a real node and tampers with its
// answers, standing in for a node that lies. Set a hook before a call;
// a nil hook relays untouched. Hooks are not safe to change during a call.
type liar struct {
	parleyv1.UnimplementedLogServiceServer
	node        *client.Client
	client      *client.Client
	checkpoint  func([]byte) []byte
	inclusion   func(*parleyv1.GetInclusionProofResponse)
	consistency func(*parleyv1.GetConsistencyProofResponse)
}

// newLiar serves a liar relaying to node on loopback (plain gRPC: the test
// is about what the client makes of the answers) and dials it.
func newLiar(t *testing.T, node *client.Client) *liar {
	t.Helper()
	l := &liar{node: node}
	srv := grpc.NewServer()
	parleyv1.RegisterLogServiceServer(srv, l)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	l.client, err = client.DialTLS(t.Context(), lis.Addr().String(), insecure.NewCredentials(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.client.Close() })
	return l
}

func (l *liar) GetCheckpoint(ctx context.Context, req *parleyv1.GetCheckpointRequest) (*parleyv1.GetCheckpointResponse, error) {
	resp, err := l.node.Log.GetCheckpoint(ctx, req)
	if err == nil && l.checkpoint != nil {
		resp.Checkpoint = l.checkpoint(resp.GetCheckpoint())
	}
	return resp, err
}

func (l *liar) GetInclusionProof(ctx context.Context, req *parleyv1.GetInclusionProofRequest) (*parleyv1.GetInclusionProofResponse, error) {
	resp, err := l.node.Log.GetInclusionProof(ctx, req)
	if err == nil && l.inclusion != nil {
		l.inclusion(resp)
	}
	return resp, err
}

func (l *liar) GetConsistencyProof(ctx context.Context, req *parleyv1.GetConsistencyProofRequest) (*parleyv1.GetConsistencyProofResponse, error) {
	resp, err := l.node.Log.GetConsistencyProof(ctx, req)
	if err == nil && l.consistency != nil {
		l.consistency(resp)
	}
	return resp, err
}
