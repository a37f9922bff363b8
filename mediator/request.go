package mediator

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
)

// maxProofLines is the most consistency proof lines a client may send
// (c2sp.org/tlog-witness, add-checkpoint: "The client MUST NOT send more
// than 63 consistency proof lines").
const maxProofLines = 63

// hashSize is the size of an RFC 6962 (SHA-256) tree hash.
const hashSize = 32

// errMalformedRequest is returned, wrapped, by parseAddCheckpointRequest.
var errMalformedRequest = errors.New("malformed add-checkpoint request")

// addCheckpointRequest is the body of a tlog-witness add-checkpoint request.
type addCheckpointRequest struct {
	// OldSize is the size of the checkpoint the client believes the witness
	// cosigned last for the log.
	OldSize uint64
	// Proof is the consistency proof from OldSize to the checkpoint's size,
	// each element a 32-byte hash.
	Proof [][]byte
	// Checkpoint is the signed note, byte for byte as sent.
	Checkpoint []byte
}

// parseAddCheckpointRequest parses an add-checkpoint request body: an old
// size line, zero or more consistency proof lines, an empty line, and a
// checkpoint (c2sp.org/tlog-witness, add-checkpoint). It accepts only the
// canonical encoding, so a body that parses is exactly the one the client
// would produce for the parsed values. It checks the checkpoint only for
// being non-empty: verifying it is the caller's job.
func parseAddCheckpointRequest(body []byte) (*addCheckpointRequest, error) {
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return nil, fmt.Errorf("%w: missing old size line", errMalformedRequest)
	}
	sizeText, ok := bytes.CutPrefix(line, []byte("old "))
	if !ok {
		return nil, fmt.Errorf("%w: first line %q is not \"old <size>\"", errMalformedRequest, truncate(line))
	}
	oldSize, err := parseDecimal(sizeText)
	if err != nil {
		return nil, fmt.Errorf("%w: old size: %w", errMalformedRequest, err)
	}

	var proof [][]byte
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return nil, fmt.Errorf("%w: missing empty line before the checkpoint", errMalformedRequest)
		}
		if len(line) == 0 {
			break
		}
		if len(proof) == maxProofLines {
			return nil, fmt.Errorf("%w: more than %d consistency proof lines", errMalformedRequest, maxProofLines)
		}
		h, err := parseHash(line)
		if err != nil {
			return nil, fmt.Errorf("%w: consistency proof line %d: %w", errMalformedRequest, len(proof)+1, err)
		}
		proof = append(proof, h)
	}
	if len(rest) == 0 {
		return nil, fmt.Errorf("%w: missing checkpoint", errMalformedRequest)
	}
	return &addCheckpointRequest{OldSize: oldSize, Proof: proof, Checkpoint: rest}, nil
}

// parseDecimal parses an ASCII decimal with no sign and no leading zeroes
// (except for zero itself, "0").
func parseDecimal(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 1 && b[0] == '0' {
		return 0, fmt.Errorf("%q is not a canonical decimal", truncate(b))
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a canonical decimal", truncate(b))
		}
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", truncate(b))
	}
	return n, nil
}

// parseHash decodes the canonical standard base64 encoding of a 32-byte
// hash.
func parseHash(b []byte) ([]byte, error) {
	h := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Strict().Decode(h, b)
	if err != nil || n != hashSize {
		return nil, fmt.Errorf("%q is not the base64 of a %d-byte hash", truncate(b), hashSize)
	}
	// Strict decoding rejects non-zero padding bits, but it skips '\r';
	// comparing with the encoding rejects that too.
	if base64.StdEncoding.EncodeToString(h[:n]) != string(b) {
		return nil, fmt.Errorf("%q is not canonical base64", truncate(b))
	}
	return h[:n], nil
}

// truncate shortens client-supplied text quoted in errors.
func truncate(b []byte) []byte {
	const max = 64
	if len(b) > max {
		return b[:max]
	}
	return b
}
