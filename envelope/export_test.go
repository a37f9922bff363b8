package envelope

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Canonical is the wire-format walk that Parse uses.
func Canonical(m proto.Message, raw []byte) bool { return canonical(m, raw) }

// Reencodes is the reference for Canonical: re-encode and compare.
func Reencodes(m proto.Message, raw []byte) bool { return reencodes(m, raw) }

// Walked reports whether Canonical walks messages of type md rather than
// re-encoding them.
func Walked(md protoreflect.MessageDescriptor) bool { return !schemaOf(md).fallback }
