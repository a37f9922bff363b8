package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc/credentials"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// TileHandler returns the read-only handler of the node's exchange log in
// the C2SP tlog-tiles layout (checkpoint, tiles and entry bundles), rooted
// at "/". It does no authentication of its own: ServeTiles serves it with
// the node's mutual TLS and access rule.
func (n *Node) TileHandler() http.Handler {
	return n.tlog.TileHandler()
}

// ServeTiles serves TileHandler over HTTPS on lis with the node's mutual TLS
// configuration (Config.TLS) until ctx is done, then shuts down, waiting at
// most 5 s for requests in flight. Whoever may read the log over gRPC may
// read its tiles: any identity of the agreement (this party's operators,
// every party's nodes, the mediators) whose certificate chains to the CA of
// the trust domain it names. Standard tools such as Tessera's fsck and
// mirror can then check the log as its readers see it.
func (n *Node) ServeTiles(ctx context.Context, lis net.Listener) error {
	log := n.log.With("component", "tiles")
	srv := &http.Server{
		Handler:           n.authorizeTiles(n.TileHandler(), log),
		TLSConfig:         n.cfg.TLS.Clone(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		// Handshake failures (a client without an admitted certificate)
		// are the client's problem; keep them out of the node's warnings.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	log.Info("serving log tiles", "addr", lis.Addr().String())
	return serveHTTP(ctx, srv, func() error { return srv.ServeTLS(lis, "", "") }, "tile server")
}

// authorizeTiles admits to next only the identities that may read the log
// over gRPC: the same rule (methodAccess) decides both.
func (n *Node) authorizeTiles(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "the log's tiles are served over mutual TLS only", http.StatusForbidden)
			return
		}
		ctx := grpcpeer.NewContext(r.Context(), &grpcpeer.Peer{AuthInfo: credentials.TLSInfo{State: *r.TLS}})
		if _, err := n.authorize(ctx, parleyv1.LogService_GetEntries_FullMethodName); err != nil {
			log.DebugContext(ctx, "refused a tile request", "path", r.URL.Path, "err", err)
			http.Error(w, status.Convert(err).Message(), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
