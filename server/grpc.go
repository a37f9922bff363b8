package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	grpcvalidate "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/certs"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/server/tlog"
	"github.com/parley-dev/parley/verifier"
	"github.com/parley-dev/parley/verifier/rules"
)

// services is every gRPC service the node serves, for health and tests.
var services = []string{
	parleyv1.SubmissionService_ServiceDesc.ServiceName,
	parleyv1.ExchangeService_ServiceDesc.ServiceName,
	parleyv1.LogService_ServiceDesc.ServiceName,
	parleyv1.SubscriptionService_ServiceDesc.ServiceName,
}

// notHealth selects every call but the health service's: health checks
// need no identity beyond the TLS handshake, are not rate limited (a probe
// must not fail because its party is busy) and are not access-logged.
var notHealth = selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
	return c.Service != healthpb.Health_ServiceDesc.ServiceName
})

// GRPCServer builds the node's gRPC server: mTLS, the limits of
// Config.Limits, the four Parley services, health and reflection, behind
// this interceptor chain, outermost first:
//
//  1. Prometheus metrics (providers/prometheus), labelled with the caller's
//     trust domain;
//  2. logging through slog (callLogger): peer party, role and name,
//     method, code and duration of every finished call, never payloads
//     (health excepted);
//  3. authentication and authorization from the peer certificate (health
//     exempt), including the CRLs in force;
//  4. the per-party rate limit (health exempt);
//  5. (streams) the idle-stream timeout, per-message rate limit of
//     client streams, and the end of streams at shutdown;
//  6. validation of every request against the schema: protovalidate, but
//     by hand for Submit (validateUnary);
//  7. recovery from panics in handlers.
//
// The caller serves it on a listener; Serve does.
func (n *Node) GRPCServer() (*grpc.Server, error) {
	validator, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("couldn't build the request validator: %w", err)
	}
	calls := callLogger{log: n.log}
	recover := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		n.log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error; see the node's log")
	})
	labels := grpcprom.WithLabelsFromContext(peerPartyLabel)
	unary := []grpc.UnaryServerInterceptor{
		n.metrics.grpc.UnaryServerInterceptor(labels),
		calls.unary,
		selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(n.authenticate), notHealth),
	}
	stream := []grpc.StreamServerInterceptor{
		n.metrics.grpc.StreamServerInterceptor(labels),
		calls.stream,
		selector.StreamServerInterceptor(auth.StreamServerInterceptor(n.authenticate), notHealth),
	}
	if n.limiter != nil {
		unary = append(unary, selector.UnaryServerInterceptor(ratelimit.UnaryServerInterceptor(n.limiter), notHealth))
		stream = append(stream, selector.StreamServerInterceptor(ratelimit.StreamServerInterceptor(n.limiter), notHealth))
	}
	stream = append(stream, idleStreams(n.cfg.StreamIdleTimeout))
	if n.limiter != nil {
		// Inside the idle timeout: waiting for the rate limit is not idling.
		stream = append(stream, n.limiter.streamInterceptor)
	}
	stream = append(stream, n.endOnDrain)
	unary = append(unary, validateUnary(validator), recovery.UnaryServerInterceptor(recover))
	stream = append(stream, grpcvalidate.StreamServerInterceptor(validator), recovery.StreamServerInterceptor(recover))

	l := n.cfg.Limits
	srv := grpc.NewServer(
		grpc.Creds(certs.ServerCredentials(n.cfg.TLS)),
		grpc.MaxRecvMsgSize(l.MaxRecvMessageBytes),
		grpc.MaxSendMsgSize(l.MaxSendMessageBytes),
		grpc.MaxConcurrentStreams(l.MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: l.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: l.KeepaliveTime, Timeout: l.KeepaliveTimeout}),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.StaticStreamWindowSize(streamWindow),
		grpc.StaticConnWindowSize(connWindow),
		grpc.NumStreamWorkers(streamWorkers),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	)
	parleyv1.RegisterSubmissionServiceServer(srv, &submissionService{n: n})
	parleyv1.RegisterExchangeServiceServer(srv, &exchangeService{n: n})
	parleyv1.RegisterLogServiceServer(srv, &logService{n: n})
	parleyv1.RegisterSubscriptionServiceServer(srv, &subscriptionService{n: n})
	healthpb.RegisterHealthServer(srv, n.health)
	reflection.Register(srv)
	n.updateHealth()
	return srv, nil
}

