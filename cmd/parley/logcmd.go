package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/envelope"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/verifier"
)

const logUsage = `Usage: parley log <subcommand> [flags] [arguments]

Log reads a party's exchange log from its node and checks everything the
node says against the agreement: the checkpoint against the party's
checkpoint key and the mediators' witness quorum, every entry it shows
against an inclusion proof in that verified checkpoint, and the log's growth
against consistency proofs. It trusts nothing else the node says.
Subcommands:

  checkpoint   fetch and verify the latest checkpoint
  list         list entries, each proved included in the checkpoint
  show         show one entry: statement, envelope, signature and inclusion
  prove        prove one entry's inclusion and print the proof
  consistency  prove the current checkpoint consistent with a saved one
  export       write every entry as JSON lines, the input of 'parley verify'

Every subcommand dials party ID's node like 'parley notify' (-network
network.json -party ID, or -addr, -cert, -key and -ca) and reads that node's
log. The agreement is -agreement FILE, or else the agreement_file named in
the -network file; it must be signed by every party.

Run 'parley log <subcommand> -h' for the flags of a subcommand.
`

const logCheckpointUsage = `Usage: parley log checkpoint [dial flags] [-o FILE]

Checkpoint fetches the node's latest published checkpoint, verifies the
node's signature, the log origin and the witness quorum of the agreement,
and prints its origin, size, root hash and the mediators that cosigned it.
With -o it also writes the verified checkpoint (the signed note, exactly as
received) to FILE, for a later 'parley log consistency -old FILE'.
`

const logListUsage = `Usage: parley log list [dial flags] [-from N] [-count N]

List prints entries of the log from index -from: index, sender/seq, body
kind and digest (SHA-256 of the envelope, hex). Only entries covered by the
verified checkpoint are listed, and each one is proved included in it; the
sender and seq printed are read from the signed envelope itself.
`

const logShowUsage = `Usage: parley log show [dial flags] SENDER SEQ

Show fetches the entry SEQ of SENDER's feed from the node's log, proves its
inclusion in the verified checkpoint, checks the sender's signature under a
key the agreement lists for it, and prints the decoded statement (protobuf
JSON) and the envelope (base64), exactly as logged.
`

const logProveUsage = `Usage: parley log prove [dial flags] SENDER SEQ

Prove fetches the entry SEQ of SENDER's feed and an inclusion proof of it in
the verified checkpoint, verifies the proof, and prints it: the leaf index,
tree size, root hash and the proof's hashes (base64).
`

const logConsistencyUsage = `Usage: parley log consistency [dial flags] -old FILE [-o FILE]

Consistency verifies the checkpoint saved in the -old FILE (by 'parley log
checkpoint -o') against the agreement, fetches and verifies the current
one, and proves that the log of the old checkpoint is a prefix of the
current one: the node has not rewritten its history. It prints both
checkpoints and the proof's hashes. A current checkpoint smaller than the
old one, or of the same size with another root, is an error: two signed
checkpoints that contradict each other are evidence against the node. With
-o the current checkpoint is written to FILE.
`

const logExportUsage = `Usage: parley log export [dial flags] [-o FILE]

Export reads every entry covered by the verified checkpoint, recomputes the
Merkle tree of the entries and checks its root against the checkpoint, and
only then writes them in log order as JSON lines, one {"envelope":"<base64>"}
per entry, to standard output or FILE. The output is what 'parley verify'
reads.
`

func init() {
	commands["log"] = &command{
		summary: "read and verify a party's exchange log: checkpoint, entries, proofs",
		usage:   logUsage,
		run:     runLog,
	}
}

// logSubcommands are the subcommands of 'parley log'.
var logSubcommands = map[string]func(ctx context.Context, env *Env, args []string) error{
	"checkpoint":  runLogCheckpoint,
	"list":        runLogList,
	"show":        runLogShow,
	"prove":       runLogProve,
	"consistency": runLogConsistency,
	"export":      runLogExport,
}

const logSubcommandNames = "checkpoint, list, show, prove, consistency or export"

