package mediator

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/parley-dev/parley/envelope"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier"
	"github.com/parley-dev/parley/verifier/rules"
)

// replayChecks counts the audits whose replay was compared with the
// verifier's over all entries.
var replayChecks atomic.Int64

// Every audit in this package's tests also replays all entries with
// verifier.Replay, as the auditor did before it streamed the logs, and
// panics if any verdict differs.
func init() {
	replayHook = func(ad *auditor, got *verifier.Replayed, accepted []rules.Entry) {
		seen := map[[32]byte]bool{}
		var own, other []verifier.ReplayInput
		for _, l := range ad.logs {
			raws, err := l.ml.Entries(0, l.size)
			if err != nil {
				panic(err)
			}
			for i, raw := range raws {
				d := sha256Sum(raw)
				if seen[d] {
					continue
				}
				seen[d] = true
				in := verifier.ReplayInput{Raw: raw, Source: fmt.Sprintf("%s's log, index %d", l.party, i)}
				if h, _ := envelope.PeekHeader(raw); h.Sender == l.party {
					own = append(own, in)
				} else {
					other = append(other, in)
				}
			}
		}
		want := ad.v.Replay(append(own, other...), verifier.ReplayOptions{})
		var wantAccepted []rules.Entry
		for _, r := range want.Accepted {
			wantAccepted = append(wantAccepted, rules.Entry{Sender: r.Sender(), Seq: r.Seq(), Digest: r.Parsed.Digest, Statement: r.Parsed.Statement})
		}
		if g, w := describeReplay(got, accepted), describeReplay(want, wantAccepted); g != w {
			panic(fmt.Sprintf("streamed replay differs from verifier.Replay:\ngot\n%s\nwant\n%s", g, w))
		}
		replayChecks.Add(1)
	}
}

// describeReplay prints every verdict of a replay, and the entries it
// accepted.
func describeReplay(r *verifier.Replayed, accepted []rules.Entry) string {
	var b strings.Builder
	for _, u := range r.Unreadable {
		fmt.Fprintf(&b, "unreadable %s: %v\n", u.Source, u.Err)
	}
	for _, f := range r.Feeds {
		fmt.Fprintf(&b, "feed %q: accepted %d head %d %x payload %x\n", f.Sender, f.Accepted, f.Head.Seq, f.Head.Digest, f.Head.PayloadDigest)
		for _, x := range f.Duplicates {
			fmt.Fprintf(&b, "  duplicate %d %s %v\n", x.Seq, x.Source, x.Err)
		}
		for _, x := range f.Gaps {
			fmt.Fprintf(&b, "  gap %+v\n", x)
		}
		for _, x := range f.Equivocations {
			fmt.Fprintf(&b, "  equivocation %s %v\n", x.Source, x.EquivocationError)
		}
		for _, x := range f.BadSignatures {
			fmt.Fprintf(&b, "  bad signature %d %s %v\n", x.Seq, x.Source, x.Err)
		}
		for _, x := range f.Refused {
			fmt.Fprintf(&b, "  refused %d %s %v\n", x.Seq, x.Source, x.Err)
		}
	}
	for _, a := range accepted {
		kind := reflect.TypeOf(a.Statement.GetBody().GetKind())
		if a.Statement == nil && a.Notification != nil {
			kind = reflect.TypeOf(&parleyv1.Body_Notification{})
			n := a.Notification
			fmt.Fprintf(&b, "  notification %q alert %v issued %v from %v to %v\n", n.Designation(), n.Alert(), n.IssuedAt(), n.Start(), n.End())
		} else if nt := a.Statement.GetBody().GetNotification(); nt != nil {
			fmt.Fprintf(&b, "  notification %q alert %v issued %v from %v to %v\n", nt.GetDesignation(), nt.GetAlert(),
				a.Statement.GetHeader().GetIssuedAt().AsTime().UTC(), nt.GetStart().AsTime().UTC(), nt.GetEnd().AsTime().UTC())
		}
		if a.Statement == nil && a.Receipt != nil {
			kind = reflect.TypeOf(&parleyv1.Body_Receipt{})
			for _, ack := range a.Receipt.Acks {
				fmt.Fprintf(&b, "  ack %s %d %x %v\n", ack.Sender, ack.Seq, ack.Digest, ack.ReceivedAt)
			}
		} else {
			for _, ack := range a.Statement.GetBody().GetReceipt().GetAcks() {
				fmt.Fprintf(&b, "  ack %s %d %x %v\n", ack.GetSender(), ack.GetSeq(), ack.GetDigest(), ack.GetReceivedAt().AsTime().UTC())
			}
		}
		fmt.Fprintf(&b, "accepted %s %d %x %v\n", a.Sender, a.Seq, a.Digest, kind)
	}
	return b.String()
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