// The HTTP/2 flow-control windows the node receives with, as a server
// and when it dials its peers. They are fixed: grpc-go's default, a
// window sized by estimating the bandwidth-delay product, sends a PING
// after the first DATA frame of each call once the last PING is answered,
// and a node answers a Submit only once the entry is durable (a
// millisecond or two later), so each ping went out and was answered on
// its own: one more write and TLS record for the node and one more
// read, write and wake-up for the caller, per call. Fixed windows cost
// nothing per call (in parley bench's acceptance phase the node's
// writes per call fell from 2.9 to 1.7 and its reads from 5.0 to 2.7, and
// the clients' CPU per call by a fifth). 1 MiB per stream is four
// times a delivery stream's window of entries in flight
// (DefaultWindow), and 4 MiB per connection bounds what one peer or
// client can have the node hold unread.
const (
	streamWindow = 1 << 20
	connWindow   = 4 << 20
)

// streamWorkers is how many goroutines the gRPC server keeps to run calls
// on: a new goroutine per call grows its stack through the interceptors,
// the handler and the signing, which cost about 5 % of a loaded node's CPU;
// a worker keeps its grown stack from call to call. Calls beyond the
// workers, while all are busy (long-lived streams among them), get a
// goroutine of their own as without workers.
const streamWorkers = 32

// Serve serves the node on lis until ctx is done or the node fails, and
// meanwhile watches the log's publication (health, metrics) and the
// certificate and CRL files (reloading them when they change). To stop, it
// reports NOT_SERVING, ends subscriptions, and waits up to
// Config.Limits.ShutdownGrace for the calls in flight before closing the
// remaining connections.
func (n *Node) Serve(ctx context.Context, lis net.Listener) error {
	srv, err := n.GRPCServer()
	if err != nil {
		return err
	}
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopBG(); wg.Wait() }()
	wg.Go(func() { n.monitor(bg) })
	wg.Go(func() { n.watchFiles(bg) })

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	n.log.Info("node serving", "addr", lis.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("grpc server stopped: %w", err)
	case <-ctx.Done():
	case <-n.failed:
	}
	n.health.Shutdown() // every service NOT_SERVING; watchers are told
	n.drain()
	n.updateHealth() // the serving metrics follow
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	grace := time.NewTimer(n.cfg.Limits.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-stopped:
	case <-grace.C:
		n.log.Warn("calls still in flight after the shutdown grace; closing their connections", "grace", n.cfg.Limits.ShutdownGrace)
		srv.Stop()
		<-stopped
	}
	if err := n.failure(); err != nil {
		return fmt.Errorf("node failed: %w", err)
	}
	return nil
}

// fail marks the node as failed: it reports NOT_SERVING, stops serving and
// Serve returns the error, so that a supervisor restarts it and it
// reconciles from the log.
func (n *Node) fail(err error) {
	n.failOnce.Do(func() {
		n.failErr = err
		close(n.failed)
	})
	n.updateHealth()
}

func (n *Node) failure() error {
	select {
	case <-n.failed:
		return n.failErr
	default:
		return nil
	}
}

