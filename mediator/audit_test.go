package mediator_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/mediator"
)

// reportText is a report's JSON without its generation time.
func reportText(t *testing.T, rep *mediator.Report) string {
	t.Helper()
	rep.GeneratedAt = time.Time{}
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkSummaries checks that each party's summary counts as many
// notifications as the timeline lists of that party: both count the
// accepted notifications, the summaries after the timeline was made.
func checkSummaries(t *testing.T, rep *mediator.Report) {
	t.Helper()
	listed := map[string]int{}
	for _, it := range rep.Timeline {
		listed[it.Sender]++
	}
	total := 0
	for _, ps := range rep.Parties {
		total += ps.Notifications
		if ps.Notifications != listed[ps.Party] {
			t.Errorf("%s's summary counts %d notifications, the timeline lists %d", ps.Party, ps.Notifications, listed[ps.Party])
		}
	}
	if total != len(rep.Timeline) {
		t.Errorf("the summaries count %d notifications, the timeline lists %d", total, len(rep.Timeline))
	}
}

// openMirrors opens the three parties' mirrored logs written under dir,
// closed when the test ends.
func openMirrors(t *testing.T, dir string) map[string]*mediator.MirrorLog {
	t.Helper()
	logs := map[string]*mediator.MirrorLog{}
	for _, party := range []string{"alpha", "bravo", "charlie"} {
		ml, err := mediator.OpenMirrorLog(filepath.Join(dir, "mirror", party), true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ml.Close() })
		logs[party] = ml
	}
	return logs
}

