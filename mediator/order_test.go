package mediator

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier/rules"
)

// TestReportFindingsInTheEngineOrder sorts findings drawn from a small
// space (so that every field decides some pairs, and some are equal) by
// rules.CompareFindings and, as the report holds them, by
// compareRuleFindings: the audit gathers the engine's findings in no
// order and sorts them in the report, and the report must list them as
// the engine would.
func TestReportFindingsInTheEngineOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	base := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	for round := range 20 {
		var fs []*parleyv1.Finding
		for range 300 {
			f := &parleyv1.Finding{
				Rule:     pick(rules.RuleLead, rules.RuleNear, rules.RuleReceipt),
				Severity: parleyv1.Severity(1 + rng.IntN(4)),
				Party:    pick("alpha", "bravo"),
				Required: pick("a", "b"),
				Seen:     pick("a", "b"),
				Summary:  pick("a", "b"),
				At:       timestamppb.New(base.Add(time.Duration(rng.IntN(3)) * time.Nanosecond)),
			}
			for range rng.IntN(3) {
				d := make([]byte, 32)
				d[rng.IntN(32)] = byte(rng.IntN(256))
				f.Entries = append(f.Entries, &parleyv1.EntryRef{Sender: pick("alpha", "bravo"), Seq: uint64(rng.IntN(3)), Digest: d})
			}
			fs = append(fs, f)
		}
		slices.SortFunc(fs, rules.CompareFindings)
		want := make([]Finding, len(fs))
		for i, f := range fs {
			want[i] = findingOf(f)
		}
		got := slices.Clone(want)
		rng.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		slices.SortFunc(got, compareRuleFindings)
		for i := range got {
			if g, w := fmt.Sprint(got[i]), fmt.Sprint(want[i]); g != w {
				t.Fatalf("round %d, finding %d: the report's order has\n%s\nthe engine's\n%s", round, i, g, w)
			}
		}
	}
}

// TestInOrder moves items into the order of random permutations, some with
// long cycles and some with fixed points, and compares with copying them
// into a second array in that order.
func TestInOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, 3, 17, 1000} {
		for round := range 5 {
			items := make([]string, n)
			for i := range items {
				items[i] = fmt.Sprint("item ", i)
			}
			order := make([]int32, n)
			for i := range order {
				order[i] = int32(i)
			}
			if round > 0 {
				rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
			}
			want := make([]string, n)
			for k, i := range order {
				want[k] = items[i]
			}
			inOrder(items, order)
			if !slices.Equal(items, want) {
				t.Fatalf("n=%d round %d: got %q, want %q", n, round, items, want)
			}
			if i := slices.IndexFunc(order, func(v int32) bool { return v != -1 }); i >= 0 {
				t.Errorf("n=%d round %d: order[%d] = %d after, want every position spent", n, round, i, order[i])
			}
		}
	}
}