// validateUnary validates every unary request against the schema's rules
// with protovalidate, except a SubmitRequest, the request on the path of
// every submission: verifier.ValidateBody checks its body by hand, with
// protovalidate's verdict at a small fraction of its cost (about 8 % of a
// loaded node's CPU went to validating submissions).
// TestSubmitRequestRules keeps SubmitRequest's own rules to the body being
// required. A refusal is InvalidArgument, as protovalidate's is, naming the
// field at fault.
func validateUnary(pv protovalidate.Validator) grpc.UnaryServerInterceptor {
	schema := grpcvalidate.UnaryServerInterceptor(pv)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		r, ok := req.(*parleyv1.SubmitRequest)
		if !ok {
			return schema(ctx, req, info, handler)
		}
		if err := submitRequestErr(r); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		return handler(ctx, req)
	}
}

// submitRequestErr checks r against the schema's rules for SubmitRequest.
func submitRequestErr(r *parleyv1.SubmitRequest) error {
	if r.GetBody() == nil {
		return errors.New("invalid SubmitRequest: body: required")
	}
	if err := verifier.ValidateBody(r.GetBody()); err != nil {
		return fmt.Errorf("invalid SubmitRequest: %w", err)
	}
	return nil
}

// callLogger logs every finished call but the health service's through
// slog, with the message, fields and levels of go-grpc-middleware's logging
// interceptor (logging.FinishCall, default server levels), plus the
// verified TLS peer so that refused calls are logged with who made them;
// never payloads. Successful calls are routine (peers poll feed heads and
// checkpoints every few seconds, operators submit): Debug. Unlike the
// library's interceptor, it builds a call's fields only when its level is
// enabled; building them for every call cost about 4 % of a loaded node's
// CPU.
type callLogger struct{ log *slog.Logger }

func (l callLogger) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	l.finished(ctx, info.FullMethod, interceptors.Unary, start, err)
	return resp, err
}

func (l callLogger) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	typ := interceptors.BidiStream
	switch {
	case info.IsClientStream && !info.IsServerStream:
		typ = interceptors.ClientStream
	case !info.IsClientStream && info.IsServerStream:
		typ = interceptors.ServerStream
	}
	l.finished(ss.Context(), info.FullMethod, typ, start, err)
	return err
}

// healthPrefix starts the full method names of the health service.
var healthPrefix = "/" + healthpb.Health_ServiceDesc.ServiceName + "/"

func (l callLogger) finished(ctx context.Context, fullMethod string, typ interceptors.GRPCType, start time.Time, err error) {
	if errors.Is(err, io.EOF) {
		err = nil
	}
	code := status.Code(err)
	lvl := slog.LevelDebug
	if code != codes.OK {
		lvl = slog.Level(logging.DefaultServerCodeToLevel(code))
	}
	if strings.HasPrefix(fullMethod, healthPrefix) || !l.log.Enabled(ctx, lvl) {
		return
	}
	service, method, ok := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	if !ok {
		service, method = "unknown", "unknown"
	}
	fields := make([]any, 0, 32)
	if id, ok := certs.PeerIdentity(ctx); ok {
		fields = append(fields, "peer_party", id.Party, "peer_role", string(id.Role), "peer_name", id.Name)
	}
	fields = append(fields,
		logging.SystemTag[0], logging.SystemTag[1],
		logging.ComponentFieldKey, logging.KindServerFieldValue,
		logging.ServiceFieldKey, service,
		logging.MethodFieldKey, method,
		logging.MethodTypeFieldKey, string(typ),
	)
	if p, ok := grpcpeer.FromContext(ctx); ok {
		fields = append(fields, "peer.address", p.Addr.String())
	}
	fields = append(fields, "grpc.start_time", start.Format(time.RFC3339))
	if d, ok := ctx.Deadline(); ok {
		fields = append(fields, "grpc.request.deadline", d.Format(time.RFC3339))
	}
	fields = append(fields, "grpc.code", code.String())
	if err != nil {
		fields = append(fields, "grpc.error", err.Error())
	}
	fields = append(fields, logging.DurationToTimeMillisFields(time.Since(start))...)
	l.log.Log(ctx, lvl, "finished call", fields...)
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
