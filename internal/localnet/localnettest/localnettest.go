// Package localnettest holds test fixtures shared by the tests that run
// local networks: statement bodies and network helpers taking testing.TB.
package localnettest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// Notification is a valid land-exercise notification with the given troops,
// starting 60 days from now (whole hours), lasting three days.
func Notification(troops uint32) *parleyv1.ActivityNotification {
	start := time.Now().UTC().AddDate(0, 0, 60).Truncate(time.Hour)
	return &parleyv1.ActivityNotification{
		Designation: "Exercise",
		Type:        parleyv1.ActivityType_ACTIVITY_TYPE_LAND_EXERCISE,
		Start:       timestamppb.New(start),
		End:         timestamppb.New(start.Add(72 * time.Hour)),
		Area:        &parleyv1.Area{PlaceNames: []string{"Range 1"}},
		Forces:      &parleyv1.Forces{Troops: troops},
	}
}

// Start generates a network in a temporary directory and runs it in this
// process until the test ends. Logs at Warn and above go to the test log.
func Start(tb testing.TB, opts localnet.Options) *localnet.Running {
	tb.Helper()
	opts.Dir = tb.TempDir()
	ctx := context.Background()
	net, err := localnet.Generate(ctx, opts)
	if err != nil {
		tb.Fatalf("Generate: %v", err)
	}
	run, err := net.Start(ctx, Logger(tb))
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(run.Stop)
	return run
}

// Operator dials party's node as its operator until the test ends.
func Operator(tb testing.TB, net *localnet.Network, party string) *client.Client {
	tb.Helper()
	c, err := net.Operator(context.Background(), party)
	if err != nil {
		tb.Fatalf("dial %s: %v", party, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// Logger writes Warn and above to the test log.
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(p))
	return len(p), nil
}

var _ io.Writer = testWriter{}
