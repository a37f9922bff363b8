package server_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-dev/parley/server"
)

// countingListener counts the writes to every connection it accepts.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, writes: l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestOneWritePerAnswer holds the node to one write to the connection per
// Submit answered, over real gRPC and mutual TLS. An answer waits for a
// durable write; with grpc-go's default flow control, which estimates the
// bandwidth-delay product, the node would first send a PING (and a window
// update) on its own for nearly every call, and the client would answer it:
// two writes per call at the node, and more work at both ends. The node's
// fixed windows (streamWindow, connWindow) leave only the answer. The
// caller is the Go client, whose windows are fixed too: with the client's
// default flow control, the node's answers to the client's PINGs double
// the writes the same way (79–80 for 40 calls either way).
func TestOneWritePerAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := bareNetwork(t)
	var writes atomic.Int64
	startNodeOn(t, n, "alpha", countingListener{Listener: reservedListener(t, n, "alpha"), writes: &writes}, func(c *server.Config) { c.Exchange.PeerTLS = nil })
	alpha, err := n.Operator(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	defer alpha.Close()
	// The handshake, the settings and the first call's headers are not
	// what is counted.
	for i := range 3 {
		if _, err := alpha.Notify(ctx, notification(100+uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	const calls = 40
	before := writes.Load()
	for i := range calls {
		if _, err := alpha.Notify(ctx, notification(200+uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	// An answer's trailers sometimes leave in a write of their own, when
	// the node's writer goroutine flushes between the message and them (on
	// a loaded machine, or under the race detector, up to a fifth of the
	// calls); a PING per call, which doubles the writes, may not.
	got := writes.Load() - before
	t.Logf("%d writes for %d answers", got, calls)
	if got > calls*3/2 {
		t.Errorf("the node wrote to the connection %d times for %d answers, want about one write per answer", got, calls)
	}
}
