package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/keys"
)

const agreementUsage = `Usage: parley agreement <subcommand> [flags] [arguments]

Agreement creates, signs and verifies the agreement file that every party
signs and every node and mediator loads. Subcommands:

  create  combine the parties' party.yaml (and mediators' mediator.yaml) files
          made by 'parley init' into an unsigned agreement
  sign    add a party's signature to an agreement file
  verify  report which parties signed an agreement file; fail unless all did

Run 'parley agreement <subcommand> -h' for the flags of a subcommand.
`

const agreementCreateUsage = `Usage: parley agreement create -id ID -title TITLE -out FILE [flags] PARTY.yaml... [-mediator MEDIATOR.yaml]...

Create writes a new, unsigned agreement to FILE ('-' for standard output)
from the parties' party.yaml files and the mediators' mediator.yaml files
made by 'parley init'. Every default (rule parameters, witness quorum) is
written out, so the text the parties sign says everything they agree to.
The agreement is validated before it is written. Create refuses to replace
an existing FILE unless -force is given.
`

const agreementSignUsage = `Usage: parley agreement sign -in FILE -party ID -key KEYREF [-out FILE] [-passphrase-file F]

Sign signs the agreement in FILE as party ID and writes it back (or to -out),
replacing an earlier signature of that party. KEYREF is the path of the
party's PEM signing key (signing.key made by 'parley init') or a KMS key URI
(awskms://, gcpkms://, azurekms://, hashivault://, if compiled in). The key
must be one that the agreement lists for the party. The passphrase of an
encrypted key is read from -passphrase-file, else from
$PARLEY_KEY_PASSPHRASE.
`

const agreementVerifyUsage = `Usage: parley agreement verify FILE

Verify checks every signature of the agreement in FILE over its exact signed
text and prints, one line per party, whether the party signed, is missing,
or signed badly. It exits with status 1 unless every party signed.
`

func init() {
	commands["agreement"] = &command{
		summary: "create, sign and verify the agreement file",
		usage:   agreementUsage,
		run:     runAgreement,
	}
}

// agreementSubcommands are the subcommands of 'parley agreement'.
var agreementSubcommands = map[string]func(ctx context.Context, env *Env, args []string) error{
	"create": runAgreementCreate,
	"sign":   runAgreementSign,
	"verify": runAgreementVerify,
}

func runAgreement(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing subcommand (want create, sign or verify)")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(env.Stdout, agreementUsage)
		return flag.ErrHelp
	}
	run, ok := agreementSubcommands[args[0]]
	if !ok {
		return usageErrorf("unknown subcommand %q (want create, sign or verify)", args[0])
	}
	if err := run(ctx, env, args[1:]); err != nil {
		return subcommandError{args[0], err}
	}
	return nil
}

func runAgreementCreate(ctx context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("agreement create")
	var (
		a             agreement.Agreement
		out           string
		from, until   string
		mediatorFiles listFlag
		force         bool
	)
	fs.StringVar(&a.ID, "id", "", "agreement `ID`: 1-64 of a-z, 0-9, '.', '-' (required)")
	fs.StringVar(&a.Title, "title", "", "agreement `TITLE` (required)")
	fs.StringVar(&out, "out", "", "`FILE` to write, '-' for standard output (required)")
	fs.StringVar(&from, "effective-from", "", "RFC 3339 `TIME` the agreement takes effect (default now)")
	fs.StringVar(&until, "effective-until", "", "RFC 3339 `TIME` the agreement ends (default open-ended)")
	fs.IntVar(&a.WitnessQuorum, "quorum", 0, "witness quorum `K`: how many mediators must cosign a checkpoint (default 1 with mediators)")
	fs.StringVar(&a.Rules.Set, "rules", agreement.SetVD2011, "rule `SET`: vd2011 or missile1988")
	fs.Var(&mediatorFiles, "mediator", "mediator.yaml `FILE` of a mediator; repeat for several")
	fs.BoolVar(&force, "force", false, "replace an existing -out file")
	partyFiles, err := env.parseFlags(fs, agreementCreateUsage, args)
	if err != nil {
		return err
	}
	switch {
	case a.ID == "" || a.Title == "" || out == "":
		return usageErrorf("-id, -title and -out are required")
	case len(partyFiles) == 0:
		return usageErrorf("no party files given (want the party.yaml of every party)")
	}
	if a.EffectiveFrom, err = parseTimeFlag("effective-from", from, time.Now()); err != nil {
		return err
	}
	if a.EffectiveUntil, err = parseTimeFlag("effective-until", until, time.Time{}); err != nil {
		return err
	}
	for _, f := range partyFiles {
		var p agreement.Party
		if err := decodeYAMLFile(f, &p); err != nil {
			return err
		}
		a.Parties = append(a.Parties, p)
	}
	for _, f := range mediatorFiles.vals {
		var m agreement.Mediator
		if err := decodeYAMLFile(f, &m); err != nil {
			return err
		}
		a.Mediators = append(a.Mediators, m)
	}
	data, err := agreement.Create(&a)
	if err != nil {
		return fmt.Errorf("couldn't create agreement: %w", err)
	}
	if out == "-" {
		_, err := env.Stdout.Write(data)
		return err
	}
	if err := writeFiles(".", []outFile{{out, data, 0o644}}, force); err != nil {
		return err
	}
	env.Logger.InfoContext(ctx, "created agreement", "agreement", a.ID, "parties", len(a.Parties), "mediators", len(a.Mediators), "path", out)
	return nil
}

