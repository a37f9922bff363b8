package mediator

import (
	"bytes"
	"fmt"
	"testing"
)

// TestHashesMatchRFC6962 checks that the allocation-saving leaf and node
// hashes of the mirror are those of the RFC 6962 hasher.
func TestHashesMatchRFC6962(t *testing.T) {
	lh := newLeafHasher()
	var prev []byte
	for _, n := range []int{0, 1, 31, 32, 33, 55, 56, 64, 400, 5000} {
		raw := bytes.Repeat([]byte{byte(n)}, n)
		got, want := lh.hash(raw), hasher.HashLeaf(raw)
		if !bytes.Equal(got, want) {
			t.Errorf("leaf hash of %d bytes: got %x, want %x", n, got, want)
		}
		if prev != nil {
			if got, want := hashChildren(prev, want), hasher.HashChildren(prev, want); !bytes.Equal(got, want) {
				t.Errorf("node hash: got %x, want %x", got, want)
			}
		}
		prev = want
	}
	for _, c := range []struct{ l, r []byte }{{nil, nil}, {[]byte("a"), prev}, {prev, bytes.Repeat(prev, 2)}} {
		if got, want := hashChildren(c.l, c.r), hasher.HashChildren(c.l, c.r); !bytes.Equal(got, want) {
			t.Errorf("node hash of %s: got %x, want %x", fmt.Sprint(len(c.l), len(c.r)), got, want)
		}
	}
}
