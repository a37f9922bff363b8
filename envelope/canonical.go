package envelope

import (
	"bytes"
	"math"
	"slices"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// This file decides whether a message's bytes are its canonical encoding:
// what proto.MarshalOptions{Deterministic: true} produces from what
// unmarshaling them (discarding unknown fields) yields. The reference
// check, reencodes, does exactly that; canonical walks the wire format
// instead, which costs a fraction of re-encoding. The walk holds the bytes
// to the rules by which the Go protobuf runtime encodes a message of the
// schema:
//
//   - fields are written once each, in the runtime's order: the fields outside
//     any oneof by number, then the oneofs in declaration order, each with
//     at most one member; the records of a repeated field are consecutive;
//   - every tag, length and varint has its shortest encoding, and a field
//     has the wire type of its kind;
//   - a varint is the encoding of a value of its field's type (a negative
//     int32 sign-extended to 10 bytes, a bool 0 or 1, a uint32 below 2^32);
//   - a scalar without presence (a proto3 field neither optional nor in a
//     oneof) is absent when zero; an element of a repeated field, a message
//     and a field with presence are written whatever their value;
//   - no field is unknown to the schema.
//
// A message type that uses anything else (packed or map fields, groups,
// closed enums, fixed-width integers other than double, zigzag varints,
// float) is checked by re-encoding. TestCanonicalSchema checks that
// Envelope and Statement need no fallback, and FuzzCanonical holds the walk
// equal to reencodes.

// reencodes reports whether raw is the deterministic encoding of m. It
// computes m's size first (a mismatch is the cheap, common failure) and then
// marshals with the cached sizes into a pooled buffer.
func reencodes(m proto.Message, raw []byte) bool {
	if marshal.Size(m) != len(raw) {
		return false
	}
	bp := bufPool.Get().(*[]byte)
	b, err := marshalCached.MarshalAppend((*bp)[:0], m)
	ok := err == nil && bytes.Equal(b, raw)
	if cap(b) <= MaxSize {
		*bp = b[:0]
		bufPool.Put(bp)
	}
	return ok
}

// marshalCached is marshal reusing the sizes that a preceding Size call
// cached in the message.
var marshalCached = proto.MarshalOptions{Deterministic: true, UseCachedSize: true}

// bufPool holds buffers for reencodes.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// canonical reports whether raw, which unmarshals into m, is the canonical
// encoding of m.
func canonical(m proto.Message, raw []byte) bool {
	s := schemaOf(m.ProtoReflect().Descriptor())
	if s.fallback {
		return reencodes(m, raw)
	}
	return s.walk(raw)
}

// IsCanonical reports whether raw is the canonical encoding of a message of
// m's type, as Parse requires of an envelope and its statement: whether
// decoding raw (dropping unknown fields) and encoding the result
// deterministically gives raw back. m only names the type. A node signing a
// statement it was sent as a message uses it on that message's encoding,
// which keeps any unknown fields it arrived with: the walk refuses them.
func IsCanonical(m proto.Message, raw []byte) bool {
	s := schemaOf(m.ProtoReflect().Descriptor())
	if !s.fallback {
		return s.walk(raw)
	}
	fresh := m.ProtoReflect().New().Interface()
	return unmarshal.Unmarshal(raw, fresh) == nil && reencodes(fresh, raw)
}

// wireSchema is what the walk needs to know of one message type.
type wireSchema struct {
	// fields is indexed by field number; nil for unknown numbers.
	fields []*wireField
	// oneofs is the number of (non-synthetic) oneofs.
	oneofs int
	// fallback is set when the message or one it contains has a field the
	// walk does not handle.
	fallback bool
}

// wireField is one field of a wireSchema.
type wireField struct {
	kind protoreflect.Kind
	wire protowire.Type
	// rank is the field's place in the order the runtime writes fields.
	rank     int
	repeated bool
	// omitZero is set for scalars without presence: absent when zero.
	omitZero bool
	// oneof is the index of the field's oneof plus one, or 0.
	oneof int
	// msg is the schema of a message field.
	msg *wireSchema
}

var schemas sync.Map // protoreflect.FullName → *wireSchema

// schemaOf returns the schema of the message type md.
func schemaOf(md protoreflect.MessageDescriptor) *wireSchema {
	if s, ok := schemas.Load(md.FullName()); ok {
		return s.(*wireSchema)
	}
	s := buildSchema(md, map[protoreflect.FullName]*wireSchema{})
	actual, _ := schemas.LoadOrStore(md.FullName(), s)
	return actual.(*wireSchema)
}

// buildSchema builds the schema of md; building maps the types under
// construction, for recursive types.
func buildSchema(md protoreflect.MessageDescriptor, building map[protoreflect.FullName]*wireSchema) *wireSchema {
	if s, ok := building[md.FullName()]; ok {
		return s
	}
	s := &wireSchema{}
	building[md.FullName()] = s
	fds := md.Fields()
	order := make([]protoreflect.FieldDescriptor, fds.Len())
	maxNum := protoreflect.FieldNumber(0)
	for i := range fds.Len() {
		order[i] = fds.Get(i)
		maxNum = max(maxNum, order[i].Number())
	}
	if maxNum > 1<<16 {
		s.fallback = true
		return s
	}
	// The runtime's order: fields outside a (real) oneof by number, then
	// the oneofs by declaration index, each by number.
	oneofOf := func(fd protoreflect.FieldDescriptor) int {
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			return od.Index() + 1
		}
		return 0
	}
	slices.SortFunc(order, func(x, y protoreflect.FieldDescriptor) int {
		if ox, oy := oneofOf(x), oneofOf(y); ox != oy {
			return ox - oy // 0 (no oneof) sorts first
		}
		return int(x.Number()) - int(y.Number())
	})
	s.fields = make([]*wireField, maxNum+1)
	for rank, fd := range order {
		f := &wireField{kind: fd.Kind(), rank: rank, repeated: fd.Cardinality() == protoreflect.Repeated, oneof: oneofOf(fd)}
		s.oneofs = max(s.oneofs, f.oneof)
		f.omitZero = !f.repeated && !fd.HasPresence()
		switch {
		case fd.IsMap() || fd.IsPacked() || fd.Cardinality() == protoreflect.Required:
			s.fallback = true
		}
		switch fd.Kind() {
		case protoreflect.BoolKind, protoreflect.Int32Kind, protoreflect.Uint32Kind, protoreflect.Int64Kind, protoreflect.Uint64Kind:
			f.wire = protowire.VarintType
		case protoreflect.EnumKind:
			f.wire = protowire.VarintType
			if fd.Enum().IsClosed() {
				s.fallback = true
			}
		case protoreflect.DoubleKind:
			f.wire = protowire.Fixed64Type
		case protoreflect.StringKind, protoreflect.BytesKind:
			f.wire = protowire.BytesType
		case protoreflect.MessageKind:
			f.wire = protowire.BytesType
			f.msg = buildSchema(fd.Message(), building)
		default:
			s.fallback = true
		}
		s.fields[fd.Number()] = f
	}
	if s.oneofs > 64 {
		s.fallback = true
	}
	// A message containing one that falls back falls back too.
	for _, f := range s.fields {
		if f != nil && f.msg != nil && f.msg.fallback {
			s.fallback = true
		}
	}
	return s
}

