package server

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// statementReader decodes, from a logged statement's encoding, the fields
// the rules read of an activity notification or a receipt into messages it
// reuses from one statement to the next, walking the wire format: the
// reflective decoding of a whole statement allocated about 1.2 kB for each
// entry of a log the rules judged (purpose, level of command, formations,
// stages and the area's polygon included, which no rule reads), 1.2 GB
// for a million entries, and the collector's work with it. What it returns
// is valid until its next call; rules.Compact copies what it keeps.
//
// It reads only well-formed encodings of the expected shape and reports
// false for anything else (another kind of body, a field given twice, a
// field of an unexpected wire type, a string that is not UTF-8), which the
// caller decodes in full instead. The fields it skips are checked only for
// their wire format: every logged entry was validated when it was
// accepted. For every encoding that proto.Unmarshal decodes, what it
// returns compacts as the decoded statement does (FuzzStatementReader).
type statementReader struct {
	st                 parleyv1.Statement
	header             parleyv1.Header
	issued, start, end timestamppb.Timestamp
	body               parleyv1.Body
	note               parleyv1.Body_Notification
	notification       parleyv1.ActivityNotification
	area               parleyv1.Area
	names              []string
	forces             parleyv1.Forces
	rcpt               parleyv1.Body_Receipt
	receipt            parleyv1.Receipt
	acks               []*parleyv1.Acknowledgement
	ackPool            []parleyv1.Acknowledgement
	ackTimes           []timestamppb.Timestamp
}

// read decodes payload, a statement's encoding, if it is a notification or
// a receipt of the expected shape.
func (r *statementReader) read(payload []byte) (*parleyv1.Statement, bool) {
	r.st.Reset()
	var header, body []byte
	var f fieldReader
	if !fields(payload, func(num protowire.Number, typ protowire.Type, v []byte) (ok bool) {
		switch num {
		case 1:
			header, ok = f.message(num, typ, v)
		case 2:
			body, ok = f.message(num, typ, v)
		default:
			ok = true
		}
		return ok
	}) || body == nil {
		return nil, false
	}
	if header != nil {
		if !r.readHeader(header) {
			return nil, false
		}
		r.st.Header = &r.header
	}
	kind, value, ok := onlyField(body)
	if !ok {
		return nil, false
	}
	r.body.Reset()
	switch kind {
	case 1:
		if !r.readNotification(value) {
			return nil, false
		}
		r.note.Notification = &r.notification
		r.body.Kind = &r.note
	case 8:
		if !r.readReceipt(value) {
			return nil, false
		}
		r.rcpt.Receipt = &r.receipt
		r.body.Kind = &r.rcpt
	default:
		return nil, false
	}
	r.st.Body = &r.body
	return &r.st, true
}

func (r *statementReader) readHeader(b []byte) bool {
	h := &r.header
	h.Reset()
	var f fieldReader
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte) (ok bool) {
		switch num {
		case 2:
			h.Sender, ok = f.text(num, typ, v)
		case 3:
			h.Seq, ok = f.varint(num, typ, v)
		case 5:
			h.IssuedAt, ok = f.timestamp(num, typ, v, &r.issued)
		default:
			ok = true
		}
		return ok
	})
}

func (r *statementReader) readNotification(b []byte) bool {
	n := &r.notification
	n.Reset()
	var f fieldReader
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte) (ok bool) {
		var (
			x   uint64
			msg []byte
		)
		switch num {
		case 1:
			n.Designation, ok = f.text(num, typ, v)
		case 2:
			x, ok = f.varint(num, typ, v)
			n.Type = parleyv1.ActivityType(int32(x))
		case 5:
			n.HostState, ok = f.text(num, typ, v)
		case 7:
			n.Start, ok = f.timestamp(num, typ, v, &r.start)
		case 8:
			n.End, ok = f.timestamp(num, typ, v, &r.end)
		case 9:
			msg, ok = f.message(num, typ, v)
			n.Area = &r.area
			return ok && r.readArea(msg)
		case 10:
			msg, ok = f.message(num, typ, v)
			n.Forces = &r.forces
			return ok && r.readForces(msg)
		case 13:
			x, ok = f.varint(num, typ, v)
			n.Alert = x != 0
		default:
			ok = true
		}
		return ok
	})
}

// readArea reads the place names of an area.
func (r *statementReader) readArea(b []byte) bool {
	r.area.Reset()
	names := r.names[:0]
	ok := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if num != 1 {
			return true
		}
		name, ok := text(typ, v)
		names = append(names, name)
		return ok
	})
	r.names = names
	if len(names) > 0 {
		r.area.PlaceNames = names
	}
	return ok
}

// readForces reads the numbers of a Forces message.
func (r *statementReader) readForces(b []byte) bool {
	fo := &r.forces
	fo.Reset()
	dst := [...]*uint32{1: &fo.Troops, 2: &fo.BattleTanks, 3: &fo.Acvs, 4: &fo.Artillery, 5: &fo.AtgmLaunchers,
		6: &fo.CombatHelicopters, 7: &fo.FixedWingSorties, 8: &fo.AirborneTroops, 9: &fo.AmphibiousTroops}
	var f fieldReader
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if num < 1 || int(num) >= len(dst) {
			return true
		}
		x, ok := f.varint(num, typ, v)
		*dst[num] = uint32(x)
		return ok
	})
}

