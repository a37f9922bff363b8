package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

func init() {
	commands["demo"] = &command{
		summary: "run a whole local network with a scripted exchange",
		usage: `Usage: parley demo [--dir DIR] [--exit]

Creates a throwaway PKI and an agreement signed by three parties (alpha,
bravo, charlie) and one mediator, starts the mediator's witness and the
three nodes on loopback, runs a scripted scenario and prints what happened.
It then keeps running until interrupted, so that you can talk to the nodes
(see DIR/network.json), unless --exit is given: then it stops after the
scenario, with status 0 only if the scenario did what it should.
`,
		run: runDemo,
	}
}

func runDemo(ctx context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("demo")
	dir := fs.String("dir", "", "keep everything the demo generates in `DIR` (default: a temporary directory, removed at the end)")
	exit := fs.Bool("exit", false, "stop after the scenario; exit status 0 only if it did what it should")
	if _, err := env.parseFlags(fs, commands["demo"].usage, args); err != nil {
		return err
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "parley-demo-")
		if err != nil {
			return fmt.Errorf("couldn't make a temporary directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	} else if entries, err := os.ReadDir(*dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("directory %s is not empty; give a new or empty directory", *dir)
	}
	out := env.Stdout
	fmt.Fprintf(out, "Parley demo: three parties and a mediator on loopback, files in %s\n\n", *dir)
	net, err := localnet.Generate(ctx, localnet.Options{Dir: *dir})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "• PKI: one CA per party and per mediator; agreement %q signed by %v\n", net.Agreement.Agreement.ID, net.PartyIDs)
	run, err := net.Start(ctx, env.Logger)
	if err != nil {
		return err
	}
	defer run.Stop()
	for _, id := range net.PartyIDs {
		fmt.Fprintf(out, "• node %-8s listening on %s (log origin %s)\n", id, net.Parties[id].Address, net.Parties[id].LogOrigin)
	}
	for _, id := range net.MediatorIDs {
		fmt.Fprintf(out, "• mediator %s witnessing on %s\n", id, net.Mediators[id].Address)
	}
	fmt.Fprintln(out)
	sc := &scenario{out: out, net: net}
	sc.run(ctx)
	fmt.Fprintln(out, "\n5. The mediator's audit of every node's log")
	auditOK, err := runAuditStep(ctx, out, net, *dir)
	if err != nil {
		sc.check(false, "audit: %v", err)
	} else {
		sc.check(auditOK, "the audit finds no evidence of misbehaviour; report written to %s", filepath.Join(*dir, "audit.html"))
	}
	fmt.Fprintf(out, "\n%d checks passed, %d failed\n", sc.passed, sc.failed)
	fmt.Fprintf(out, "network description for clients: %s\n", filepath.Join(*dir, "network.json"))
	if err := run.Err(); err != nil {
		return err
	}
	if sc.failed > 0 {
		return fmt.Errorf("%d demo checks failed", sc.failed)
	}
	if *exit {
		return nil
	}
	fmt.Fprintln(out, "the network keeps running; press Ctrl-C to stop")
	<-ctx.Done()
	return nil
}

// scenario is the demo's script: each step prints what it did and counts
// as a check.
type scenario struct {
	out            io.Writer
	net            *localnet.Network
	passed, failed int
}

func (s *scenario) check(ok bool, format string, args ...any) {
	mark := "ok  "
	if ok {
		s.passed++
	} else {
		s.failed++
		mark = "FAIL"
	}
	fmt.Fprintf(s.out, "  [%s] %s\n", mark, fmt.Sprintf(format, args...))
}

func notification(designation string, start time.Time, days int, troops uint32, place string) *parleyv1.ActivityNotification {
	return &parleyv1.ActivityNotification{
		Designation:         designation,
		Type:                parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
		Purpose:             "training of units in defensive operations",
		ParticipatingStates: []string{"alpha"},
		LevelOfCommand:      "army corps",
		Start:               timestamppb.New(start),
		End:                 timestamppb.New(start.Add(time.Duration(days) * 24 * time.Hour)),
		Area:                &parleyv1.Area{PlaceNames: []string{place}},
		Forces:              &parleyv1.Forces{Troops: troops, BattleTanks: 120, Acvs: 300, Artillery: 90},
	}
}

