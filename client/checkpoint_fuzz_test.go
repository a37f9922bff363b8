package client_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/parley-dev/parley/client"
)

// Fixed test keys, so that the fuzzing corpus stays meaningful from one run
// to the next. They sign nothing but test checkpoints.
const (
	testOrigin  = "parley.test/alpha"
	testLogSKey = "PRIVATE+KEY+parley.test/alpha+2a559675+AYCGhq5EuYrPZibif2LmkPy28o+C8OcZ6y+vyc+Qv7V8"
	testLogVKey = "parley.test/alpha+2a559675+Aa3AASccE058kcdtGXSxBm8vAS4QImH1Rv4+0vcQoCkt"
	// witness one cosigns with a plain Ed25519 note key (type 0x01), as
	// Tessera's witnesses may; witness two with an Ed25519 cosignature/v1
	// key (type 0x04), as Parley's mediators do.
	testW1SKey = "PRIVATE+KEY+witness-one.parley.test+dc16ae4f+Abm18ChyVfRqt9pm4Pk9F5moAT0UJ7bZvahnT1lf5MQ9"
	testW1VKey = "witness-one.parley.test+dc16ae4f+AUp7im/LpVhYH7Hb7LnsmoK5lKf8HXR3Dgp9NZDUBXpj"
	testW2SKey = "PRIVATE+KEY+witness-two.parley.test+d9bfb2f1+BKISJHx7MYEnVxEZcey5Hv4FiBDrK0YejMRW4+eDup4x"
	testW2VKey = "witness-two.parley.test+d9bfb2f1+BDxfMHbTbrIo7tyWpjsWqv3f7vTjONKeHP31Isk7CLeg"
	// The impostor has the log's name but another key.
	testImpostorSKey = "PRIVATE+KEY+parley.test/alpha+7febb75d+ARvaRpcOIwzb30/Bkn9d/uESnngK9MSGZkZvZOjNO9i4"
)

// checkpointSigners are the signers of the fuzz fixture.
type checkpointSigners struct {
	log, w1, w2, impostor note.Signer
}

func newCheckpointSigners(tb testing.TB) checkpointSigners {
	tb.Helper()
	noteSigner := func(skey string) note.Signer {
		tb.Helper()
		s, err := note.NewSigner(skey)
		if err != nil {
			tb.Fatalf("couldn't load test key: %v", err)
		}
		return s
	}
	w2, err := fnote.NewSignerForCosignatureV1(testW2SKey)
	if err != nil {
		tb.Fatalf("couldn't load test cosigning key: %v", err)
	}
	return checkpointSigners{log: noteSigner(testLogSKey), w1: noteSigner(testW1SKey), w2: w2, impostor: noteSigner(testImpostorSKey)}
}

// checkpointText is the body of a checkpoint note (c2sp.org/tlog-checkpoint).
func checkpointText(origin string, size uint64, hash []byte, ext ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(hash))
	for _, e := range ext {
		b.WriteString(e + "\n")
	}
	return b.String()
}

func signNote(tb testing.TB, text string, signers ...note.Signer) []byte {
	tb.Helper()
	raw, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		tb.Fatalf("couldn't sign note: %v", err)
	}
	return raw
}

// FuzzVerifyCheckpoint checks that VerifyCheckpoint never panics and never
// accepts a checkpoint the log did not sign or that lacks the witness
// quorum, whatever the bytes. Every text the log key signed is known to the
// test, and Ed25519 cannot be forged by mutation: an accepted checkpoint's
// text must be one of them, and independent checks of each witness's
// signature must reach the quorum.
func FuzzVerifyCheckpoint(f *testing.F) {
	s := newCheckpointSigners(f)
	root := sha256.Sum256([]byte("root"))
	signed := map[string]bool{}
	add := func(text string, signers ...note.Signer) {
		raw := signNote(f, text, signers...)
		for _, sg := range signers {
			if sg == s.log {
				signed[text] = true
			}
		}
		for q := range uint8(4) {
			f.Add(raw, q)
		}
	}
	texts := []string{
		checkpointText(testOrigin, 0, sha256.New().Sum(nil)),
		checkpointText(testOrigin, 7, root[:]),
		checkpointText(testOrigin, 18446744073709551615, root[:], "extension line"),
		checkpointText("parley.test/bravo", 7, root[:]),
		checkpointText(testOrigin, 7, root[:16]),
	}
	for _, text := range texts {
		add(text, s.log)
		add(text, s.log, s.w1)
		add(text, s.log, s.w2)
		add(text, s.log, s.w1, s.w2)
		add(text, s.w1, s.w2)
		add(text, s.impostor, s.w1, s.w2)
	}
	// Duplicated cosignature lines must not count twice.
	dup := signNote(f, texts[1], s.log, s.w2)
	sigs := dup[bytes.Index(dup, []byte("\n\n"))+2:]
	lines := bytes.SplitAfter(sigs, []byte("\n"))
	f.Add(append(bytes.Clone(dup), lines[len(lines)-2]...), uint8(2))
	f.Add([]byte{}, uint8(0))
	f.Add([]byte("\n\n"), uint8(0))

	logV, err := note.NewVerifier(testLogVKey)
	if err != nil {
		f.Fatal(err)
	}
	w1V, err := fnote.NewVerifier(testW1VKey)
	if err != nil {
		f.Fatal(err)
	}
	w2V, err := fnote.NewVerifier(testW2VKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte, quorum uint8) {
		keys := client.LogKeys{Origin: testOrigin, CheckpointKey: testLogVKey, WitnessKeys: []string{testW1VKey, testW2VKey}, Quorum: int(quorum % 4)}
		cp, err := client.VerifyCheckpoint(raw, keys)
		if err != nil {
			if cp != nil {
				t.Fatalf("got checkpoint %+v with error %v", cp, err)
			}
			if !errors.Is(err, client.ErrCheckpoint) {
				t.Fatalf("got error %v, want one wrapping ErrCheckpoint", err)
			}
			return
		}
		n, err := note.Open(raw, note.VerifierList(logV))
		if err != nil {
			t.Fatalf("accepted a checkpoint whose log signature does not verify on its own: %v", err)
		}
		if !signed[n.Text] {
			t.Fatalf("accepted a checkpoint text the log never signed: %q", n.Text)
		}
		if cp.Origin != testOrigin {
			t.Fatalf("got origin %q, want %q", cp.Origin, testOrigin)
		}
		if !strings.HasPrefix(n.Text, string(cp.Marshal())) {
			t.Fatalf("got checkpoint %+v, which is not what the signed text %q says", cp, n.Text)
		}
		cosigned := 0
		for _, v := range []note.Verifier{w1V, w2V} {
			if wn, err := note.Open(raw, note.VerifierList(v)); err == nil && len(wn.Sigs) > 0 {
				cosigned++
			}
		}
		if cosigned < keys.Quorum {
			t.Fatalf("accepted a checkpoint with %d valid witness cosignatures, want at least %d", cosigned, keys.Quorum)
		}
	})
}
