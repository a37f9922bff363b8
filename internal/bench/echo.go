package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/internal/config"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// The baseline is a bare grpc-go server that answers SubmissionService.Submit
// by echoing: it serves the same method name, so that the very same client
// code (client.Client.Submit) drives it and a node. It has no interceptors,
// no signing, no verification and no storage; only the response is shaped
// like a node's, an envelope of the same size, so that both move the same
// bytes.

// echoer is the handler type of echoDesc.
type echoer interface {
	echo(*parleyv1.SubmitRequest) (*parleyv1.SubmitResponse, error)
}

// echoDesc is a hand-written service description: parley.v1.SubmissionService
// with only its unary Submit method.
var echoDesc = grpc.ServiceDesc{
	ServiceName: parleyv1.SubmissionService_ServiceDesc.ServiceName,
	HandlerType: (*echoer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Submit",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(parleyv1.SubmitRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			if interceptor == nil {
				return srv.(echoer).echo(in)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: parleyv1.SubmissionService_Submit_FullMethodName}
			return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return srv.(echoer).echo(req.(*parleyv1.SubmitRequest))
			})
		},
	}},
	Metadata: "internal/bench/echo.go",
}

// echoServer answers each Submit with an entry whose envelope has the size
// of the one a node would sign for the same body.
type echoServer struct {
	agreementID, party, keyID string
	seq                       atomic.Uint64
}

func (s *echoServer) echo(req *parleyv1.SubmitRequest) (*parleyv1.SubmitResponse, error) {
	seq := s.seq.Add(1)
	// The statement and envelope a node would make, with a zero signature
	// of Ed25519's size instead of a real one.
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(&parleyv1.Statement{
		Header: &parleyv1.Header{
			AgreementId: s.agreementID, Sender: s.party, Seq: seq,
			Prev: make([]byte, 32), IssuedAt: timestamppb.Now(),
		},
		Body: req.GetBody(),
	})
	if err != nil {
		return nil, err
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(&parleyv1.Envelope{
		Payload: payload, PayloadType: envelope.PayloadType,
		Signatures: []*parleyv1.Signature{{Sig: make([]byte, 64), Keyid: s.keyID}},
	})
	if err != nil {
		return nil, err
	}
	return &parleyv1.SubmitResponse{Entry: &parleyv1.LogEntry{
		Index: seq - 1, Envelope: raw, Digest: make([]byte, 32), Sender: s.party, Seq: seq,
	}}, nil
}

// NewEchoServer returns the baseline gRPC server: mutual TLS with tlsCfg and
// nothing else, serving the echo Submit and gRPC health. agreementID, party
// and keyID shape its responses like those of party's node.
func NewEchoServer(tlsCfg *tls.Config, agreementID, party, keyID string) *grpc.Server {
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsCfg)))
	srv.RegisterService(&echoDesc, &echoServer{agreementID: agreementID, party: party, keyID: keyID})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	return srv
}

// ServeEcho serves the baseline on listen, with exactly the TLS
// configuration the node of nodeConfig (a node.yaml) would use: its
// certificate, and the agreement's CAs. It runs until ctx is done.
func ServeEcho(ctx context.Context, listen, nodeConfig string, logger *slog.Logger) error {
	tlsCfg, a, party, err := nodeTLS(nodeConfig)
	if err != nil {
		return err
	}
	p, _ := a.Party(party)
	keyID := ""
	if len(p.Keys) > 0 {
		keyID = p.Keys[0].ID
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("couldn't listen on %s: %w", listen, err)
	}
	srv := NewEchoServer(tlsCfg, a.ID, party, keyID)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	logger.Info("echo baseline serving", "addr", l.Addr().String(), "party", party)
	select {
	case err := <-errc:
		return fmt.Errorf("echo server stopped: %w", err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		srv.Stop()
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("echo server stopped: %w", err)
	}
	return nil
}

// nodeTLS builds the server TLS configuration of a node configuration file
// the way config.Node.Build does.
func nodeTLS(path string) (*tls.Config, *agreement.Agreement, string, error) {
	c, err := config.Load(path)
	if err != nil {
		return nil, nil, "", err
	}
	f, err := agreement.Load(c.Agreement)
	if err != nil {
		return nil, nil, "", err
	}
	bundle, err := config.TrustBundle(f.Agreement)
	if err != nil {
		return nil, nil, "", fmt.Errorf("couldn't build the trust bundle from the agreement: %w", err)
	}
	kp, err := certs.LoadKeyPair(c.TLS.Cert, c.TLS.Key)
	if err != nil {
		return nil, nil, "", fmt.Errorf("couldn't load the node certificate: %w", err)
	}
	return certs.ServerConfig(bundle, kp.Certificate), f.Agreement, c.Party, nil
}
