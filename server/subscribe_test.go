package server_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// TestSubscribeKinds follows a node's log over Subscribe streams that ask
// for some kinds of entries only, over gRPC and mutual TLS: each stream
// sends exactly the entries of the log whose bodies are of those kinds, in
// log order and with their log indexes, from where it starts and then as
// they come; a stream without kinds sends every entry; and a request
// naming no kind or one twice is refused.
func TestSubscribeKinds(t *testing.T) {
	x := fastExchange
	x.ReceiptDelay = "50ms"
	run := startNetwork(t, localnet.Options{Parties: []string{"alpha", "bravo"}, NoMediators: true, Exchange: x})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alpha, bravo := operator(t, run, "alpha"), operator(t, run, "bravo")
	notify := func(c *client.Client, i int) *parleyv1.LogEntry {
		t.Helper()
		e, err := c.Notify(ctx, notification(9000+uint32(i)))
		if err != nil {
			t.Fatalf("Notify %d: %v", i, err)
		}
		return e
	}
	sent := map[localnet.EntryKey]string{} // each notification, and who receipts it
	for i := range 3 {
		e := notify(alpha, i)
		sent[localnet.EntryKey{Sender: "alpha", Seq: e.GetSeq()}] = "bravo"
		e = notify(bravo, 10+i)
		sent[localnet.EntryKey{Sender: "bravo", Seq: e.GetSeq()}] = "alpha"
	}
	// Alpha's log then holds its notifications, bravo's, bravo's receipts
	// of alpha's and alpha's own receipts of bravo's, and nothing more
	// comes.
	waitFor(t, 30*time.Second, "alpha's log to hold every notification, receipted", func() (bool, error) {
		h := holdings(t, run, "alpha")
		for k, by := range sent {
			if !h.ReceiptedBy(k, by) {
				return false, fmt.Errorf("no receipt of %v from %s", k, by)
			}
		}
		return true, nil
	})
	log, err := alpha.Entries(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	kindOf := func(e *parleyv1.LogEntry) parleyv1.EntryKind {
		t.Helper()
		p, err := envelope.Parse(e.GetEnvelope())
		if err != nil {
			t.Fatalf("entry %d: %v", e.GetIndex(), err)
		}
		return parleyv1.EntryKind(p.Statement.GetBody().ProtoReflect().WhichOneof(p.Statement.GetBody().ProtoReflect().Descriptor().Oneofs().ByName("kind")).Number())
	}
	// want lists the indexes of the entries of log from start whose kinds
	// are among kinds (all for none).
	want := func(log []*parleyv1.LogEntry, start uint64, kinds ...parleyv1.EntryKind) []uint64 {
		var out []uint64
		for _, e := range log {
			if e.GetIndex() >= start && (len(kinds) == 0 || slices.Contains(kinds, kindOf(e))) {
				out = append(out, e.GetIndex())
			}
		}
		return out
	}
	// follow subscribes with req until it has received n entries, checks
	// that nothing else comes for a moment, and returns their indexes;
	// entries it receives are checked against the log as read.
	follow := func(req *parleyv1.SubscribeRequest, n int, then func()) []uint64 {
		t.Helper()
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		got := make(chan *parleyv1.LogEntry, 64)
		go func() {
			defer close(got)
			_ = alpha.SubscribeWith(sctx, req, func(ev *parleyv1.SubscribeResponse) error {
				if e := ev.GetEntry(); e != nil {
					got <- e
				}
				return nil
			})
		}()
		var out []uint64
		for len(out) < n {
			select {
			case e, ok := <-got:
				if !ok {
					t.Fatalf("the stream ended after %d entries (%v), want %d", len(out), out, n)
				}
				out = append(out, e.GetIndex())
				if then != nil && len(out) == n/2 {
					then()
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("after 20s, %d entries (%v), want %d", len(out), out, n)
			}
		}
		select {
		case e := <-got:
			t.Fatalf("got entry %d beyond the %d wanted (%v)", e.GetIndex(), n, out)
		case <-time.After(500 * time.Millisecond):
		}
		return out
	}
	receipt, note := parleyv1.EntryKind_ENTRY_KIND_RECEIPT, parleyv1.EntryKind_ENTRY_KIND_NOTIFICATION

	receipts := want(log, 0, receipt)
	if len(receipts) == 0 || len(receipts) == len(log) {
		t.Fatalf("alpha's log holds %d receipts of %d entries, want some and some other entries", len(receipts), len(log))
	}
	for _, tc := range []struct {
		name  string
		start uint64
		kinds []parleyv1.EntryKind
	}{
		{"receipts", 0, []parleyv1.EntryKind{receipt}},
		{"notifications from the third entry", 2, []parleyv1.EntryKind{note}},
		{"notifications and receipts", 0, []parleyv1.EntryKind{receipt, note}},
		{"amendments (none)", 0, []parleyv1.EntryKind{parleyv1.EntryKind_ENTRY_KIND_AMENDMENT}},
		{"every entry", 1, nil},
	} {
		w := want(log, tc.start, tc.kinds...)
		got := follow(&parleyv1.SubscribeRequest{FromIndex: tc.start, Kinds: tc.kinds}, len(w), nil)
		if !slices.Equal(got, w) {
			t.Errorf("%s: got entries %v, want %v", tc.name, got, w)
		}
	}

	// Entries logged while the stream is open come too, and only theirs.
	size := uint64(len(log))
	var more []uint64
	got := follow(&parleyv1.SubscribeRequest{FromIndex: 0, Kinds: []parleyv1.EntryKind{note}}, len(want(log, 0, note))+2, func() {
		more = append(more, notify(alpha, 20).GetIndex(), notify(alpha, 21).GetIndex())
	})
	after, err := alpha.Entries(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if w := want(after, 0, note); !slices.Equal(got, w[:len(got)]) || !slices.Contains(got, more[0]) || !slices.Contains(got, more[1]) || more[0] < size {
		t.Errorf("live: got entries %v, want %v (the log was %d entries; new notifications at %v)", got, w, size, more)
	}

	for _, tc := range []struct {
		name  string
		kinds []parleyv1.EntryKind
	}{
		{"unspecified", []parleyv1.EntryKind{parleyv1.EntryKind_ENTRY_KIND_UNSPECIFIED}},
		{"twice", []parleyv1.EntryKind{receipt, receipt}},
		{"undefined", []parleyv1.EntryKind{99}},
	} {
		err := alpha.SubscribeWith(ctx, &parleyv1.SubscribeRequest{Kinds: tc.kinds}, func(*parleyv1.SubscribeResponse) error {
			return errors.New("an event came")
		})
		if status.Code(errors.Unwrap(err)) != codes.InvalidArgument && status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", tc.name, err)
		}
	}
}
