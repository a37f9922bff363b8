package client_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// exampleNetwork starts a whole network on loopback, standing in for a real
// deployment: a throwaway PKI per party and mediator, an agreement signed
// by every party, a mediator's witness and the parties' nodes. It returns
// the network and a function that stops it and removes its files.
func exampleNetwork() (*localnet.Running, func()) {
	dir, err := os.MkdirTemp("", "parley-example-")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	net, err := localnet.Generate(ctx, localnet.Options{Dir: dir, Parties: []string{"alpha", "bravo"}})
	if err != nil {
		log.Fatal(err)
	}
	run, err := net.Start(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		log.Fatal(err)
	}
	return run, func() { run.Stop(); os.RemoveAll(dir) }
}

// exerciseNotification is the notification the examples submit.
func exerciseNotification() *parleyv1.ActivityNotification {
	start := time.Now().UTC().AddDate(0, 0, 60).Truncate(24 * time.Hour)
	return &parleyv1.ActivityNotification{
		Designation: "Northern Shield",
		Type:        parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
		Start:       timestamppb.New(start),
		End:         timestamppb.New(start.Add(5 * 24 * time.Hour)),
		Area:        &parleyv1.Area{PlaceNames: []string{"Range 1"}},
		Forces:      &parleyv1.Forces{Troops: 9500},
	}
}

// An operator of party alpha dials alpha's node with the certificate its
// party's CA issued, trusting the CAs the agreement lists.
func ExampleDial() {
	net, stop := exampleNetwork()
	defer stop()
	alpha := net.Parties["alpha"]

	c, err := client.Dial(context.Background(), client.Config{
		Address:  alpha.Address,
		CertFile: alpha.OperatorCert,
		KeyFile:  alpha.OperatorKey,
		CAFiles:  map[string]string{"alpha": alpha.CAFile},
		Party:    "alpha", // the node must hold a spiffe://alpha/node/... certificate
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	serving, err := c.Healthy(context.Background(), "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alpha's node serving:", serving)
	// Output: alpha's node serving: true
}

// The node signs the notification with the party's key, gives it the next
// seq of the party's feed and returns once the entry is durable in its log.
func ExampleClient_Notify() {
	net, stop := exampleNetwork()
	defer stop()
	c, err := net.Operator(context.Background(), "alpha")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for range 2 {
		e, err := c.Notify(context.Background(), exerciseNotification())
		if err != nil {
			log.Fatal(err)
		}
		// The log index depends on what else the node logged meanwhile,
		// such as other parties' receipts; the seq does not.
		fmt.Printf("logged %s/%d\n", e.GetSender(), e.GetSeq())
	}
	// Output:
	// logged alpha/1
	// logged alpha/2
}

// An activity notified ten days ahead, short of the 42 days' lead time,
// is a finding; FindingsSeq reads a list of findings page by page, however
// long it is.
func ExampleClient_FindingsSeq() {
	net, stop := exampleNetwork()
	defer stop()
	ctx := context.Background()
	c, err := net.Operator(ctx, "alpha")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	late := exerciseNotification()
	start := time.Now().UTC().AddDate(0, 0, 10).Truncate(24 * time.Hour)
	late.Start, late.End = timestamppb.New(start), timestamppb.New(start.Add(5*24*time.Hour))
	if _, err := c.Notify(ctx, late); err != nil {
		log.Fatal(err)
	}
	for f, err := range c.FindingsSeq(ctx, "alpha", "VD.V.lead", time.Time{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(f.GetRule(), f.GetSeverity(), f.GetParty(), f.GetEntries()[0].GetSeq())
	}
	// Output: VD.V.lead SEVERITY_VIOLATION alpha 1
}

// The client verifies the node's checkpoint against the agreement's keys
// (the node's checkpoint key and the mediators' witness quorum), then
// proves that an entry is in the log it commits to.
func ExampleClient_Checkpoint() {
	net, stop := exampleNetwork()
	defer stop()
	ctx := context.Background()
	c, err := net.Operator(ctx, "alpha")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	e, err := c.Notify(ctx, exerciseNotification())
	if err != nil {
		log.Fatal(err)
	}

	// What verifies alpha's checkpoints, all from the signed agreement.
	keys := net.LogKeys("alpha")
	// Durable is not yet published: a checkpoint covers the entry once the
	// mediators have cosigned it, within a checkpoint interval or so.
	var cp *client.Checkpoint
	for cp == nil || cp.Size <= e.GetIndex() {
		time.Sleep(50 * time.Millisecond)
		if cp, _, err = c.Checkpoint(ctx, keys); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("checkpoint of %s verified, witnessed by at least %d of %d mediators\n", cp.Origin, keys.Quorum, len(keys.WitnessKeys))
	if err := c.ProveInclusion(ctx, cp, e); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s/%d is in the log it commits to\n", e.GetSender(), e.GetSeq())
	// Output:
	// checkpoint of parley.local/alpha verified, witnessed by at least 1 of 1 mediators
	// alpha/1 is in the log it commits to
}
