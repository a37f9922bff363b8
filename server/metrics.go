package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/envelope"
	"github.com/parley-dev/parley/verifier"
)

// metrics are a node's Prometheus metrics. Each node has a registry of its
// own, so that several nodes can run in one process (tests, the demo). Every
// label takes values from a bounded set: parties and mediators of the
// agreement, witness hosts, fixed reasons; never anything a peer can choose
// freely.
type metrics struct {
	reg  *prometheus.Registry
	grpc *grpcprom.ServerMetrics

	accepted       *prometheus.CounterVec   // sender, source
	duplicates     *prometheus.CounterVec   // sender, source
	rejected       *prometheus.CounterVec   // reason, source
	deliveryLag    *prometheus.GaugeVec     // peer
	rateLimited    *prometheus.CounterVec   // party
	witnessLatency *prometheus.HistogramVec // witness, code
	reloads        *prometheus.CounterVec   // result
	logSize        *prometheus.GaugeVec     // state: durable, tree, published
	serving        *prometheus.GaugeVec     // service
	findingsTime   prometheus.Histogram     // one rule evaluation over the log

	// published is when the node last saw a new published checkpoint
	// (unix nanoseconds), for parley_checkpoint_age_seconds.
	published atomic.Int64
}

// newMetrics registers the node's metrics. n's configuration must be
// complete; the collectors that read the node's state (findings,
// certificate expiry, CRLs) call into n at scrape time.
func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		// peer_party labels every RPC metric with the caller's trust domain,
		// so that an operator sees who is calling, and who is refused.
		grpc: grpcprom.NewServerMetrics(
			grpcprom.WithServerHandlingTimeHistogram(),
			grpcprom.WithContextLabels("peer_party"),
		),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_entries_accepted_total",
			Help: "Entries verified and durably logged, by sender party and source (submission: this party's operators; peer: delivered by the sender's node; relay: pulled from another node).",
		}, []string{"sender", "source"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_entries_duplicate_total",
			Help: "Entries received again that were already logged (harmless by design), by sender party and source.",
		}, []string{"sender", "source"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_verification_failures_total",
			Help: "Entries refused by the verifier, by reason and source.",
		}, []string{"reason", "source"}),
		deliveryLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "parley_delivery_lag_entries",
			Help: "Entries of this node's log not yet acknowledged by a peer node, by peer party.",
		}, []string{"peer"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_rate_limited_total",
			Help: "Calls refused with RESOURCE_EXHAUSTED by the per-party rate limit, by the caller's trust domain.",
		}, []string{"party"}),
		witnessLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "parley_witness_request_duration_seconds",
			Help:    "Duration of requests to the mediators' witnesses (C2SP tlog-witness add-checkpoint), by witness host and HTTP status code (or \"error\").",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"witness", "code"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_tls_reloads_total",
			Help: "Reloads of the node's certificate and CRLs, by result (ok, error).",
		}, []string{"result"}),
		logSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "parley_log_entries",
			Help: "Size of the exchange log: durable (acknowledged, in the write-ahead log), tree (integrated in the Merkle tree) and published (covered by the latest witnessed checkpoint).",
		}, []string{"state"}),
		findingsTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_findings_evaluation_seconds",
			Help:    "Duration of one evaluation of the agreed rules over the whole log (read from disk, decoded, judged).",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		serving: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "parley_health_serving",
			Help: "1 if the gRPC health service reports SERVING for the service (\"\" is the whole node), else 0.",
		}, []string{"service"}),
	}
	m.published.Store(time.Now().UnixNano())
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.grpc, m.accepted, m.duplicates, m.rejected, m.deliveryLag, m.rateLimited,
		m.witnessLatency, m.reloads, m.logSize, m.serving, m.findingsTime,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "parley_checkpoint_age_seconds",
			Help: "Time since this node last published a new checkpoint (at most since the node started).",
		}, func() float64 { return time.Since(time.Unix(0, m.published.Load())).Seconds() }),
		&nodeCollector{n: n},
	)
	for _, r := range []string{"ok", "error"} {
		m.reloads.WithLabelValues(r)
	}
	return m
}

// setDeliveryLag records how many entries of this node's log peer has not
// acknowledged yet. The delivery worker of each peer calls it.
func (m *metrics) setDeliveryLag(peer string, entries uint64) {
	m.deliveryLag.WithLabelValues(peer).Set(float64(entries))
}

// findingsEvaluated records how long an evaluation of the rules took.
func (m *metrics) findingsEvaluated(d time.Duration) {
	m.findingsTime.Observe(d.Seconds())
}

// entryAccepted counts an entry accepted from source.
func (m *metrics) entryAccepted(sender, source string, duplicate bool) {
	if duplicate {
		m.duplicates.WithLabelValues(sender, sourceLabel(source)).Inc()
		return
	}
	m.accepted.WithLabelValues(sender, sourceLabel(source)).Inc()
}

