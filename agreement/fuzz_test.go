package agreement_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/agreement/agreementtest"
)

// FuzzParse checks that Parse never panics and that what it accepts
// survives Marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	fx := agreementtest.New(f, 2, 1)
	f.Add(fx.SignedFile(f).Marshal())
	f.Add(fx.File(f, "alpha").Marshal())
	f.Add(fx.Bytes(f))
	f.Add([]byte("id: x\n--- # signatures\nsignatures: []\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := agreement.Parse(data)
		if err != nil {
			return
		}
		if _, err := file.Verify(); err != nil {
			t.Fatalf("got error %v from Verify of a parsed file, want a status", err)
		}
		out := file.Marshal()
		again, err := agreement.Parse(out)
		if err != nil {
			t.Fatalf("got error %v parsing the marshalled file, want it accepted", err)
		}
		if !bytes.Equal(again.Unsigned, file.Unsigned) {
			t.Fatalf("got signed text %q after a round trip, want %q", again.Unsigned, file.Unsigned)
		}
		if len(file.Signatures) > 0 && !reflect.DeepEqual(again.Signatures, file.Signatures) {
			t.Fatalf("got signatures %+v after a round trip, want %+v", again.Signatures, file.Signatures)
		}
		if out2 := again.Marshal(); !bytes.Equal(out2, out) {
			t.Fatalf("got Marshal output %q after a round trip, want %q", out2, out)
		}
	})
}
