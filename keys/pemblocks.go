package keys

import (
	"bytes"
	"encoding/pem"
	"fmt"
)

// PEMBlocks decodes data as PEM blocks of type blockType and nothing else:
// only white space may come before, between and after them. pem.Decode on
// its own skips any text before a block, and a block it cannot parse,
// so a person reading the file could see one thing and the program use
// another. It returns the blocks' bytes, at least one, or an error that
// says what was wrong.
func PEMBlocks(data []byte, blockType string) ([][]byte, error) {
	var out [][]byte
	rest := data
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			break
		}
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, fmt.Errorf("unexpected data %s (want only %s PEM blocks)", where(len(out)), blockType)
		}
		block, next := pem.Decode(rest)
		// pem.Decode skips a block it cannot parse and returns a later
		// one: exactly one BEGIN line may have been consumed.
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
		return nil, fmt.Errorf("no PEM block found (want %s)", blockType)
	}
	return out, nil
}

func where(blocks int) string {
	if blocks == 0 {
		return "before the first PEM block"
	}
	return fmt.Sprintf("after PEM block %d", blocks)
}