func runLog(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing subcommand (want %s)", logSubcommandNames)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(env.Stdout, logUsage)
		return flag.ErrHelp
	}
	run, ok := logSubcommands[args[0]]
	if !ok {
		return usageErrorf("unknown subcommand %q (want %s)", args[0], logSubcommandNames)
	}
	if err := run(ctx, env, args[1:]); err != nil {
		return subcommandError{args[0], err}
	}
	return nil
}

// logFlags are the flags every 'parley log' subcommand shares: where to
// dial and which agreement to verify against.
type logFlags struct {
	dialFlags
	agreement string
}

// newLogFlagSet returns the flag set of 'parley log name' with the shared
// flags registered into lf.
func (env *Env) newLogFlagSet(name string, lf *logFlags) *flag.FlagSet {
	fs := env.newFlagSet("log " + name)
	fs.StringVar(&lf.network, "network", "", "network.json written by parley demo --dir")
	fs.StringVar(&lf.party, "party", "", "`id` of the party whose node and log to read (required)")
	fs.StringVar(&lf.addr, "addr", "", "node address `host:port`")
	fs.StringVar(&lf.cert, "cert", "", "client certificate `file` (an operator or mediator certificate)")
	fs.StringVar(&lf.key, "key", "", "client key `file`")
	fs.Var(&lf.cas, "ca", "trust domain CA as `id=file` (repeatable)")
	fs.StringVar(&lf.agreement, "agreement", "", "agreement `FILE` signed by every party (default: the agreement_file of -network)")
	return fs
}

// logReader reads one party's log through its node and verifies what it
// reads against the agreement.
type logReader struct {
	c     *client.Client
	party string
	a     *agreement.Agreement
	keys  client.LogKeys
}

// open loads the agreement and dials the node.
func (lf *logFlags) open(ctx context.Context) (*logReader, error) {
	if lf.party == "" {
		return nil, usageErrorf("-party is required")
	}
	path := lf.agreement
	if path == "" && lf.network != "" {
		net, err := readNetwork(lf.network)
		if err != nil {
			return nil, err
		}
		path = net.Agreement
	}
	if path == "" {
		return nil, usageErrorf("give -agreement, or a -network file that names the agreement")
	}
	f, err := agreement.Load(path)
	if err != nil {
		return nil, err
	}
	if err := f.RequireAllSigned(); err != nil {
		return nil, fmt.Errorf("refusing to trust agreement %s: %w", path, err)
	}
	keys, err := logKeys(f.Agreement, lf.party)
	if err != nil {
		return nil, err
	}
	c, err := lf.dial(ctx)
	if err != nil {
		return nil, err
	}
	return &logReader{c: c, party: lf.party, a: f.Agreement, keys: keys}, nil
}

// logKeys returns what verifies party's checkpoints, from the agreement.
func logKeys(a *agreement.Agreement, party string) (client.LogKeys, error) {
	p, ok := a.Party(party)
	if !ok {
		return client.LogKeys{}, fmt.Errorf("%q is not a party to agreement %q", party, a.ID)
	}
	k := client.LogKeys{Origin: p.LogOrigin, CheckpointKey: p.CheckpointKey, Quorum: a.WitnessQuorum}
	for _, m := range a.Mediators {
		k.WitnessKeys = append(k.WitnessKeys, m.CosigningKey)
	}
	return k, nil
}

func (r *logReader) Close() error { return r.c.Close() }

// checkpoint fetches and verifies the latest checkpoint.
func (r *logReader) checkpoint(ctx context.Context) (*client.Checkpoint, []byte, error) {
	cp, raw, err := r.c.Checkpoint(ctx, r.keys)
	if err != nil {
		return nil, nil, fmt.Errorf("%s's checkpoint: %w", r.party, err)
	}
	return cp, raw, nil
}

