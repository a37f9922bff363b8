package server_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/localnet"
	"github.com/parley-dev/parley/internal/localnet/localnettest"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/server"
	"github.com/parley-dev/parley/verifier/rules"
)

// TestListFindingsPages lists findings page by page over gRPC: the pages
// together are the whole list, in its order, even when entries arrive
// between them; the client gathers every page; a page token refuses
// another list, and a forged one is refused. It does so with the lists
// held in memory, and spilled to files in runs of 2 findings merged.
func TestListFindingsPages(t *testing.T) {
	for _, spill := range []int{0, 2} {
		t.Run(fmt.Sprintf("spill=%d", spill), func(t *testing.T) { listFindingsPages(t, spill) })
	}
}

func listFindingsPages(t *testing.T, spill int) {
	if spill > 0 {
		server.SpillFindingsAfter(t, spill)
	}
	run := startNetwork(t, localnet.Options{NoMediators: true, Parties: []string{"alpha", "bravo"}})
	ctx := context.Background()
	alpha := operator(t, run, "alpha")
	late := func(i int) { t.Helper(); notifyLate(t, ctx, alpha, i) }
	for i := range 7 {
		late(i)
	}
	asOf := timestamppb.New(time.Now().Add(time.Hour))
	list := func(req *parleyv1.ListFindingsRequest) (*parleyv1.ListFindingsResponse, error) {
		return alpha.Subscription.ListFindings(ctx, req)
	}
	whole, err := list(&parleyv1.ListFindingsRequest{Rule: "VD.V.lead", AsOf: asOf})
	if err != nil {
		t.Fatal(err)
	}
	if len(whole.GetFindings()) != 7 || whole.GetNextPageToken() != "" {
		t.Fatalf("one page: got %d findings, next page %q; want the 7 late notifications and no next page", len(whole.GetFindings()), whole.GetNextPageToken())
	}
	if got := run.Nodes["alpha"].FindingsSpilled(); got != (spill > 0) {
		t.Fatalf("list spilled: %v, want %v", got, spill > 0)
	}

	// Pages of a filtered list skip what the filter does not match: the
	// list holds alpha's findings of more than one rule (VD.V.lead, and
	// VD.near, which sorts after it) and, while bravo's receipts have not
	// reached alpha's log, bravo's (RX.receipt), which sort before them.
	// (Only alpha's findings are compared: bravo's receipts may reach
	// alpha's log between two calls without a page token, and change
	// bravo's.)
	for _, q := range []*parleyv1.ListFindingsRequest{
		{Party: "alpha", AsOf: asOf, PageSize: 3},
		{Party: "alpha", AsOf: asOf, PageSize: 1},
		{Party: "alpha", Rule: "VD.V.lead", AsOf: asOf, PageSize: 5},
		{Rule: "VD.V.lead", AsOf: asOf, PageSize: 4},
	} {
		one, err := list(&parleyv1.ListFindingsRequest{Party: q.GetParty(), Rule: q.GetRule(), AsOf: asOf})
		if err != nil || one.GetNextPageToken() != "" {
			t.Fatalf("party %q, rule %q in one page: %v, next page %q", q.GetParty(), q.GetRule(), err, one.GetNextPageToken())
		}
		var paged []*parleyv1.Finding
		for req, pages := proto.CloneOf(q), 0; ; pages++ {
			if pages > len(one.GetFindings()) {
				t.Fatalf("party %q, rule %q: more pages than findings", q.GetParty(), q.GetRule())
			}
			resp, err := list(req)
			if err != nil {
				t.Fatalf("party %q, rule %q, page %d: %v", q.GetParty(), q.GetRule(), pages, err)
			}
			if n := len(resp.GetFindings()); n > int(q.GetPageSize()) || (n < int(q.GetPageSize()) && resp.GetNextPageToken() != "") {
				t.Fatalf("party %q, rule %q, page %d: %d findings and next page %q, want %d unless it is the last", q.GetParty(), q.GetRule(), pages, n, resp.GetNextPageToken(), q.GetPageSize())
			}
			paged = append(paged, resp.GetFindings()...)
			if resp.GetNextPageToken() == "" {
				break
			}
			req.PageToken = resp.GetNextPageToken()
		}
		if len(paged) != len(one.GetFindings()) {
			t.Fatalf("party %q, rule %q: %d findings in pages of %d, %d in one page", q.GetParty(), q.GetRule(), len(paged), q.GetPageSize(), len(one.GetFindings()))
		}
		for i := range paged {
			if !proto.Equal(paged[i], one.GetFindings()[i]) {
				t.Fatalf("party %q, rule %q, finding %d: paged %v, in one page %v", q.GetParty(), q.GetRule(), i, paged[i], one.GetFindings()[i])
			}
		}
	}

	// With as_of, then without: every page is judged as of the first page's
	// time, over the entries the first page saw (7, then 8 after the
	// notification made during the first list).
	for pass, asOf := range []*timestamppb.Timestamp{asOf, nil} {
		want := 7 + pass
		req := &parleyv1.ListFindingsRequest{Rule: "VD.V.lead", AsOf: asOf, PageSize: 2}
		var got []*parleyv1.Finding
		for page := 0; ; page++ {
			if page > 4 {
				t.Fatalf("as_of %v: more than 4 pages of 2 for 7 findings", asOf)
			}
			resp, err := list(req)
			if err != nil {
				t.Fatalf("as_of %v, page %d: %v", asOf, page, err)
			}
			if len(resp.GetFindings()) > 2 {
				t.Fatalf("as_of %v, page %d: %d findings, want at most 2", asOf, page, len(resp.GetFindings()))
			}
			got = append(got, resp.GetFindings()...)
			if page == 0 && asOf != nil {
				late(100) // a finding more, after the first page: not in this list
			}
			if resp.GetNextPageToken() == "" {
				break
			}
			req.PageToken = resp.GetNextPageToken()
		}
		if len(got) != want {
			t.Fatalf("as_of %v: the pages hold %d findings, want %d", asOf, len(got), want)
		}
		if asOf != nil {
			for i := range got {
				if !proto.Equal(got[i], whole.GetFindings()[i]) {
					t.Fatalf("page finding %d: got %v, want %v", i, got[i], whole.GetFindings()[i])
				}
			}
		}
	}

	// The client gathers every page: 8 findings in pages of 3.
	alpha.FindingsPageSize = 3
	all, err := alpha.FindingsAsOf(ctx, "alpha", "VD.V.lead", asOf.AsTime())
	if err != nil || len(all) != 8 {
		t.Fatalf("FindingsAsOf in pages of 3: got %d findings, %v; want 8", len(all), err)
	}
	// FindingsSeq yields the same list page by page, and a loop left
	// early asks for no page more.
	var seq []*parleyv1.Finding
	for f, err := range alpha.FindingsSeq(ctx, "alpha", "VD.V.lead", asOf.AsTime()) {
		if err != nil {
			t.Fatalf("FindingsSeq after %d findings: %v", len(seq), err)
		}
		seq = append(seq, f)
	}
	if !slices.EqualFunc(seq, all, func(a, b *parleyv1.Finding) bool { return proto.Equal(a, b) }) {
		t.Fatalf("FindingsSeq in pages of 3: %d findings, not FindingsAsOf's %d", len(seq), len(all))
	}
	admin := serveAdmin(t, run.Nodes["alpha"])
	listCalls := func() float64 {
		return metric(scrape(t, admin), "grpc_server_handled_total", map[string]string{"grpc_method": "ListFindings"})
	}
	before := listCalls()
	for range alpha.FindingsSeq(ctx, "alpha", "VD.V.lead", asOf.AsTime()) {
		break
	}
	if calls := listCalls() - before; calls != 1 {
		t.Fatalf("a FindingsSeq loop left at its first finding made %v ListFindings calls, want 1", calls)
	}
	alpha.FindingsPageSize = 0
	if one, err := alpha.FindingsAsOf(ctx, "alpha", "VD.V.lead", asOf.AsTime()); err != nil || len(one) != 8 {
		t.Fatalf("FindingsAsOf in one page: got %d findings, %v; want 8", len(one), err)
	}

	first, err := list(&parleyv1.ListFindingsRequest{Rule: "VD.V.lead", AsOf: asOf, PageSize: 3})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page of 3: %v, next page %q", err, first.GetNextPageToken())
	}
	for name, req := range map[string]*parleyv1.ListFindingsRequest{
		"another rule":       {Rule: "VD.V.content", AsOf: asOf, PageToken: first.GetNextPageToken()},
		"another party":      {Party: "bravo", Rule: "VD.V.lead", AsOf: asOf, PageToken: first.GetNextPageToken()},
		"another as_of":      {Rule: "VD.V.lead", AsOf: timestamppb.New(asOf.AsTime().Add(time.Second)), PageToken: first.GetNextPageToken()},
		"a forged token":     {Rule: "VD.V.lead", PageToken: "not-a-token"},
		"a negative size":    {Rule: "VD.V.lead", PageSize: -1},
		"a size over 10,000": {Rule: "VD.V.lead", PageSize: 10001},
	} {
		if _, err := list(req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", name, err)
		}
	}

	// A list's later pages share one evaluation even when the log grows
	// and another evaluation (a list as of now, as a metrics scrape or a
	// subscriber would make) comes between them.
	evaluations := func() float64 {
		return metric(scrape(t, admin), "parley_findings_evaluation_seconds_count", nil)
	}
	req := &parleyv1.ListFindingsRequest{Rule: "VD.V.lead", PageSize: 1}
	resp, err := list(req)
	if err != nil || resp.GetNextPageToken() == "" {
		t.Fatalf("first page of 1: %v, next page %q", err, resp.GetNextPageToken())
	}
	late(200)
	if _, err := list(&parleyv1.ListFindingsRequest{Rule: "VD.V.lead"}); err != nil {
		t.Fatal(err)
	}
	before, pages := evaluations(), 1
	for req.PageToken = resp.GetNextPageToken(); req.PageToken != ""; req.PageToken = resp.GetNextPageToken() {
		if resp, err = list(req); err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
	}
	if got := evaluations() - before; pages < 8 || got > 1 {
		t.Errorf("%d pages of 1 evaluated the rules %v times after the first, want at most once for 8 pages or more", pages, got)
	}
}

