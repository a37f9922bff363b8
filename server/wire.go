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
	r.header.Reset()
	r.body.Reset()
	var header, body []byte
	ok := fields(payload, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		switch num {
		case 1:
			return once(&header, typ, v)
		case 2:
			return once(&body, typ, v)
		}
		return true
	})
	if !ok || body == nil {
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
	switch kind {
	case 1:
		r.notification.Reset()
		if !r.readNotification(value) {
			return nil, false
		}
		r.note.Notification = &r.notification
		r.body.Kind = &r.note
	case 8:
		r.receipt.Reset()
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
	var sender, issued []byte
	var seq uint64
	seen := 0
	ok := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		switch num {
		case 2:
			return once(&sender, typ, v) && utf8.Valid(sender)
		case 3:
			if typ != protowire.VarintType || seen&1 != 0 {
				return false
			}
			seen |= 1
			seq, _ = protowire.ConsumeVarint(v)
		case 5:
			return once(&issued, typ, v)
		}
		return true
	})
	if !ok {
		return false
	}
	r.header.Sender, r.header.Seq = string(sender), seq
	if issued != nil {
		if !readTimestamp(&r.issued, issued) {
			return false
		}
		r.header.IssuedAt = &r.issued
	}
	return true
}

func (r *statementReader) readNotification(b []byte) bool {
	n := &r.notification
	var designation, host, start, end, area, forces []byte
	seen := 0
	ok := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		switch num {
		case 1:
			return once(&designation, typ, v) && utf8.Valid(designation)
		case 2:
			if typ != protowire.VarintType || seen&1 != 0 {
				return false
			}
			seen |= 1
			t, _ := protowire.ConsumeVarint(v)
			n.Type = parleyv1.ActivityType(int32(t))
		case 5:
			return once(&host, typ, v) && utf8.Valid(host)
		case 7:
			return once(&start, typ, v)
		case 8:
			return once(&end, typ, v)
		case 9:
			return once(&area, typ, v)
		case 10:
			return once(&forces, typ, v)
		case 13:
			if typ != protowire.VarintType || seen&2 != 0 {
				return false
			}
			seen |= 2
			a, _ := protowire.ConsumeVarint(v)
			n.Alert = protowire.DecodeBool(a)
		}
		return true
	})
	if !ok {
		return false
	}
	n.Designation, n.HostState = string(designation), string(host)
	if start != nil {
		if !readTimestamp(&r.start, start) {
			return false
		}
		n.Start = &r.start
	}
	if end != nil {
		if !readTimestamp(&r.end, end) {
			return false
		}
		n.End = &r.end
	}
	if area != nil {
		r.area.Reset()
		r.area.PlaceNames = r.names[:0]
		if !fields(area, func(num protowire.Number, typ protowire.Type, v []byte) bool {
			if num != 1 {
				return true
			}
			if typ != protowire.BytesType {
				return false
			}
			name, _ := protowire.ConsumeBytes(v)
			if !utf8.Valid(name) {
				return false
			}
			r.area.PlaceNames = append(r.area.PlaceNames, string(name))
			return true
		}) {
			return false
		}
		r.names = r.area.PlaceNames
		n.Area = &r.area
	}
	if forces != nil {
		r.forces.Reset()
		set := [10]bool{}
		if !fields(forces, func(num protowire.Number, typ protowire.Type, v []byte) bool {
			if num < 1 || num > 9 {
				return true
			}
			if typ != protowire.VarintType || set[num] {
				return false
			}
			set[num] = true
			x, _ := protowire.ConsumeVarint(v)
			f, u := &r.forces, uint32(x)
			switch num {
			case 1:
				f.Troops = u
			case 2:
				f.BattleTanks = u
			case 3:
				f.Acvs = u
			case 4:
				f.Artillery = u
			case 5:
				f.AtgmLaunchers = u
			case 6:
				f.CombatHelicopters = u
			case 7:
				f.FixedWingSorties = u
			case 8:
				f.AirborneTroops = u
			case 9:
				f.AmphibiousTroops = u
			}
			return true
		}) {
			return false
		}
		n.Forces = &r.forces
	}
	return true
}

func (r *statementReader) readReceipt(b []byte) bool {
	r.acks = r.acks[:0]
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
	for i, raw := range raws {
		a := &r.ackPool[i]
		a.Reset()
		var sender, digest, received []byte
		seen := false
		if !fields(raw, func(num protowire.Number, typ protowire.Type, v []byte) bool {
			switch num {
			case 1:
				return once(&sender, typ, v) && utf8.Valid(sender)
			case 2:
				if typ != protowire.VarintType || seen {
					return false
				}
				seen = true
				a.Seq, _ = protowire.ConsumeVarint(v)
			case 3:
				return once(&digest, typ, v)
			case 4:
				return once(&received, typ, v)
			}
			return true
		}) {
			return false
		}
		a.Sender, a.Digest = string(sender), digest
		if received != nil {
			if !readTimestamp(&r.ackTimes[i], received) {
				return false
			}
			a.ReceivedAt = &r.ackTimes[i]
		}
		r.acks = append(r.acks, a)
	}
	if len(r.acks) > 0 {
		r.receipt.Acks = r.acks
	}
	return true
}

// readTimestamp decodes a google.protobuf.Timestamp into ts.
func readTimestamp(ts *timestamppb.Timestamp, b []byte) bool {
	ts.Reset()
	seen := 0
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if num != 1 && num != 2 {
			return true
		}
		if typ != protowire.VarintType || seen&int(num) != 0 {
			return false
		}
		seen |= int(num)
		x, _ := protowire.ConsumeVarint(v)
		if num == 1 {
			ts.Seconds = int64(x)
		} else {
			ts.Nanos = int32(x)
		}
		return true
	})
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

// once sets *dst to the bytes of a length-delimited value v, reporting
// false if it is of another wire type or *dst was set before (a field
// given twice, which proto would merge or replace).
func once(dst *[]byte, typ protowire.Type, v []byte) bool {
	if typ != protowire.BytesType || *dst != nil {
		return false
	}
	b, _ := protowire.ConsumeBytes(v)
	if b == nil {
		b = []byte{}
	}
	*dst = b
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