// cosigners returns the ids of the mediators whose cosignature on raw
// verifies.
func (r *logReader) cosigners(raw []byte) []string {
	var ids []string
	for _, m := range r.a.Mediators {
		v, err := fnote.NewVerifier(m.CosigningKey)
		if err != nil {
			continue // VerifyCheckpoint already refused the agreement's bad keys
		}
		if _, err := note.Open(raw, note.VerifierList(v)); err == nil {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// entry fetches (sender, seq), checks that its envelope is what it claims
// to be and proves its inclusion in cp.
func (r *logReader) entry(ctx context.Context, cp *client.Checkpoint, sender string, seq uint64) (*parleyv1.LogEntry, *envelope.Parsed, error) {
	e, err := r.c.Entry(ctx, sender, seq)
	if err != nil {
		return nil, nil, err
	}
	if e.GetIndex() >= cp.Size {
		return nil, nil, fmt.Errorf("entry %s/%d is at index %d, not yet covered by the checkpoint of size %d; try again shortly", sender, seq, e.GetIndex(), cp.Size)
	}
	p, err := r.prove(ctx, cp, e)
	if err != nil {
		return nil, nil, err
	}
	if h := p.Statement.GetHeader(); h.GetSender() != sender || h.GetSeq() != seq {
		return nil, nil, fmt.Errorf("node answered %s/%d with the envelope of %s/%d", sender, seq, h.GetSender(), h.GetSeq())
	}
	return e, p, nil
}

// prove parses e's envelope and proves its inclusion at e's index in cp.
func (r *logReader) prove(ctx context.Context, cp *client.Checkpoint, e *parleyv1.LogEntry) (*envelope.Parsed, error) {
	if err := r.c.ProveInclusion(ctx, cp, e); err != nil {
		return nil, fmt.Errorf("entry at index %d: %w", e.GetIndex(), err)
	}
	p, err := envelope.Parse(e.GetEnvelope())
	if err != nil {
		return nil, fmt.Errorf("entry at index %d: %w", e.GetIndex(), err)
	}
	return p, nil
}

// writeCheckpointFile writes a verified checkpoint, exactly as received.
func writeCheckpointFile(path string, raw []byte) error {
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return fmt.Errorf("couldn't save the checkpoint: %w", err)
	}
	return nil
}

func runLogCheckpoint(ctx context.Context, env *Env, args []string) error {
	var lf logFlags
	fs := env.newLogFlagSet("checkpoint", &lf)
	out := fs.String("o", "", "also write the verified checkpoint to `FILE`")
	pos, err := env.parseFlags(fs, logCheckpointUsage, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf("want no arguments, got %d", len(pos))
	}
	r, err := lf.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	cp, raw, err := r.checkpoint(ctx)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := writeCheckpointFile(*out, raw); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "origin\t%s\n", cp.Origin)
	fmt.Fprintf(tw, "size\t%d\n", cp.Size)
	fmt.Fprintf(tw, "root\t%s\n", base64.StdEncoding.EncodeToString(cp.Hash))
	fmt.Fprintf(tw, "cosigned by\t%s\n", cosignerLine(r.cosigners(raw), len(r.a.Mediators), r.a.WitnessQuorum))
	return tw.Flush()
}

// cosignerLine describes who cosigned a checkpoint against the quorum.
func cosignerLine(ids []string, mediators, quorum int) string {
	who := "no mediator"
	if len(ids) > 0 {
		who = strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s (%d of %d mediators, quorum %d)", who, len(ids), mediators, quorum)
}

// entriesPage is how many entries the log subcommands ask for at once.
const entriesPage = 256

func runLogList(ctx context.Context, env *Env, args []string) error {
	var lf logFlags
	fs := env.newLogFlagSet("list", &lf)
	from := fs.Uint64("from", 0, "first log `index`")
	count := fs.Uint64("count", 0, "list at most `N` entries (default: every entry the checkpoint covers)")
	pos, err := env.parseFlags(fs, logListUsage, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf("want no arguments, got %d", len(pos))
	}
	r, err := lf.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	cp, _, err := r.checkpoint(ctx)
	if err != nil {
		return err
	}
	end := cp.Size
	if *count > 0 && *from+*count < end {
		end = *from + *count
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tENTRY\tKIND\tDIGEST")
	for next := *from; next < end; {
		page, err := r.c.Entries(ctx, next, uint32(min(end-next, entriesPage)))
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return fmt.Errorf("node returned no entries at index %d, below its checkpoint's size %d", next, cp.Size)
		}
		for _, e := range page {
			if next == end {
				break
			}
			if e.GetIndex() != next {
				return fmt.Errorf("node returned index %d where %d was due", e.GetIndex(), next)
			}
			p, err := r.prove(ctx, cp, e)
			if err != nil {
				return err
			}
			h := p.Statement.GetHeader()
			fmt.Fprintf(tw, "%d\t%s/%d\t%s\t%x\n", e.GetIndex(), h.GetSender(), h.GetSeq(), bodyKindName(p.Statement.GetBody()), p.Digest)
			next++
		}
	}
	return tw.Flush()
}

// bodyKindName is the name of the body's kind, e.g. "notification".
func bodyKindName(b *parleyv1.Body) string {
	m := b.ProtoReflect()
	if f := m.WhichOneof(m.Descriptor().Oneofs().ByName("kind")); f != nil {
		return string(f.Name())
	}
	return "none"
}

// entryArgs parses the SENDER SEQ arguments of show and prove.
func entryArgs(pos []string) (string, uint64, error) {
	if len(pos) != 2 {
		return "", 0, usageErrorf("want SENDER SEQ, got %d arguments", len(pos))
	}
	seq, err := strconv.ParseUint(pos[1], 10, 64)
	if err != nil || seq == 0 {
		return "", 0, usageErrorf("SEQ: got %q, want a number of 1 or more", pos[1])
	}
	return pos[0], seq, nil
}

// loggedEntry is an entry of a node's log named on the command line, read
// with an inclusion proof checked against the node's verified checkpoint.
type loggedEntry struct {
	r      *logReader
	cp     *client.Checkpoint
	sender string
	seq    uint64
	e      *parleyv1.LogEntry
	p      *envelope.Parsed
}

// openEntry parses the flags and SENDER SEQ of log show and log prove, and
// reads that entry. The caller closes r.
func openEntry(ctx context.Context, env *Env, name, usage string, args []string) (*loggedEntry, error) {
	var lf logFlags
	fs := env.newLogFlagSet(name, &lf)
	pos, err := env.parseFlags(fs, usage, args)
	if err != nil {
		return nil, err
	}
	sender, seq, err := entryArgs(pos)
	if err != nil {
		return nil, err
	}
	r, err := lf.open(ctx)
	if err != nil {
		return nil, err
	}
	cp, _, err := r.checkpoint(ctx)
	if err != nil {
		r.Close()
		return nil, err
	}
	e, p, err := r.entry(ctx, cp, sender, seq)
	if err != nil {
		r.Close()
		return nil, err
	}
	return &loggedEntry{r: r, cp: cp, sender: sender, seq: seq, e: e, p: p}, nil
}

func runLogShow(ctx context.Context, env *Env, args []string) error {
	le, err := openEntry(ctx, env, "show", logShowUsage, args)
	if err != nil {
		return err
	}
	defer le.r.Close()
	r, cp, sender, seq, e, p := le.r, le.cp, le.sender, le.seq, le.e, le.p
	keyID, err := r.checkSignature(p)
	if err != nil {
		return err
	}
	// protojson varies its spacing on purpose; json.Indent makes the
	// output stable.
	js, err := protojson.Marshal(p.Statement)
	if err != nil {
		return fmt.Errorf("couldn't print the statement: %w", err)
	}
	var st bytes.Buffer
	if err := json.Indent(&st, js, "", "  "); err != nil {
		return fmt.Errorf("couldn't print the statement: %w", err)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "entry\t%s/%d\n", sender, seq)
	fmt.Fprintf(tw, "kind\t%s\n", bodyKindName(p.Statement.GetBody()))
	fmt.Fprintf(tw, "index\t%d\n", e.GetIndex())
	fmt.Fprintf(tw, "digest\t%x\n", p.Digest)
	fmt.Fprintf(tw, "signature\tvalid, key %s\n", keyID)
	fmt.Fprintf(tw, "included\tin %s's checkpoint of size %d, root %s (proof verified)\n", r.party, cp.Size, base64.StdEncoding.EncodeToString(cp.Hash))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "statement:\n%s\n", st.Bytes())
	fmt.Fprintf(env.Stdout, "envelope:\n%s\n", base64.StdEncoding.EncodeToString(e.GetEnvelope()))
	return nil
}

// checkSignature verifies p's signature, and its form, against the
// agreement's keys of its sender. Its place in the sender's feed is taken as
// given (the node verified it; 'parley verify' over an export checks whole
// feeds): it is checked as if it extended the feed.
func (r *logReader) checkSignature(p *envelope.Parsed) (string, error) {
	v, err := verifier.New(r.a)
	if err != nil {
		return "", fmt.Errorf("couldn't build the verifier: %w", err)
	}
	h := p.Statement.GetHeader()
	head := func(string) verifier.FeedState {
		fs := verifier.FeedState{Seq: h.GetSeq() - 1}
		copy(fs.Digest[:], h.GetPrev())
		return fs
	}
	res, err := v.Check(p.Raw, head, nil)
	if err != nil {
		return "", fmt.Errorf("entry %s/%d does not verify against the agreement: %w", h.GetSender(), h.GetSeq(), err)
	}
	return res.KeyID, nil
}

func runLogProve(ctx context.Context, env *Env, args []string) error {
	le, err := openEntry(ctx, env, "prove", logProveUsage, args)
	if err != nil {
		return err
	}
	defer le.r.Close()
	r, cp, sender, seq, e := le.r, le.cp, le.sender, le.seq, le.e
	// entry verified a proof already; fetch it again to print it, and
	// verify what is printed.
	resp, err := r.c.Log.GetInclusionProof(ctx, &parleyv1.GetInclusionProofRequest{Index: e.GetIndex(), TreeSize: cp.Size})
	if err != nil {
		return fmt.Errorf("couldn't get an inclusion proof: %w", err)
	}
	if err := client.VerifyInclusion(cp, e.GetIndex(), e.GetEnvelope(), resp.GetHashes()); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "entry\t%s/%d\n", sender, seq)
	fmt.Fprintf(tw, "index\t%d\n", e.GetIndex())
	fmt.Fprintf(tw, "leaf hash\t%s\n", base64.StdEncoding.EncodeToString(rfc6962.DefaultHasher.HashLeaf(e.GetEnvelope())))
	fmt.Fprintf(tw, "tree size\t%d\n", cp.Size)
	fmt.Fprintf(tw, "root\t%s\n", base64.StdEncoding.EncodeToString(cp.Hash))
	fmt.Fprintf(tw, "proof\t%s\n", hashCount(len(resp.GetHashes())))
	if err := tw.Flush(); err != nil {
		return err
	}
	writeHashes(env.Stdout, resp.GetHashes())
	fmt.Fprintln(env.Stdout, "inclusion proof verified")
	return nil
}

