package verifier

import (
	"strings"
	"testing"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/types/known/timestamppb"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

func ack(sender string, seq uint64, digestLen int, at bool) *parleyv1.Acknowledgement {
	a := &parleyv1.Acknowledgement{Sender: sender, Seq: seq, Digest: make([]byte, digestLen)}
	if at {
		a.ReceivedAt = timestamppb.Now()
	}
	return a
}

// TestReceiptRulesMatchSchema holds the hand-written receipt check equal to
// protovalidate on the schema's rules, case by case.
func TestReceiptRulesMatchSchema(t *testing.T) {
	pv, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	many := make([]*parleyv1.Acknowledgement, 1001)
	for i := range many {
		many[i] = ack("bravo", uint64(i+1), 32, true)
	}
	tests := []struct {
		name string
		r    *parleyv1.Receipt
	}{
		{"valid", &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{ack("bravo", 1, 32, true)}}},
		{"no acks", &parleyv1.Receipt{}},
		{"too many acks", &parleyv1.Receipt{Acks: many}},
		{"1000 acks", &parleyv1.Receipt{Acks: many[:1000]}},
		{"upper-case sender", &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{ack("Bravo", 1, 32, true)}}},
		{"sender starting with a digit", &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{ack("1bravo", 1, 32, true)}}},
		{"sender with a dash", &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{ack("b-2", 1, 32, true)}}},
		{"sender of 63", &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{ack("b"+strings.Repeat("x", 62), 1, 32, true)}}},
		{"sender of 64", &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{ack("b"+strings.Repeat("x", 63), 1, 32, true)}}},
		{"empty sender", &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{ack("", 1, 32, true)}}},
		{"seq 0", &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{ack("bravo", 0, 32, true)}}},
		{"short digest", &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{ack("bravo", 1, 31, true)}}},
		{"long digest", &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{ack("bravo", 1, 33, true)}}},
		{"no received_at", &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{ack("bravo", 1, 32, false)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agreesWithSchema(t, pv, tt.r, receiptErr(tt.r))
		})
	}
}

// TestReceiptSchemaUnchanged fails when Receipt or Acknowledgement gain
// fields, so that receiptErr is revisited.
func TestReceiptSchemaUnchanged(t *testing.T) {
	checkFieldCounts(t, "receiptErr", []fieldCount{
		{&parleyv1.Receipt{}, 1},
		{&parleyv1.Acknowledgement{}, 4},
	})
}

// FuzzReceiptRules checks receiptErr against protovalidate on arbitrary
// receipts.
func FuzzReceiptRules(f *testing.F) {
	fuzzAgainstSchema(f, &parleyv1.Receipt{Acks: []*parleyv1.Acknowledgement{ack("bravo", 1, 32, true)}},
		func() *parleyv1.Receipt { return &parleyv1.Receipt{} }, receiptErr)
}
