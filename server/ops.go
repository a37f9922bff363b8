package server

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// ops is the operational state of a node: metrics, health, limits, the
// reloading of its TLS material and its shutdown. Node embeds it.
type ops struct {
	metrics *metrics
	limiter *partyLimiter // nil without a rate limit

	// reconciling is set while the state is being rebuilt from the log,
	// stalled while the witnesses have not published a checkpoint covering
	// the log for longer than Config.WitnessUnhealthyAfter.
	reconciling, stalled atomic.Bool
	healthMu             sync.Mutex // serializes updateHealth

	// drainCtx ends when the node starts shutting down; streams end with it.
	drainCtx context.Context
	drain    context.CancelFunc
}

// initOps sets up the node's metrics, limits and health. New calls it once
// n.cfg is complete, before opening the log: until reconciled is called,
// every service reports NOT_SERVING.
func (n *Node) initOps() {
	n.metrics = newMetrics(n)
	n.limiter = newPartyLimiter(n.cfg.Limits, n.metrics)
	n.drainCtx, n.drain = context.WithCancel(context.Background())
	n.cfg.WitnessClient = n.metrics.instrumentWitnessClient(n.cfg.WitnessClient)
	n.reconciling.Store(true)
	n.updateHealth()
}

// reconciled marks the end of reconciliation at start.
func (n *Node) reconciled() {
	n.reconciling.Store(false)
	n.updateHealth()
}

// updateHealth sets the health status of every service from the node's
// state. The whole node ("") and every service are NOT_SERVING while
// reconciling and after a failure (see fail). SubmissionService alone is
// NOT_SERVING while the witnesses are stalled: submissions would be
// durable but not published, so an operator should send them elsewhere or
// wait; reads and deliveries from peers go on.
func (n *Node) updateHealth() {
	n.healthMu.Lock()
	defer n.healthMu.Unlock()
	up := !n.reconciling.Load() && n.failure() == nil && n.drainCtx.Err() == nil
	set := func(service string, serving bool) {
		st, v := healthpb.HealthCheckResponse_NOT_SERVING, 0.0
		if serving {
			st, v = healthpb.HealthCheckResponse_SERVING, 1
		}
		n.health.SetServingStatus(service, st)
		n.metrics.serving.WithLabelValues(service).Set(v)
	}
	set("", up)
	for _, s := range services {
		set(s, up && !(s == submissionServiceName && n.stalled.Load()))
	}
}

var submissionServiceName = parleyv1.SubmissionService_ServiceDesc.ServiceName