// entryRejected counts an entry the verifier refused.
func (m *metrics) entryRejected(err error, source string) {
	m.rejected.WithLabelValues(failureReason(err), sourceLabel(source)).Inc()
}

// sourceLabel reduces a source as passed to accept ("submission",
// "peer:spiffe://bravo/node/node") to its kind ("submission", "peer").
func sourceLabel(source string) string {
	kind, _, _ := strings.Cut(source, ":")
	if kind == "" {
		return "unknown"
	}
	return kind
}

// failureReasons maps the verifier's and the envelope's sentinel errors to
// the reason label of parley_verification_failures_total, most specific
// first.
var failureReasons = []struct {
	err    error
	reason string
}{
	{verifier.ErrEquivocation, "equivocation"},
	{verifier.ErrGap, "gap"},
	{verifier.ErrWrongPrev, "wrong_prev"},
	{verifier.ErrMissingHistory, "missing_history"},
	{verifier.ErrWrongAgreement, "wrong_agreement"},
	{verifier.ErrUnknownSender, "unknown_sender"},
	{verifier.ErrKeyNotValid, "key_not_valid"},
	{envelope.ErrUnknownKey, "unknown_key"},
	{envelope.ErrBadSignature, "bad_signature"},
	{envelope.ErrTooLarge, "too_large"},
	{envelope.ErrPayloadType, "payload_type"},
	{envelope.ErrNonCanonical, "non_canonical"},
	{envelope.ErrMalformed, "malformed"},
	{verifier.ErrInvalid, "invalid"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "deadline_exceeded"},
}

// failureReason names why an entry was refused.
func failureReason(err error) string {
	for _, r := range failureReasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "other"
}

// instrumentWitnessClient returns a copy of c whose requests are timed in
// parley_witness_request_duration_seconds. It returns nil for nil.
func (m *metrics) instrumentWitnessClient(c *http.Client) *http.Client {
	if c == nil {
		return nil
	}
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	cc := *c
	cc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		start := time.Now()
		resp, err := next.RoundTrip(r)
		code := "error"
		if err == nil {
			code = strconv.Itoa(resp.StatusCode)
		}
		m.witnessLatency.WithLabelValues(r.URL.Host, code).Observe(time.Since(start).Seconds())
		return resp, err
	})
	return &cc
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// nodeCollector reads, at scrape time, the metrics that are functions of
// the node's state: findings, certificate expiry and CRLs.
type nodeCollector struct{ n *Node }

var (
	findingsDesc = prometheus.NewDesc("parley_findings",
		"Findings of the agreed rules over every accepted entry, by rule and the party the finding is about, as of the node's last evaluation: a scrape never waits for one, and starts one when the last is stale.",
		[]string{"rule", "party"}, nil)
	certExpiryDesc = prometheus.NewDesc("parley_tls_certificate_expiry_timestamp_seconds",
		"NotAfter of the node's TLS certificate in force, in unix seconds.", nil, nil)
	crlNextUpdateDesc = prometheus.NewDesc("parley_crl_next_update_timestamp_seconds",
		"Earliest NextUpdate of the CRLs in force for a trust domain, in unix seconds: past it, the domain's CA is late publishing a CRL.",
		[]string{"domain"}, nil)
	crlRevokedDesc = prometheus.NewDesc("parley_crl_revoked_certificates",
		"Serial numbers listed by the CRLs in force for a trust domain.",
		[]string{"domain"}, nil)
)

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- findingsDesc
	ch <- certExpiryDesc
	ch <- crlNextUpdateDesc
	ch <- crlRevokedDesc
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	// Never waits for an evaluation; before the first one, the gauge is
	// left out rather than reported as 0.
	for k, v := range c.n.scrapeFindings() {
		ch <- prometheus.MustNewConstMetric(findingsDesc, prometheus.GaugeValue, float64(v), k.rule, k.party)
	}
	if kp := c.n.cfg.KeyPair; kp != nil {
		if cert, err := kp.Certificate(); err == nil && cert.Leaf != nil {
			ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, float64(cert.Leaf.NotAfter.Unix()))
		}
	}
	next := map[string]time.Time{}
	revoked := map[string]int{}
	for _, st := range c.n.cfg.Revocations.Status() {
		if t, ok := next[st.Domain]; !ok || st.NextUpdate.Before(t) {
			next[st.Domain] = st.NextUpdate
		}
		revoked[st.Domain] += st.Revoked
	}
	for d, t := range next {
		ch <- prometheus.MustNewConstMetric(crlNextUpdateDesc, prometheus.GaugeValue, float64(t.Unix()), d)
		ch <- prometheus.MustNewConstMetric(crlRevokedDesc, prometheus.GaugeValue, float64(revoked[d]), d)
	}
}

// peerPartyLabel labels RPC metrics with the caller's trust domain.
func peerPartyLabel(ctx context.Context) prometheus.Labels {
	if id, ok := certs.PeerIdentity(ctx); ok {
		return prometheus.Labels{"peer_party": id.Party}
	}
	return prometheus.Labels{"peer_party": ""}
}