// TestAuditIncremental audits growing mirrors twice with progress carried
// over, as the mediator's periodic audit does, and checks each report
// against an audit from scratch; bad envelopes stay reported.
func TestAuditIncremental(t *testing.T) {
	d := newDiskNet(t)
	entries := d.exchange(t, 90)
	p, err := envelope.Parse(entries[7])
	if err != nil {
		t.Fatal(err)
	}
	p.Envelope.Signatures[0].Sig[3] ^= 1
	badSig, err := proto.MarshalOptions{Deterministic: true}.Marshal(p.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte("not an envelope")

	dir := t.TempDir()
	first := map[string][][]byte{
		"alpha":   append(append([][]byte{}, entries[:40]...), badSig, garbage),
		"bravo":   entries[:30],
		"charlie": entries[10:20],
	}
	d.writeDir(t, dir, first, nil)
	logs := openMirrors(t, dir)
	in := mediator.AuditInput{Agreement: d.file, Mediator: "mediator1", Logs: logs, Now: d.base.AddDate(0, 3, 0)}
	progress := mediator.NewAuditProgress()
	audit := func(step string) *mediator.Report {
		t.Helper()
		got, err := mediator.AuditWith(in, progress)
		if err != nil {
			t.Fatal(err)
		}
		want, err := mediator.Audit(in)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := reportText(t, got), reportText(t, want); g != w {
			t.Fatalf("%s: incremental report differs from a full audit:\n%s\nwant\n%s", step, g, w)
		}
		return got
	}
	rep := audit("first audit")
	if rep.Entries != 42+30+10 {
		t.Errorf("first audit: %d entries, want %d", rep.Entries, 42+30+10)
	}
	if progress.Failed() != 2 {
		t.Errorf("first audit: %d envelopes failed, want 2", progress.Failed())
	}
	audit("same mirrors again")

	// The mirrors grow; one more bad envelope lands in bravo's.
	for party, more := range map[string][][]byte{
		"alpha":   entries[40:],
		"bravo":   append(append([][]byte{}, entries[30:60]...), garbage[:7]),
		"charlie": entries[:10],
	} {
		if err := logs[party].Append(more); err != nil {
			t.Fatal(err)
		}
	}
	rep = audit("grown mirrors")
	if rep.Entries != 92+61+20 {
		t.Errorf("grown mirrors: %d entries, want %d", rep.Entries, 92+61+20)
	}
	if progress.Failed() != 3 {
		t.Errorf("grown mirrors: %d envelopes failed, want 3", progress.Failed())
	}
	bad := 0
	for _, f := range rep.Feeds {
		bad += f.BadSignatures
	}
	if bad != 1 {
		t.Errorf("grown mirrors: %d bad signatures reported, want 1", bad)
	}
	audit("grown mirrors again")

	// A mirror whose file changes under the mediator: the next audit
	// notices, verifies everything again and says so.
	for party, ml := range logs {
		root, err := ml.RootAt(ml.Size())
		if err != nil {
			t.Fatal(err)
		}
		if err := ml.SetCheckpoint(d.checkpoint(t, party, ml.Size(), root, true)); err != nil {
			t.Fatal(err)
		}
	}
	clean := audit("checkpointed mirrors")
	tampered := entries[3]
	p, err = envelope.Parse(tampered)
	if err != nil {
		t.Fatal(err)
	}
	at := int64(4 + bytes.Index(tampered, p.Envelope.Signatures[0].Sig))
	for _, raw := range entries[:3] {
		at += 4 + int64(len(raw))
	}
	f, err := os.OpenFile(filepath.Join(dir, "mirror", "alpha", "entries"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rep, err = mediator.AuditWith(in, progress)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(rep.Problems, "\n"), "changed on disk") {
		t.Errorf("tampered mirror: problems %q, want one saying the mirror changed on disk", rep.Problems)
	}
	count := func(rep *mediator.Report) (n int) {
		for _, f := range rep.Feeds {
			n += f.BadSignatures
		}
		return n
	}
	if got, want := count(rep), count(clean)+1; got != want {
		t.Errorf("tampered mirror: %d bad signatures, want %d", got, want)
	}
}

// encoderJSON is the report as encoding/json's Encoder writes it with a
// two-space indent, which WriteJSON's output must equal byte for byte.
func encoderJSON(t *testing.T, rep *mediator.Report) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestWriteJSONAsTheEncoder writes reports whose timeline and findings
// WriteJSON streams element by element: a real audit of an exchange, and
// reports with none, one or many of them, nil or empty, with strings that
// JSON escapes. Each is byte for byte what the Encoder writes.
func TestWriteJSONAsTheEncoder(t *testing.T) {
	d := newDiskNet(t)
	entries := d.exchange(t, 30)
	dir := t.TempDir()
	d.writeDir(t, dir, map[string][][]byte{"alpha": entries, "bravo": entries[:20], "charlie": entries[:25]}, nil)
	logs := openMirrors(t, dir)
	audited, err := mediator.Audit(mediator.AuditInput{Agreement: d.file, Mediator: "mediator1", Logs: logs, Now: d.base.AddDate(0, 3, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if len(audited.Findings) == 0 || len(audited.Timeline) == 0 {
		t.Fatalf("the audit has %d findings and %d timeline items; the test needs some of each", len(audited.Findings), len(audited.Timeline))
	}
	tricky := "<b>&amp;</b> \"quoted\"\n\ttab \u2028 \u00e9 \x01"
	at := time.Date(2026, 11, 24, 8, 0, 0, 123, time.UTC)
	finding := func(i int) mediator.Finding {
		return mediator.Finding{Rule: "RX.receipt", Severity: "violation", Party: "bravo", Required: tricky, Seen: fmt.Sprint(i), Summary: "s",
			At: at.Add(time.Duration(i)), Entries: []mediator.EntryRef{{Sender: "alpha", Seq: uint64(i), Digest: "00ff"}}}
	}
	var many []mediator.Finding
	for i := range 500 {
		many = append(many, finding(i))
	}
	for name, rep := range map[string]*mediator.Report{
		"an audit":                 audited,
		"nothing":                  {},
		"empty lists":              {Timeline: []mediator.TimelineItem{}, Findings: []mediator.Finding{}, Problems: []string{tricky}},
		"one finding, no timeline": {Findings: []mediator.Finding{finding(1)}},
		"a timeline, no findings":  {Timeline: []mediator.TimelineItem{{Sender: "alpha", Designation: tricky, Issued: at}}},
		"many findings":            {Findings: many, Timeline: audited.Timeline, Problems: []string{"findings: []"}},
	} {
		var b bytes.Buffer
		if err := rep.WriteJSON(&b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, want := b.String(), encoderJSON(t, rep); got != want {
			t.Fatalf("%s: WriteJSON wrote\n%s\nthe Encoder\n%s", name, got, want)
		}
	}
}