// hashCount says how many hashes a proof has.
func hashCount(n int) string {
	if n == 1 {
		return "1 hash"
	}
	return fmt.Sprintf("%d hashes", n)
}

func writeHashes(w io.Writer, hashes [][]byte) {
	for _, h := range hashes {
		fmt.Fprintf(w, "  %s\n", base64.StdEncoding.EncodeToString(h))
	}
}

func runLogConsistency(ctx context.Context, env *Env, args []string) error {
	var lf logFlags
	fs := env.newLogFlagSet("consistency", &lf)
	oldPath := fs.String("old", "", "`FILE` holding an earlier checkpoint, as written by 'parley log checkpoint -o' (required)")
	out := fs.String("o", "", "also write the verified current checkpoint to `FILE`")
	pos, err := env.parseFlags(fs, logConsistencyUsage, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usageErrorf("want no arguments, got %d", len(pos))
	case *oldPath == "":
		return usageErrorf("-old is required")
	}
	oldRaw, err := os.ReadFile(*oldPath)
	if err != nil {
		return fmt.Errorf("couldn't read the old checkpoint: %w", err)
	}
	r, err := lf.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	older, err := client.VerifyCheckpoint(oldRaw, r.keys)
	if err != nil {
		return fmt.Errorf("old checkpoint %s: %w", *oldPath, err)
	}
	newer, newRaw, err := r.checkpoint(ctx)
	if err != nil {
		return err
	}
	var hashes [][]byte
	switch {
	case newer.Size < older.Size:
		return fmt.Errorf("%w: the current checkpoint has size %d, below the old one's %d: the node's log shrank; keep both signed checkpoints as evidence", client.ErrProof, newer.Size, older.Size)
	case newer.Size == older.Size:
		if !bytes.Equal(newer.Hash, older.Hash) {
			return fmt.Errorf("%w: two roots for size %d: the node forked its log; keep both signed checkpoints as evidence", client.ErrProof, older.Size)
		}
	case older.Size > 0:
		resp, err := r.c.Log.GetConsistencyProof(ctx, &parleyv1.GetConsistencyProofRequest{FromSize: older.Size, ToSize: newer.Size})
		if err != nil {
			return fmt.Errorf("couldn't get a consistency proof: %w", err)
		}
		hashes = resp.GetHashes()
		if err := client.VerifyConsistency(older, newer, hashes); err != nil {
			return fmt.Errorf("%w; keep both signed checkpoints as evidence", err)
		}
	}
	if *out != "" {
		if err := writeCheckpointFile(*out, newRaw); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "origin\t%s\n", newer.Origin)
	fmt.Fprintf(tw, "old\tsize %d, root %s\n", older.Size, base64.StdEncoding.EncodeToString(older.Hash))
	fmt.Fprintf(tw, "new\tsize %d, root %s\n", newer.Size, base64.StdEncoding.EncodeToString(newer.Hash))
	fmt.Fprintf(tw, "proof\t%s\n", hashCount(len(hashes)))
	if err := tw.Flush(); err != nil {
		return err
	}
	writeHashes(env.Stdout, hashes)
	fmt.Fprintln(env.Stdout, "consistent: the old log is a prefix of the new one")
	return nil
}