// TestSubscribeFindings follows a node's findings over a Subscribe stream
// with include_findings, over gRPC and mutual TLS: every finding comes
// once, those of entries made while the stream is open come too, and none
// comes again when the node hands the subscriber the same list; with the
// lists held in memory, and spilled to files.
func TestSubscribeFindings(t *testing.T) {
	for _, spill := range []int{0, 2} {
		t.Run(fmt.Sprintf("spill=%d", spill), func(t *testing.T) { subscribeFindings(t, spill) })
	}
}

func subscribeFindings(t *testing.T, spill int) {
	if spill > 0 {
		server.SpillFindingsAfter(t, spill)
	}
	run := startNetwork(t, localnet.Options{NoMediators: true, Parties: []string{"alpha", "bravo"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alpha := operator(t, run, "alpha")
	late := func(i int) { t.Helper(); notifyLate(t, ctx, alpha, 100+i) }
	for i := range 3 {
		late(i)
	}
	stream, err := alpha.Subscription.Subscribe(ctx, &parleyv1.SubscribeRequest{IncludeFindings: true})
	if err != nil {
		t.Fatal(err)
	}
	findings := streamedFindings(ctx, stream)
	seen := map[string]int{}
	lead := 0
	// await reads findings until want findings of rule VD.V.lead have
	// come, or for d if want is 0.
	await := func(want int, d time.Duration) {
		t.Helper()
		timer := time.NewTimer(d)
		defer timer.Stop()
		for want == 0 || lead < want {
			select {
			case f, ok := <-findings:
				if !ok {
					t.Fatalf("the stream ended with %d VD.V.lead findings, want %d", lead, want)
				}
				key := string(mustMarshal(t, f))
				if seen[key]++; seen[key] > 1 {
					t.Fatalf("finding sent twice: %v", f)
				}
				if f.GetRule() == "VD.V.lead" {
					lead++
				}
			case <-timer.C:
				if want > 0 {
					t.Fatalf("after %v, %d VD.V.lead findings, want %d", d, lead, want)
				}
				return
			}
		}
	}
	await(3, 20*time.Second)
	late(3)
	await(4, 20*time.Second)
	// The node evaluates again at most every second, and hands out the
	// same list in between: nothing more may come for a few seconds.
	await(0, 3*time.Second)
	if lead != 4 {
		t.Errorf("%d VD.V.lead findings, want 4", lead)
	}
}

// notifyLate has c notify an activity starting in ten days, short of the
// lead time: a VD.V.lead finding of c's party.
// streamedFindings passes on the findings a Subscribe stream sends, until
// it ends (the channel is then closed) or ctx does.
func streamedFindings(ctx context.Context, stream parleyv1.SubscriptionService_SubscribeClient) <-chan *parleyv1.Finding {
	findings := make(chan *parleyv1.Finding)
	go func() {
		defer close(findings)
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			if f := resp.GetFinding(); f != nil {
				select {
				case findings <- f:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return findings
}

func notifyLate(t *testing.T, ctx context.Context, c *client.Client, i int) {
	t.Helper()
	n := notification(9000 + uint32(i))
	n.Start = timestamppb.New(time.Now().Add(10 * 24 * time.Hour).Truncate(time.Hour))
	n.End = timestamppb.New(n.Start.AsTime().Add(72 * time.Hour))
	if _, err := c.Notify(ctx, n); err != nil {
		t.Fatalf("Notify: %v", err)
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEvaluatingHook has a node report its evaluations of the rules to
// Config.Evaluating, as parley node uses it to raise its soft memory limit
// meanwhile: each ListFindings over a log of n entries calls it with n,
// and calls what it returned before answering.
func TestEvaluatingHook(t *testing.T) {
	net := bareNetwork(t)
	var (
		mu          sync.Mutex
		sizes       []uint64
		begun, done int
	)
	startNode(t, net, "alpha", func(c *server.Config) {
		c.Exchange.PeerAddresses = map[string]string{"bravo": "127.0.0.1:1", "charlie": "127.0.0.1:1"}
		c.Evaluating = func(entries uint64) func() {
			mu.Lock()
			defer mu.Unlock()
			sizes, begun = append(sizes, entries), begun+1
			return func() {
				mu.Lock()
				defer mu.Unlock()
				done++
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	op := localnettest.Operator(t, net, "alpha")
	for i := range 3 {
		if _, err := op.Notify(ctx, notification(9000+uint32(i))); err != nil {
			t.Fatal(err)
		}
		if _, err := op.FindingsAsOf(ctx, "", "", time.Now().Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		got, b, d := slices.Clone(sizes), begun, done
		mu.Unlock()
		if b != i+1 || d != b || got[i] != uint64(i+1) {
			t.Fatalf("after ListFindings over %d entries: evaluations reported %v, %d begun and %d done; want one more, over %d entries, done", i+1, got, b, d, i+1)
		}
	}
}

// TestListAsOfStaysApart asks for findings as of two years ahead, then
// follows the node's findings over a Subscribe stream and scrapes its
// metrics: a list judged at another time than now is the asker's alone,
// so neither the subscriber nor the metrics see deadlines that have not
// passed (the calendars of the next years, the receipts still in time).
func TestListAsOfStaysApart(t *testing.T) {
	run := startNetwork(t, localnet.Options{NoMediators: true, Parties: []string{"alpha", "bravo"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alpha := operator(t, run, "alpha")
	notifyLate(t, ctx, alpha, 1)
	ahead := time.Now().AddDate(2, 0, 0)
	future, err := alpha.Subscription.ListFindings(ctx, &parleyv1.ListFindingsRequest{AsOf: timestamppb.New(ahead)})
	if err != nil {
		t.Fatal(err)
	}
	later := 0
	for _, f := range future.GetFindings() {
		if f.GetAt().AsTime().After(time.Now().Add(time.Hour)) {
			later++
		}
	}
	if later == 0 {
		t.Fatalf("as of %v: no finding about a deadline after now among %d; the test needs some", ahead, len(future.GetFindings()))
	}
	admin := serveAdmin(t, run.Nodes["alpha"])
	stream, err := alpha.Subscription.Subscribe(ctx, &parleyv1.SubscribeRequest{IncludeFindings: true})
	if err != nil {
		t.Fatal(err)
	}
	// The first list comes at once; read until it has stopped coming.
	findings := streamedFindings(ctx, stream)
	got := 0
	for quiet := false; !quiet; {
		select {
		case f, ok := <-findings:
			if !ok {
				t.Fatalf("the stream ended after %d findings", got)
			}
			got++
			if f.GetAt().AsTime().After(time.Now().Add(time.Hour)) {
				t.Fatalf("the subscriber was sent a finding judged as of %v: %v", ahead, f)
			}
		case <-time.After(2 * time.Second):
			quiet = got > 0
		}
	}
	if n := metric(scrape(t, admin), "parley_findings", map[string]string{"rule": rules.RuleNil}); n != 0 {
		t.Fatalf("metrics count %v findings of %s, which only a list as of %v holds", n, rules.RuleNil, ahead)
	}
}
