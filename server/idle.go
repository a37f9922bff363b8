package server

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// idleStreams ends client-streaming calls (Deliver) whose client sends no
// message for timeout. Without it a peer could open streams and stay
// silent, holding a stream, a goroutine and a concurrent-stream slot of the
// node for as long as its connection answers keepalive pings. A timeout of
// zero or less disables it.
func idleStreams(timeout time.Duration) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !info.IsClientStream || timeout <= 0 {
			return handler(srv, ss)
		}
		return handler(srv, &idleStream{ServerStream: ss, timeout: timeout})
	}
}

// idleStream is a server stream whose RecvMsg gives up after timeout.
// gRPC offers no way to interrupt a blocked RecvMsg, so each one runs in its
// own goroutine: on timeout the handler returns, gRPC ends the stream and
// the abandoned RecvMsg returns. Like any server stream it must not be read
// from two goroutines at once.
type idleStream struct {
	grpc.ServerStream
	timeout time.Duration
	// err is set once the stream timed out: the abandoned RecvMsg may
	// still be running, so no other may start.
	err error
}

func (s *idleStream) RecvMsg(m any) error {
	if s.err != nil {
		return s.err
	}
	done := make(chan error, 1)
	go func() { done <- s.ServerStream.RecvMsg(m) }()
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		s.err = status.Errorf(codes.DeadlineExceeded, "no message on the stream for %s: closing it; open a new stream when there is something to send", s.timeout)
		return s.err
	}
}