func runLogExport(ctx context.Context, env *Env, args []string) error {
	var lf logFlags
	fs := env.newLogFlagSet("export", &lf)
	out := fs.String("o", "", "write to `FILE` instead of standard output")
	pos, err := env.parseFlags(fs, logExportUsage, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf("want no arguments, got %d", len(pos))
	}
	r, err := lf.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	cp, _, err := r.checkpoint(ctx)
	if err != nil {
		return err
	}
	raws, err := r.allEntries(ctx, cp)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := writeEnvelopes(&buf, raws); err != nil {
		return fmt.Errorf("couldn't write the entries: %w", err)
	}
	if *out == "" {
		_, err := env.Stdout.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("couldn't write the entries: %w", err)
	}
	env.Logger.InfoContext(ctx, "exported log", "party", r.party, "entries", len(raws), "file", *out)
	return nil
}

// allEntries reads the cp.Size entries of the log and checks that their
// Merkle tree has cp's root: then every one of them, and nothing else, is
// what the checkpoint commits to.
func (r *logReader) allEntries(ctx context.Context, cp *client.Checkpoint) ([][]byte, error) {
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	tree := rf.NewEmptyRange(0)
	raws := make([][]byte, 0, cp.Size)
	for next := uint64(0); next < cp.Size; {
		page, err := r.c.Entries(ctx, next, uint32(min(cp.Size-next, entriesPage)))
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return nil, fmt.Errorf("node returned no entries at index %d, below its checkpoint's size %d", next, cp.Size)
		}
		for _, e := range page {
			if next == cp.Size {
				break
			}
			if e.GetIndex() != next {
				return nil, fmt.Errorf("node returned index %d where %d was due", e.GetIndex(), next)
			}
			if err := tree.Append(rfc6962.DefaultHasher.HashLeaf(e.GetEnvelope()), nil); err != nil {
				return nil, fmt.Errorf("couldn't hash entry %d: %w", next, err)
			}
			raws = append(raws, e.GetEnvelope())
			next++
		}
	}
	root := rfc6962.DefaultHasher.EmptyRoot()
	if cp.Size > 0 {
		var err error
		if root, err = tree.GetRootHash(nil); err != nil {
			return nil, fmt.Errorf("couldn't compute the root of the entries: %w", err)
		}
	}
	if !bytes.Equal(root, cp.Hash) {
		return nil, fmt.Errorf("%w: the %d entries the node returned hash to root %s, the checkpoint says %s", client.ErrProof, cp.Size, hex.EncodeToString(root), hex.EncodeToString(cp.Hash))
	}
	return raws, nil
}
