package mediator

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/parley-dev/parley/verifier"
)

// replayChecks counts the audits whose replay was compared with the
// verifier's over all entries.
var replayChecks atomic.Int64

// Every audit in this package's tests also replays all entries with
// verifier.Replay, as the auditor did before it streamed the logs, and
// panics if any verdict differs.
func init() {
	replayHook = func(ad *auditor, got *verifier.Replayed) {
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
				if string(peekHeader(raw).sender) == l.party {
					own = append(own, in)
				} else {
					other = append(other, in)
				}
			}
		}
		want := ad.v.Replay(append(own, other...), verifier.ReplayOptions{})
		if g, w := describeReplay(got), describeReplay(want); g != w {
			panic(fmt.Sprintf("streamed replay differs from verifier.Replay:\ngot\n%s\nwant\n%s", g, w))
		}
		replayChecks.Add(1)
	}
}

// describeReplay prints every verdict of a replay.
func describeReplay(r *verifier.Replayed) string {
	var b strings.Builder
	for _, u := range r.Unreadable {
		fmt.Fprintf(&b, "unreadable %s: %v\n", u.Source, u.Err)
	}
	for _, f := range r.Feeds {
		fmt.Fprintf(&b, "feed %q: accepted %d head %d %x\n", f.Sender, f.Accepted, f.Head.Seq, f.Head.Digest)
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
	for _, a := range r.Accepted {
		fmt.Fprintf(&b, "accepted %s %d %x %v\n", a.Sender(), a.Seq(), a.Parsed.Digest, reflect.TypeOf(a.Parsed.Statement.GetBody().GetKind()))
	}
	return b.String()
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
