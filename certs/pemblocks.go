package certs

import (
	"bytes"
	"encoding/pem"
	"fmt"
)

// PEMBlocks decodes data as PEM blocks of type blockType and nothing else:
// only white space may come before, between and after them. pem.Decode on
// its own skips any text before a block, and a block it cannot parse, so a
// person reading the file could see one thing and the program use another.
// It returns at least one block's bytes, or an error that says what was
// wrong; what names the blocks in errors ("certificate", "CRL").
func PEMBlocks(data []byte, blockType, what string) ([][]byte, error) {
	var out [][]byte
	rest := data
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			break
		}
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			if len(out) == 0 {
				return nil, fmt.Errorf("unexpected data before the first PEM %s (want only %s blocks)", what, blockType)
			}
			return nil, fmt.Errorf("unexpected data after PEM %s %d (want only %s blocks)", what, len(out), blockType)
		}
		block, next := pem.Decode(rest)
		if block == nil || bytes.Count(rest[:len(rest)-len(next)], []byte("-----BEGIN")) != 1 {
			return nil, fmt.Errorf("malformed PEM block %d", len(out)+1)
		}
		if block.Type != blockType {
			return nil, fmt.Errorf("PEM block %d is %q, want %q", len(out)+1, block.Type, blockType)
		}
		out = append(out, block.Bytes)
		rest = next
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM %s found", what)
	}
	return out, nil
}
