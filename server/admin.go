package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	channelzsvc "google.golang.org/grpc/channelz/service"
	"google.golang.org/grpc/reflection"
)

// CheckAdminAddress reports whether addr (host:port) is a loopback address
// that the admin listener may use: an IP loopback address (127.0.0.0/8,
// ::1) or "localhost". The admin port has no authentication of its own, so
// it must never be reachable from another machine, and in particular never
// share the inter-party port.
func CheckAdminAddress(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q is not host:port: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("admin address %q is not a loopback address: the admin port has no authentication, use 127.0.0.1:PORT or [::1]:PORT and reach it from another machine only through an SSH tunnel or a local scraper", addr)
	}
	return nil
}

// AdminHandler returns the node's admin handler:
//
//   - /metrics: Prometheus metrics of the node (domain metrics, gRPC server
//     metrics by caller trust domain, Go runtime and process);
//   - /debug/pprof/: the Go profiler;
//   - the gRPC channelz service (grpc.channelz.v1.Channelz), with
//     reflection, for gRPC requests over cleartext HTTP/2, as made by
//     grpcdebug or `grpcurl -plaintext`.
//
// It does no authentication: serve it only on loopback, with ServeAdmin.
func (n *Node) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "parley node %s admin: /metrics, /debug/pprof/, gRPC channelz (cleartext HTTP/2)\n", n.party)
	})
	admin := grpc.NewServer()
	channelzsvc.RegisterChannelzServiceToServer(admin)
	reflection.Register(admin)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			admin.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// ServeAdmin serves AdminHandler on lis, over HTTP/1.1 and cleartext
// HTTP/2, until ctx is done. lis must listen on a loopback address (see
// CheckAdminAddress).
func (n *Node) ServeAdmin(ctx context.Context, lis net.Listener) error {
	if err := CheckAdminAddress(lis.Addr().String()); err != nil {
		return fmt.Errorf("refusing to serve the admin handler: %w", err)
	}
	log := n.log.With("component", "admin")
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           n.AdminHandler(),
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	log.Info("serving admin (metrics, pprof, channelz) on loopback", "addr", lis.Addr().String())
	return serveHTTP(ctx, srv, func() error { return srv.Serve(lis) }, "admin server")
}

// serveHTTP runs serve (srv's Serve or ServeTLS) until it fails or ctx is
// done, then shuts srv down, giving requests in flight 5 seconds. what
// names the server in errors.
func serveHTTP(ctx context.Context, srv *http.Server, serve func() error, what string) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return fmt.Errorf("%s stopped: %w", what, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s stopped: %w", what, err)
	}
	return nil
}