func runAgreementSign(ctx context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("agreement sign")
	var in, out, party, keyRef, passphraseFile string
	fs.StringVar(&in, "in", "", "agreement `FILE` to sign (required)")
	fs.StringVar(&out, "out", "", "`FILE` to write the signed agreement to (default -in)")
	fs.StringVar(&party, "party", "", "`ID` of the signing party (required)")
	fs.StringVar(&keyRef, "key", "", "signing key `KEYREF`: a PEM file path or a KMS key URI (required)")
	fs.StringVar(&passphraseFile, "passphrase-file", "", "`FILE` holding the key's passphrase (default $"+passphraseEnv+")")
	pos, err := env.parseFlags(fs, agreementSignUsage, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usageErrorf("unexpected argument %q (give the agreement with -in)", pos[0])
	case in == "" || party == "" || keyRef == "":
		return usageErrorf("-in, -party and -key are required")
	}
	if out == "" {
		out = in
	}
	f, err := agreement.Load(in)
	if err != nil {
		return err
	}
	signer, err := keys.LoadSigner(ctx, keyRef, func() ([]byte, error) {
		p, err := readPassphrase(passphraseFile)
		if err == nil && p == nil {
			err = fmt.Errorf("%w (give -passphrase-file or set $%s)", keys.ErrPassphraseRequired, passphraseEnv)
		}
		return p, err
	})
	if err != nil {
		return err
	}
	if err := f.Sign(ctx, party, signer); err != nil {
		return err
	}
	if err := certs.WriteFileAtomic(out, f.Marshal(), 0o644); err != nil {
		return err
	}
	st, err := f.Verify()
	if err != nil {
		return err
	}
	env.Logger.InfoContext(ctx, "signed agreement", "agreement", f.Agreement.ID, "party", party, "path", out, "missing", st.Missing)
	return printStatus(env.Stdout, f, st)
}

func runAgreementVerify(ctx context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("agreement verify")
	pos, err := env.parseFlags(fs, agreementVerifyUsage, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("want exactly one agreement file, got %d arguments", len(pos))
	}
	f, err := agreement.Load(pos[0])
	if err != nil {
		return err
	}
	st, err := f.Verify()
	if err != nil {
		return err
	}
	if err := printStatus(env.Stdout, f, st); err != nil {
		return err
	}
	return f.RequireAllSigned()
}

// printStatus writes the agreement's id and digest, then one line per party:
// "signed ID", "missing ID" or "bad ID: reason".
func printStatus(w io.Writer, f *agreement.File, st agreement.Status) error {
	d := f.Digest()
	var b bytes.Buffer
	fmt.Fprintf(&b, "agreement %s %q sha256:%s\n", f.Agreement.ID, f.Agreement.Title, hex.EncodeToString(d[:]))
	for _, p := range st.Signed {
		fmt.Fprintf(&b, "signed  %s\n", p)
	}
	for _, p := range st.Missing {
		fmt.Fprintf(&b, "missing %s\n", p)
	}
	for _, bad := range st.Bad {
		fmt.Fprintf(&b, "bad     %s: key %s: %v\n", bad.Party, bad.KeyID, bad.Err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// parseTimeFlag parses the RFC 3339 value of flag name, returning def when
// it is empty.
func parseTimeFlag(name, value string, def time.Time) (time.Time, error) {
	if value == "" {
		return def.UTC().Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return time.Time{}, usageErrorf("invalid -%s %q: want an RFC 3339 time such as 2026-01-01T00:00:00Z", name, value)
	}
	return t, nil
}

// decodeYAMLFile decodes the single YAML document in path into v, strictly:
// unknown fields are errors.
func decodeYAMLFile(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("couldn't read %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("couldn't decode %s: file is empty", path)
		}
		return fmt.Errorf("couldn't decode %s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("couldn't decode %s: want one YAML document", path)
	}
	return nil
}