// walk reports whether b is a canonical encoding of a message of schema s.
func (s *wireSchema) walk(b []byte) bool {
	last := -1 // rank of the previous field
	var oneofs uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || n != protowire.SizeTag(num) || int(num) >= len(s.fields) {
			return false
		}
		f := s.fields[num]
		if f == nil || typ != f.wire {
			return false
		}
		b = b[n:]
		switch {
		case f.rank > last:
			if f.oneof != 0 {
				bit := uint64(1) << (f.oneof - 1)
				if oneofs&bit != 0 {
					return false
				}
				oneofs |= bit
			}
			last = f.rank
		case f.rank == last && f.repeated:
			// The next record of the same repeated field.
		default:
			return false
		}
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 || n != protowire.SizeVarint(v) || f.omitZero && v == 0 || !varintFits(f.kind, v) {
				return false
			}
			b = b[n:]
		case protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			// A double without presence is absent when +0.0 (all bits 0);
			// -0.0 is written.
			if n < 0 || f.omitZero && v == 0 {
				return false
			}
			b = b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || n-len(v) != protowire.SizeVarint(uint64(len(v))) || f.omitZero && len(v) == 0 {
				return false
			}
			if f.msg != nil && !f.msg.walk(v) {
				return false
			}
			b = b[n:]
		default:
			return false
		}
	}
	return true
}

// varintFits reports whether v is how the runtime writes a value of kind
// k: exactly what decoding v as k and encoding the result gives back.
func varintFits(k protoreflect.Kind, v uint64) bool {
	switch k {
	case protoreflect.BoolKind:
		return v <= 1
	case protoreflect.Int32Kind, protoreflect.EnumKind:
		return v == uint64(int64(int32(v)))
	case protoreflect.Uint32Kind:
		return v <= math.MaxUint32
	case protoreflect.Int64Kind, protoreflect.Uint64Kind:
		return true
	}
	return false
}
