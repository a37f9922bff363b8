package server

import (
	"strings"
	"testing"
)

// FuzzParseFindingsToken feeds ListFindings page tokens, which come from
// callers, to the parser: it must never panic, must refuse what is not a
// token's length, and what it accepts must encode back to a token that
// parses to the same value.
func FuzzParseFindingsToken(f *testing.F) {
	f.Add(findingsToken{at: 1_700_000_000_000_000_000, size: 42, offset: 1000, query: 7}.String())
	f.Add(findingsToken{at: -1, size: ^uint64(0), offset: ^uint64(0), query: ^uint64(0)}.String())
	f.Add("")
	f.Add("AAAA")
	f.Add(strings.Repeat("_", 43))
	f.Add(strings.Repeat("=", 44))
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseFindingsToken(s)
		if err != nil {
			if !strings.Contains(err.Error(), "next_page_token") {
				t.Errorf("refusal %q does not say what to pass instead", err)
			}
			return
		}
		again, err := parseFindingsToken(tok.String())
		if err != nil || again != tok {
			t.Fatalf("token %q parsed to %+v, re-encoded as %q, parsed again to %+v, %v", s, tok, tok.String(), again, err)
		}
	})
}
