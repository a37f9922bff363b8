package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"parley": func() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScript runs the end-to-end tests in testdata/*.txtar. Besides the
// standard commands, scripts may use
//
//	replace FILE OLD NEW   replace the one occurrence of OLD in FILE by NEW
//	mode FILE PERM         check that FILE has permission bits PERM (octal)
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"replace":    cmdReplace,
			"mode":       cmdMode,
			"corruptsig": cmdCorruptSig,
		},
	})
}

func cmdReplace(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! replace")
	}
	if len(args) != 3 {
		ts.Fatalf("usage: replace FILE OLD NEW")
	}
	data := ts.ReadFile(args[0])
	if n := strings.Count(data, args[1]); n != 1 {
		ts.Fatalf("%s contains %q %d times, want once", args[0], args[1], n)
	}
	data = strings.Replace(data, args[1], args[2], 1)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(data), 0o644))
}

// cmdCorruptSig changes the first character of PARTY's signature in an
// agreement FILE, whatever the (random) signature bytes are.
func cmdCorruptSig(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: corruptsig FILE PARTY")
	}
	lines := strings.Split(ts.ReadFile(args[0]), "\n")
	inParty := false
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "- party: ") {
			inParty = t == "- party: "+args[1]
		}
		if inParty && strings.HasPrefix(t, "sig: ") {
			j := strings.Index(l, "sig: ") + len("sig: ")
			c := byte('A')
			if l[j] == 'A' {
				c = 'B'
			}
			lines[i] = l[:j] + string(c) + l[j+1:]
			ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(strings.Join(lines, "\n")), 0o644))
			return
		}
	}
	ts.Fatalf("no signature of %s in %s", args[1], args[0])
}

func cmdMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: mode FILE PERM")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	got := fi.Mode().Perm()
	if (got == os.FileMode(want)) == neg {
		ts.Fatalf("%s has mode %s, want %s%s", args[0], got, map[bool]string{true: "not "}[neg], os.FileMode(want))
	}
	fmt.Fprintf(ts.Stdout(), "%s has mode %s\n", args[0], got)
}