func (r *statementReader) readReceipt(b []byte) bool {
	r.receipt.Reset()
	var raws [][]byte
	if !fields(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if num != 1 {
			return true
		}
		if typ != protowire.BytesType {
			return false
		}
		a, _ := protowire.ConsumeBytes(v)
		raws = append(raws, a)
		return true
	}) {
		return false
	}
	if cap(r.ackPool) < len(raws) {
		r.ackPool = make([]parleyv1.Acknowledgement, len(raws))
		r.ackTimes = make([]timestamppb.Timestamp, len(raws))
	}
	r.acks = r.acks[:0]
	for i, raw := range raws {
		a := &r.ackPool[i]
		a.Reset()
		var f fieldReader
		if !fields(raw, func(num protowire.Number, typ protowire.Type, v []byte) (ok bool) {
			switch num {
			case 1:
				a.Sender, ok = f.text(num, typ, v)
			case 2:
				a.Seq, ok = f.varint(num, typ, v)
			case 3:
				a.Digest, ok = f.message(num, typ, v)
			case 4:
				a.ReceivedAt, ok = f.timestamp(num, typ, v, &r.ackTimes[i])
			default:
				ok = true
			}
			return ok
		}) {
			return false
		}
		r.acks = append(r.acks, a)
	}
	if len(r.acks) > 0 {
		r.receipt.Acks = r.acks
	}
	return true
}

// fieldReader reads the fields of one message that statementReader
// decodes, refusing a field given twice (which proto would merge or
// replace) and a field of a wire type other than its own. Fields are
// numbered below 64.
type fieldReader struct{ seen uint64 }

// first reports whether field num is read for the first time.
func (f *fieldReader) first(num protowire.Number) bool {
	bit := uint64(1) << num
	if f.seen&bit != 0 {
		return false
	}
	f.seen |= bit
	return true
}

// varint reads a varint field.
func (f *fieldReader) varint(num protowire.Number, typ protowire.Type, v []byte) (uint64, bool) {
	if typ != protowire.VarintType || !f.first(num) {
		return 0, false
	}
	x, _ := protowire.ConsumeVarint(v)
	return x, true
}

// message reads a length-delimited field (a message or bytes): its value
// aliases v.
func (f *fieldReader) message(num protowire.Number, typ protowire.Type, v []byte) ([]byte, bool) {
	if typ != protowire.BytesType || !f.first(num) {
		return nil, false
	}
	b, _ := protowire.ConsumeBytes(v)
	if b == nil {
		b = []byte{} // present, if empty
	}
	return b, true
}

// text reads a string field (a copy).
func (f *fieldReader) text(num protowire.Number, typ protowire.Type, v []byte) (string, bool) {
	if !f.first(num) {
		return "", false
	}
	return text(typ, v)
}

// timestamp reads a google.protobuf.Timestamp field into ts and returns
// ts.
func (f *fieldReader) timestamp(num protowire.Number, typ protowire.Type, v []byte, ts *timestamppb.Timestamp) (*timestamppb.Timestamp, bool) {
	b, ok := f.message(num, typ, v)
	if !ok {
		return nil, false
	}
	ts.Reset()
	var g fieldReader
	return ts, fields(b, func(num protowire.Number, typ protowire.Type, v []byte) (ok bool) {
		var x uint64
		switch num {
		case 1:
			x, ok = g.varint(num, typ, v)
			ts.Seconds = int64(x)
		case 2:
			x, ok = g.varint(num, typ, v)
			ts.Nanos = int32(x)
		default:
			ok = true
		}
		return ok
	})
}

// text reads the value of a string field, refusing one that is not UTF-8
// (as proto.Unmarshal does).
func text(typ protowire.Type, v []byte) (string, bool) {
	if typ != protowire.BytesType {
		return "", false
	}
	b, _ := protowire.ConsumeBytes(v)
	if !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

// fields calls fn with each field of the message b: its number, wire type
// and encoded value (as protowire.ConsumeFieldValue delimits it). It
// reports false if b is not well formed or fn returns false.
func fields(b []byte, fn func(protowire.Number, protowire.Type, []byte) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return false
		}
		if !fn(num, typ, b[:m]) {
			return false
		}
		b = b[m:]
	}
	return true
}

// onlyField returns the number and value of the one field of b, which must
// be length-delimited.
func onlyField(b []byte) (protowire.Number, []byte, bool) {
	var (
		num   protowire.Number
		value []byte
		count int
	)
	ok := fields(b, func(n protowire.Number, typ protowire.Type, v []byte) bool {
		count++
		num = n
		if typ != protowire.BytesType {
			return false
		}
		value, _ = protowire.ConsumeBytes(v)
		return true
	})
	return num, value, ok && count == 1
}
