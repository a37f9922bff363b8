package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sort"
	"time"

	"buf.build/go/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	grpcvalidate "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/certs"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/server/tlog"
	"github.com/parley-dev/parley/verifier/rules"
)

// maxMessageSize bounds every gRPC message: an envelope is at most 64 KiB,
// a page of entries at most 1,000 of them.
const maxMessageSize = 80 << 20

// services is every gRPC service the node serves, for health and tests.
var services = []string{
	parleyv1.SubmissionService_ServiceDesc.ServiceName,
	parleyv1.ExchangeService_ServiceDesc.ServiceName,
	parleyv1.LogService_ServiceDesc.ServiceName,
	parleyv1.SubscriptionService_ServiceDesc.ServiceName,
}

// GRPCServer builds the node's gRPC server: mTLS, the interceptor chain
// (recovery, logging, auth, validation), the four Parley services, health
// and reflection. The caller serves it on a listener.
func (n *Node) GRPCServer() (*grpc.Server, error) {
	validator, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("couldn't build the request validator: %w", err)
	}
	logOpts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithFieldsFromContext(func(ctx context.Context) logging.Fields {
			if id, ok := certs.IdentityFrom(ctx); ok {
				return logging.Fields{"peer_party", id.Party, "peer_role", id.Role, "peer_name", id.Name}
			}
			return nil
		}),
	}
	logger := slogAdapter(n.log)
	recover := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		n.log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error; see the node's log")
	})
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(n.cfg.TLS)),
		grpc.MaxRecvMsgSize(1<<20),
		grpc.MaxSendMsgSize(maxMessageSize),
		grpc.MaxConcurrentStreams(1000),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.ChainUnaryInterceptor(
			recovery.UnaryServerInterceptor(recover),
			n.unaryAuth,
			logging.UnaryServerInterceptor(logger, logOpts...),
			grpcvalidate.UnaryServerInterceptor(validator),
		),
		grpc.ChainStreamInterceptor(
			recovery.StreamServerInterceptor(recover),
			n.streamAuth,
			logging.StreamServerInterceptor(logger, logOpts...),
			grpcvalidate.StreamServerInterceptor(validator),
		),
	)
	parleyv1.RegisterSubmissionServiceServer(srv, &submissionService{n: n})
	parleyv1.RegisterExchangeServiceServer(srv, &exchangeService{n: n})
	parleyv1.RegisterLogServiceServer(srv, &logService{n: n})
	parleyv1.RegisterSubscriptionServiceServer(srv, &subscriptionService{n: n})
	healthpb.RegisterHealthServer(srv, n.health)
	reflection.Register(srv)
	for _, s := range append([]string{""}, services...) {
		n.health.SetServingStatus(s, healthpb.HealthCheckResponse_SERVING)
	}
	return srv, nil
}

// Serve serves the node on lis until ctx is done, then stops gracefully
// (draining streams for up to 10 s).
func (n *Node) Serve(ctx context.Context, lis net.Listener) error {
	srv, err := n.GRPCServer()
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	n.log.Info("node serving", "addr", lis.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("grpc server stopped: %w", err)
	case <-ctx.Done():
	case <-n.failed:
	}
	n.health.Shutdown()
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		srv.Stop()
	}
	if err := n.failure(); err != nil {
		return fmt.Errorf("node failed: %w", err)
	}
	return nil
}

// fail marks the node as failed: it stops serving and Serve returns the
// error, so that a supervisor restarts it and it reconciles from the log.
func (n *Node) fail(err error) {
	n.failOnce.Do(func() {
		n.failErr = err
		close(n.failed)
	})
}

func (n *Node) failure() error {
	select {
	case <-n.failed:
		return n.failErr
	default:
		return nil
	}
}

// slogAdapter routes go-grpc-middleware logging to slog. It never logs
// payloads: only the fields the interceptor adds.
func slogAdapter(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// rulesConfig derives the rule engine's configuration from the agreement.
func rulesConfig(a *agreement.Agreement) rules.Config {
	cfg := rules.Config{Rules: a.Rules, Territory: map[string][]string{}}
	for _, p := range a.Parties {
		cfg.Parties = append(cfg.Parties, p.ID)
		if len(p.Territory) > 0 {
			cfg.Territory[p.ID] = p.Territory
		}
	}
	sort.Strings(cfg.Parties)
	return cfg
}

var errNoWitnessClient = errors.New("the agreement requires witnesses but no witness client was configured")

// witnessConfig builds the log's witness configuration from the agreement's
// mediators and quorum.
func witnessConfig(a *agreement.Agreement, client *http.Client) (*tlog.WitnessConfig, error) {
	if a.WitnessQuorum == 0 || len(a.Mediators) == 0 {
		return nil, nil
	}
	if client == nil {
		return nil, errNoWitnessClient
	}
	wc := &tlog.WitnessConfig{Quorum: a.WitnessQuorum, Client: client}
	for _, m := range a.Mediators {
		wc.Witnesses = append(wc.Witnesses, tlog.Witness{URL: m.WitnessEndpoint, VerifierKey: m.CosigningKey})
	}
	return wc, nil
}