func (s *scenario) run(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	now := time.Now().UTC().Truncate(time.Hour)
	ops := map[string]*client.Client{}
	for _, id := range s.net.PartyIDs {
		c, err := s.net.Operator(ctx, id)
		if err != nil {
			s.check(false, "dial %s's node as its operator: %v", id, err)
			return
		}
		defer c.Close()
		ops[id] = c
	}

	fmt.Fprintln(s.out, "1. Notifications, signed by each party's node with the party's key")
	type sent struct {
		party string
		entry *parleyv1.LogEntry
	}
	var logged []sent
	steps := []struct {
		party, what string
		n           *parleyv1.ActivityNotification
	}{
		{"alpha", "compliant: 9,500 troops, 60 days ahead", notification("Northern Shield", now.AddDate(0, 0, 60), 10, 9500, "Training area North")},
		{"bravo", "late: 11,000 troops, only 20 days ahead", notification("Eastern Resolve", now.AddDate(0, 0, 20), 7, 11000, "Eastern range")},
		{"charlie", "14,000 troops, above the observation threshold, 45 days ahead, no invitation", notification("Southern Gate", now.AddDate(0, 0, 45), 12, 14000, "Southern plain")},
	}
	for _, st := range steps {
		e, err := ops[st.party].Notify(ctx, st.n)
		s.check(err == nil, "%s notifies %q (%s): %s", st.party, st.n.GetDesignation(), st.what, result(e, err))
		if err == nil {
			logged = append(logged, sent{st.party, e})
		}
	}
	req := &parleyv1.Body{Kind: &parleyv1.Body_ConsultationRequest{ConsultationRequest: &parleyv1.ConsultationRequest{
		Addressee: "bravo", Kind: parleyv1.ConsultationKind_CONSULTATION_KIND_EXPLANATION,
		Concern: "unusual concentration of armour near the border",
	}}}
	resp, err := ops["alpha"].Submit(ctx, req)
	s.check(err == nil, "alpha asks bravo for an explanation of unusual activity: %s", result(resp.GetEntry(), err))
	if err == nil {
		logged = append(logged, sent{"alpha", resp.GetEntry()})
	}
	exchanged := make([]*parleyv1.LogEntry, 0, len(logged))
	for _, l := range logged {
		exchanged = append(exchanged, l.entry)
	}
	s.exchange(ctx, exchanged)

	fmt.Fprintln(s.out, "\n2. Reading back, with proofs checked against witnessed checkpoints")
	for _, l := range logged {
		keys := s.net.LogKeys(l.party)
		var cp *clientCheckpoint
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			c, _, err := ops[l.party].Checkpoint(ctx, keys)
			if err == nil && c.Size > l.entry.GetIndex() {
				cp = &clientCheckpoint{size: c.Size}
				got, gerr := ops[l.party].Entry(ctx, l.party, l.entry.GetSeq())
				perr := gerr
				if gerr == nil {
					perr = ops[l.party].ProveInclusion(ctx, c, got)
				}
				s.check(perr == nil && string(got.GetDigest()) == string(l.entry.GetDigest()),
					"%s/%d is in %s's log at index %d, inclusion proved in a checkpoint of size %d cosigned by %d mediator(s)%s",
					l.party, l.entry.GetSeq(), l.party, l.entry.GetIndex(), c.Size, keys.Quorum, errSuffix(perr))
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if cp == nil {
			s.check(false, "no witnessed checkpoint of %s's log covers index %d within 30 s", l.party, l.entry.GetIndex())
		}
	}

	fmt.Fprintln(s.out, "\n3. What the nodes refuse")
	bravoAsAlpha, err := dialAs(ctx, s.net, "alpha", "bravo")
	if err == nil {
		_, err = bravoAsAlpha.Notify(ctx, notification("Impostor", now.AddDate(0, 0, 60), 3, 100, "anywhere"))
		bravoAsAlpha.Close()
	}
	s.check(status.Code(err) == codes.PermissionDenied, "bravo's operator submitting to alpha's node is refused: %s", codeOf(err))
	_, err = ops["alpha"].Notify(ctx, notification("Backwards", now.AddDate(0, 0, 60), -1, 100, "anywhere"))
	s.check(status.Code(err) == codes.InvalidArgument, "a notification that ends before it starts is refused: %s", codeOf(err))

	fmt.Fprintln(s.out, "\n4. Findings of the nodes' rule engines (Vienna Document 2011)")
	seen := map[string]bool{}
	report := func(at time.Time) map[string]bool {
		got := map[string]bool{}
		for _, id := range s.net.PartyIDs {
			fs, err := ops[id].FindingsAsOf(ctx, "", "", at)
			if err != nil {
				s.check(false, "findings of %s's node: %v", id, err)
				continue
			}
			for _, f := range fs {
				key := f.GetRule() + "|" + f.GetParty() + "|" + f.GetSummary()
				got[f.GetRule()+"|"+f.GetParty()] = true
				if seen[key] {
					continue
				}
				seen[key] = true
				fmt.Fprintf(s.out, "  %-16s %-10s %-8s %s\n", f.GetRule(), severity(f.GetSeverity()), f.GetParty(), f.GetSummary())
				fmt.Fprintf(s.out, "  %-16s required: %s; seen: %s\n", "", f.GetRequired(), f.GetSeen())
			}
		}
		return got
	}
	fmt.Fprintln(s.out, "  now:")
	nowFindings := report(time.Time{})
	s.check(nowFindings["VD.V.lead|bravo"], "bravo's notification 20 days ahead is flagged late (VD.V.lead)")
	s.check(!nowFindings["VD.V.lead|alpha"], "alpha's notification 60 days ahead is not flagged")
	later := now.Add(5 * 24 * time.Hour)
	fmt.Fprintf(s.out, "  if nothing more is said, as of %s:\n", later.Format("2006-01-02 15:04Z"))
	laterFindings := report(later)
	s.check(laterFindings["VD.VI.invite|charlie"], "charlie's 14,000-troop activity without an observation invitation is flagged once the 42-day mark passes (VD.VI.invite)")
	s.check(laterFindings["VD.III.consult|bravo"], "bravo's unanswered consultation is flagged once 48 hours pass (VD.III.consult)")
}

type clientCheckpoint struct{ size uint64 }

// dialAs dials party's node with the operator certificate of another party.
func dialAs(ctx context.Context, net *localnet.Network, party, as string) (*client.Client, error) {
	p, q := net.Parties[party], net.Parties[as]
	return client.Dial(ctx, client.Config{Address: p.Address, CertFile: q.OperatorCert, KeyFile: q.OperatorKey, CAFiles: net.CAFiles(), Party: party})
}

func result(e *parleyv1.LogEntry, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("logged as %s/%d at index %d", e.GetSender(), e.GetSeq(), e.GetIndex())
}

func errSuffix(err error) string {
	if err != nil {
		return ": " + err.Error()
	}
	return ""
}

func codeOf(err error) string {
	if err == nil {
		return "accepted (unexpected)"
	}
	st, ok := status.FromError(errors.Unwrap(err))
	if !ok {
		st = status.Convert(err)
	}
	return fmt.Sprintf("%s (%s)", st.Code(), st.Message())
}

func severity(s parleyv1.Severity) string {
	switch s {
	case parleyv1.Severity_SEVERITY_ADVISORY:
		return "advisory"
	case parleyv1.Severity_SEVERITY_LOW:
		return "low"
	case parleyv1.Severity_SEVERITY_VIOLATION:
		return "violation"
	case parleyv1.Severity_SEVERITY_MISBEHAVIOUR:
		return "misbehaviour"
	}
	return "unspecified"
}
