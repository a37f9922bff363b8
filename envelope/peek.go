package envelope

import (
	"google.golang.org/protobuf/encoding/protowire"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// Header is what PeekHeader reads of a statement's header.
type Header struct {
	Sender string
	Seq    uint64
	Prev   []byte // aliases the envelope's bytes
}

// PeekHeader reads the sender, seq and prev of the statement an envelope
// carries, walking only the wire format down to the header: it decodes
// nothing else and checks neither the signature nor the encoding. Use it
// on envelopes already verified, such as entries read back from a node's
// own log, where a full Parse would decode every entry again just to learn
// whose it is. It reports false if the bytes are not well formed on that
// path. For an envelope Parse accepts, it returns Parse's header values
// (FuzzParse checks this).
func PeekHeader(raw []byte) (Header, bool) {
	r, ok := PeekRawHeader(raw)
	if !ok {
		return Header{}, false
	}
	return Header{Sender: string(r.Sender), Seq: r.Seq, Prev: r.Prev}, true
}

// RawHeader is what PeekRawHeader reads of a statement's header. Its
// slices alias the envelope's bytes.
type RawHeader struct {
	Sender []byte
	Seq    uint64
	Prev   []byte
}

// PeekRawHeader is PeekHeader without copying the sender out of the
// envelope, for a reader of many entries (a mediator's audit). When it
// reports false, its RawHeader is the zero value.
func PeekRawHeader(raw []byte) (RawHeader, bool) {
	payload, ok := PeekPayload(raw)
	if !ok {
		return RawHeader{}, false
	}
	header, ok := firstBytes(payload, 1)
	if !ok {
		return RawHeader{}, false
	}
	var h RawHeader
	for b := header; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return RawHeader{}, false
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return RawHeader{}, false
		}
		// The value is well formed (ConsumeFieldValue checked it).
		switch {
		case num == 2 && typ == protowire.BytesType:
			h.Sender, _ = protowire.ConsumeBytes(b)
		case num == 3 && typ == protowire.VarintType:
			h.Seq, _ = protowire.ConsumeVarint(b)
		case num == 4 && typ == protowire.BytesType:
			h.Prev, _ = protowire.ConsumeBytes(b)
		}
		b = b[m:]
	}
	return h, true
}

// PeekKind reads which kind of body the statement an envelope carries has,
// walking the wire format only, as PeekHeader does: the field number of the
// body's oneof, which is its EntryKind. It reports false if the envelope has
// no well-formed body with a field. For an envelope Parse accepts, it
// returns the kind of the body Parse reads (FuzzParse checks this).
func PeekKind(raw []byte) (parleyv1.EntryKind, bool) {
	payload, ok := PeekPayload(raw)
	if !ok {
		return parleyv1.EntryKind_ENTRY_KIND_UNSPECIFIED, false
	}
	body, ok := firstBytes(payload, 2)
	if !ok || len(body) == 0 {
		return parleyv1.EntryKind_ENTRY_KIND_UNSPECIFIED, false
	}
	// A canonical body holds one field, its oneof's.
	num, typ, n := protowire.ConsumeTag(body)
	if n < 0 || typ != protowire.BytesType {
		return parleyv1.EntryKind_ENTRY_KIND_UNSPECIFIED, false
	}
	return parleyv1.EntryKind(num), true
}

// PeekPayload returns the payload of an envelope (the statement's
// encoding), walking the wire format only: like PeekHeader, it checks
// nothing else. It reports false if the envelope has no well-formed
// payload field.
func PeekPayload(raw []byte) ([]byte, bool) {
	return firstBytes(raw, 1)
}

// firstBytes returns the value of the first length-delimited field num of
// the message b.
func firstBytes(b []byte, num protowire.Number) ([]byte, bool) {
	for len(b) > 0 {
		n, typ, m := protowire.ConsumeTag(b)
		if m < 0 {
			return nil, false
		}
		b = b[m:]
		if n == num && typ == protowire.BytesType {
			v, k := protowire.ConsumeBytes(b)
			return v, k >= 0
		}
		k := protowire.ConsumeFieldValue(n, typ, b)
		if k < 0 {
			return nil, false
		}
		b = b[k:]
	}
	return nil, false
}
