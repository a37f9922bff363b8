package server

import (
	"regexp"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// TestSubmittedBodyRules guards submit's shortcut of not validating an
// operator's body again (see Node.submit): the interceptor validates the
// SubmitRequest as of the call, the verifier a statement's body as of its
// issued_at, so they agree only while no rule of a body depends on the time
// (protovalidate's gt_now, lt_now and within, or now in a CEL expression).
func TestSubmittedBodyRules(t *testing.T) {
	timeRule := regexp.MustCompile(`\b(gt_now|lt_now|within|now)\b`)
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		text := prototext.Format(protodesc.ToDescriptorProto(md))
		if m := timeRule.FindString(text); m != "" {
			t.Errorf("%s has a rule that depends on the time (%q): submit must validate bodies as of issued_at", md.FullName(), m)
		}
		fields := md.Fields()
		for i := range fields.Len() {
			if f := fields.Get(i); f.Message() != nil {
				walk(f.Message())
			}
		}
	}
	walk((&parleyv1.Body{}).ProtoReflect().Descriptor())
	if len(seen) < 10 {
		t.Fatalf("walked %d messages from Body, want the whole body schema", len(seen))
	}
}