// monitor watches the log's publication until ctx ends: it keeps the
// log-size metrics and the checkpoint age, and marks the witnesses stalled
// when entries have waited for a witnessed checkpoint for longer than
// Config.WitnessUnhealthyAfter.
func (n *Node) monitor(ctx context.Context) {
	t := time.NewTicker(n.cfg.CheckpointInterval)
	defer t.Stop()
	var (
		lastCP       []byte
		lastSize     uint64
		lastProgress = time.Now()
	)
	for {
		now := time.Now()
		durable, ierr := n.tlog.DurableSize(ctx)
		cp, cerr := n.tlog.Checkpoint(ctx)
		size, serr := n.tlog.Size(ctx)
		if err := errors.Join(ierr, cerr, serr); err != nil {
			if ctx.Err() != nil {
				return
			}
			n.log.WarnContext(ctx, "couldn't read the log's state", "err", err)
		} else {
			if !bytes.Equal(cp, lastCP) {
				lastCP = cp
				n.metrics.published.Store(now.UnixNano())
			}
			n.metrics.logSize.WithLabelValues("durable").Set(float64(durable))
			n.metrics.logSize.WithLabelValues("tree").Set(float64(n.tlog.TreeSize()))
			n.metrics.logSize.WithLabelValues("published").Set(float64(size))
			if durable <= size || size != lastSize {
				lastProgress, lastSize = now, size
			}
			stalled := now.Sub(lastProgress) > n.cfg.WitnessUnhealthyAfter
			if n.stalled.Swap(stalled) != stalled {
				if stalled {
					n.log.ErrorContext(ctx, "no witnessed checkpoint covers the log: the witness quorum is unreachable or refusing; submissions reported NOT_SERVING",
						"unpublished", durable-size, "since", lastProgress, "after", n.cfg.WitnessUnhealthyAfter)
				} else {
					n.log.InfoContext(ctx, "witnessed checkpoints published again", "size", size)
				}
				n.updateHealth()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reload reads the node's certificate and key (Config.KeyPair) and its
// CRLs (Config.Revocations) again. Each is replaced only if it is valid as
// a whole; on error the previous one stays in force, and the error says
// what was wrong. New handshakes use the result at once; calls on
// connections made before are checked against the new CRLs too. Serve
// calls Reload when the files change; `parley node` also on SIGHUP.
func (n *Node) Reload() error {
	var errs []error
	if kp := n.cfg.KeyPair; kp != nil {
		errs = append(errs, kp.Reload())
	}
	if r := n.cfg.Revocations; r != nil {
		errs = append(errs, r.Reload())
	}
	if err := errors.Join(errs...); err != nil {
		n.metrics.reloads.WithLabelValues("error").Inc()
		n.log.Error("couldn't reload the TLS certificate or CRLs; the previous ones stay in force", "err", err)
		return err
	}
	n.metrics.reloads.WithLabelValues("ok").Inc()
	args := []any{}
	if kp := n.cfg.KeyPair; kp != nil {
		if c, err := kp.Certificate(); err == nil && c.Leaf != nil {
			args = append(args, "cert_serial", c.Leaf.SerialNumber.Text(16), "cert_not_after", c.Leaf.NotAfter)
		}
	}
	now := time.Now()
	for _, st := range n.cfg.Revocations.Status() {
		if now.After(st.NextUpdate) {
			n.log.Warn("CRL is past its next update: its CA is late publishing a new one", "domain", st.Domain, "file", st.File, "next_update", st.NextUpdate)
		}
		args = append(args, "crl_"+st.Domain, st.Revoked)
	}
	n.log.Info("reloaded the TLS certificate and CRLs", args...)
	return nil
}

// watchFiles calls Reload whenever one of the files of the node's
// certificate, key or CRLs changes (replaced, modified or resized),
// checking every Config.ReloadInterval, until ctx ends.
func (n *Node) watchFiles(ctx context.Context) {
	var files []string
	if kp := n.cfg.KeyPair; kp != nil {
		files = append(files, kp.Files()...)
	}
	files = append(files, n.cfg.Revocations.Files()...)
	if len(files) == 0 {
		return
	}
	stat := func() []os.FileInfo {
		out := make([]os.FileInfo, len(files))
		for i, f := range files {
			out[i], _ = os.Stat(f) // a missing file is a change too
		}
		return out
	}
	prev := stat()
	t := time.NewTicker(n.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := stat()
		if !slices.EqualFunc(prev, cur, sameFile) {
			prev = cur
			_ = n.Reload() // Reload logs and counts its errors
		}
	}
}

// sameFile reports whether two stats of a path show the same contents.
func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// endOnDrain gives stream handlers a context that ends when the node
// starts shutting down, so that subscriptions, which never end on their
// own, do not hold up the shutdown; their callers get UNAVAILABLE and
// reconnect to the node once it is back.
func (n *Node) endOnDrain(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	stop := context.AfterFunc(n.drainCtx, cancel)
	defer stop()
	err := handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	if n.drainCtx.Err() != nil && ss.Context().Err() == nil && (err == nil || errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled) {
		return status.Error(codes.Unavailable, "the node is shutting down; reconnect later")
	}
	return err
}

// contextStream is a server stream with another context.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }
