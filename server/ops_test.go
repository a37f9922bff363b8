package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	"google.golang.org/grpc"
	channelzpb "google.golang.org/grpc/channelz/grpc_channelz_v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
	"github.com/parley-dev/parley/server"
)

// startConfigured generates a network, lets edit change its files (node
// configurations, CRLs) and starts it.
func startConfigured(t testing.TB, opts localnet.Options, edit func(*localnet.Network)) *localnet.Running {
	t.Helper()
	opts.Dir = t.TempDir()
	ctx := context.Background()
	net, err := localnet.Generate(ctx, opts)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	edit(net)
	run, err := net.Start(ctx, testLogger(t))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(run.Stop)
	return run
}

func updateConfig(t testing.TB, net *localnet.Network, party string, edit func(*config.Node)) {
	t.Helper()
	if err := net.UpdateNodeConfig(party, edit); err != nil {
		t.Fatal(err)
	}
}

// serveAdmin serves node's admin port on a loopback port and returns its
// base URL.
func serveAdmin(t testing.TB, node *server.Node) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.ServeAdmin(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeAdmin: %v", err)
		}
	})
	return "http://" + lis.Addr().String()
}

func scrape(t testing.TB, baseURL string) string {
	t.Helper()
	resp, err := http.Get(baseURL + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: got %s, %v; want 200", resp.Status, err)
	}
	return string(body)
}

// metric sums the samples of name, in the Prometheus text format, whose
// labels include want.
func metric(body, name string, want map[string]string) float64 {
	sum := 0.0
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		labels := map[string]string{}
		if _, ls, ok := strings.Cut(series, "{"); ok {
			for _, kv := range strings.Split(strings.TrimSuffix(ls, "}"), ",") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					labels[k] = strings.Trim(v, `"`)
				}
			}
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if f, err := strconv.ParseFloat(strings.Fields(value)[0], 64); err == nil && match {
			sum += f
		}
	}
	return sum
}

// TestMetricsOverAdmin scrapes the admin listener before and after
// submissions and refused envelopes, and checks pprof and channelz.
func TestMetricsOverAdmin(t *testing.T) {
	run := startNetwork(t, localnet.Options{NoMediators: true, Parties: []string{"alpha", "bravo"}})
	ctx := context.Background()
	admin := serveAdmin(t, run.Nodes["alpha"])
	accepted := map[string]string{"sender": "alpha", "source": "submission"}
	submits := map[string]string{"grpc_method": "Submit", "grpc_code": "OK", "peer_party": "alpha"}

	before := scrape(t, admin)
	alpha := operator(t, run, "alpha")
	for i := range 3 {
		if _, err := alpha.Notify(ctx, notification(9000+uint32(i))); err != nil {
			t.Fatalf("Notify: %v", err)
		}
	}
	if _, err := alpha.SubmitEnvelope(ctx, []byte("not an envelope")); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("SubmitEnvelope(garbage): got %v, want InvalidArgument", err)
	}
	// The log-size gauges follow the log within a checkpoint interval.
	var after string
	waitFor(t, 20*time.Second, "the published log size to reach 3", func() (bool, error) {
		after = scrape(t, admin)
		return metric(after, "parley_log_entries", map[string]string{"state": "published"}) >= 3, nil
	})
	tests := []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"parley_entries_accepted_total", accepted, 3},
		{"parley_verification_failures_total", map[string]string{"reason": "malformed", "source": "submission"}, 1},
		{"grpc_server_handled_total", submits, 3},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "SubmitEnvelope", "grpc_code": "InvalidArgument"}, 1},
	}
	for _, tt := range tests {
		if got := metric(after, tt.name, tt.labels) - metric(before, tt.name, tt.labels); got != tt.delta {
			t.Errorf("%s%v: went up by %v, want %v", tt.name, tt.labels, got, tt.delta)
		}
	}
	for _, name := range []string{"parley_checkpoint_age_seconds", "parley_tls_certificate_expiry_timestamp_seconds", "go_goroutines"} {
		if !strings.Contains(after, "\n"+name+" ") {
			t.Errorf("metric %s missing from the scrape", name)
		}
	}
	if got := metric(after, "parley_health_serving", map[string]string{"service": "parley.v1.SubmissionService"}); got != 1 {
		t.Errorf("parley_health_serving of SubmissionService: got %v, want 1", got)
	}

	// A late notification (10 days ahead, 42 required) shows in the
	// findings gauge: a scrape never waits for an evaluation, it starts one
	// and a later scrape reports it.
	late := notification(9500)
	late.Designation = "Late"
	late.Start = timestamppb.New(time.Now().Add(10 * 24 * time.Hour).Truncate(time.Hour))
	late.End = timestamppb.New(late.Start.AsTime().Add(72 * time.Hour))
	if _, err := alpha.Notify(ctx, late); err != nil {
		t.Fatalf("Notify(late): %v", err)
	}
	lead := map[string]string{"rule": "VD.V.lead", "party": "alpha"}
	waitFor(t, 20*time.Second, "parley_findings to report the late notification", func() (bool, error) {
		return metric(scrape(t, admin), "parley_findings", lead) == 1, nil
	})
	// The scrapes' evaluations counted the findings and kept none: a list
	// of findings can be longer than the log.
	if n := run.Nodes["alpha"].HeldFindings(); n >= 0 {
		t.Errorf("after scrapes alone the node holds a list of %d findings, want none", n)
	}
	// Once a query evaluated the list, scrapes count it: the same counts.
	listed, err := alpha.Findings(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if n := run.Nodes["alpha"].HeldFindings(); n != len(listed) {
		t.Errorf("after ListFindings the node holds %d findings, want the %d listed", n, len(listed))
	}
	counts := map[string]float64{}
	for _, f := range listed {
		counts[f.GetRule()+"/"+f.GetParty()]++
	}
	after = scrape(t, admin)
	for k, want := range counts {
		rule, party, _ := strings.Cut(k, "/")
		if got := metric(after, "parley_findings", map[string]string{"rule": rule, "party": party}); got != want {
			t.Errorf("parley_findings{rule=%q,party=%q} = %v, want %v as listed", rule, party, got, want)
		}
	}

	resp, err := http.Get(admin + "/debug/pprof/")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pprof: got %v, %v; want 200", resp, err)
	}
	resp.Body.Close()

	// channelz over cleartext HTTP/2 sees the node's inter-party server.
	conn, err := grpc.NewClient(strings.TrimPrefix(admin, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	servers, err := channelzpb.NewChannelzClient(conn).GetServers(ctx, &channelzpb.GetServersRequest{})
	if err != nil {
		t.Fatalf("channelz GetServers: %v", err)
	}
	found := false
	for _, s := range servers.GetServer() {
		for _, ls := range s.GetListenSocket() {
			found = found || ls.GetName() == run.Parties["alpha"].Address
		}
	}
	if !found {
		t.Errorf("channelz lists no server listening on alpha's address %s: %v", run.Parties["alpha"].Address, servers)
	}
}

// TestAdminRefusesNonLoopback checks that the admin port never listens
// beyond loopback, in the library and in the configuration.
func TestAdminRefusesNonLoopback(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:9100", true},
		{"[::1]:9100", true},
		{"localhost:9100", true},
		{"0.0.0.0:9100", false},
		{":9100", false},
		{"[::]:9100", false},
		{"10.0.0.1:9100", false},
		{"node.example:9100", false},
		{"127.0.0.1", false},
	}
	for _, tt := range tests {
		if err := server.CheckAdminAddress(tt.addr); (err == nil) != tt.ok {
			t.Errorf("CheckAdminAddress(%q): got %v, want ok=%v", tt.addr, err, tt.ok)
		}
	}
	run := startNetwork(t, localnet.Options{NoMediators: true, Parties: []string{"alpha", "bravo"}})
	lis, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skipf("can't listen on all interfaces: %v", err)
	}
	defer lis.Close()
	if err := run.Nodes["alpha"].ServeAdmin(context.Background(), lis); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("ServeAdmin on %s: got %v, want a refusal", lis.Addr(), err)
	}
	updateConfig(t, run.Network, "alpha", func(c *config.Node) { c.AdminListen = "0.0.0.0:9100" })
	if _, err := config.Load(run.Parties["alpha"].ConfigFile); err == nil || !strings.Contains(err.Error(), "admin_listen") {
		t.Fatalf("config.Load with admin_listen 0.0.0.0:9100: got %v, want an admin_listen error", err)
	}
}

// writeCRL writes a CRL of ca, numbered number, revoking serials, to path.
func writeCRL(t testing.TB, ca *certs.CA, path string, number int64, serials ...*big.Int) {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now()})
	}
	now := time.Now()
	crl, err := ca.RevocationList(entries, big.NewInt(number), now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Atomically, as 'parley certs revoke' does: the node never reads a
	// partial file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, crl, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// handshake opens a TLS connection to party's node presenting cert and
// returns the server's certificate, or the handshake's error.
func handshake(t testing.TB, run *localnet.Running, party string, cert *tls.Certificate) (*x509.Certificate, error) {
	t.Helper()
	bundle, err := config.TrustBundle(run.Agreement.Agreement)
	if err != nil {
		t.Fatal(err)
	}
	cfg := certs.ClientConfig(bundle, certs.Static(*cert), party)
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.Dial("tcp", run.Parties[party].Address, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// TLS 1.3 servers report a refused client certificate after the
	// client's handshake completes: read to see it.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return nil, err
		}
	}
	return conn.ConnectionState().PeerCertificates[0], nil
}

// TestRevokedCertRefusedAfterCRLReload revokes an operator certificate
// while the node runs: once the node reloads the CRL file (by watching it),
// the certificate is refused at the handshake, and a connection made before
// the revocation is refused on its next call.
func TestRevokedCertRefusedAfterCRLReload(t *testing.T) {
	var crlPath string
	run := startConfigured(t, localnet.Options{NoMediators: true, Parties: []string{"alpha", "bravo"}}, func(n *localnet.Network) {
		crlPath = filepath.Join(n.Dir, "alpha", "ca.crl")
		ca := loadCAFiles(t, n.Parties["alpha"])
		writeCRL(t, ca, crlPath, 1)
		updateConfig(t, n, "alpha", func(c *config.Node) {
			c.CRLs = map[string]string{"alpha": crlPath}
			c.ReloadInterval = "100ms"
		})
	})
	ctx := context.Background()
	ca := loadCA(t, run, "alpha")
	doomed := leaf(t, ca, certs.RoleOperator, "doomed")
	kept := leaf(t, ca, certs.RoleOperator, "kept")
	early := dialWith(t, run, "alpha", doomed)
	if _, err := early.Notify(ctx, notification(100)); err != nil {
		t.Fatalf("Notify before the revocation: %v", err)
	}
	if _, err := handshake(t, run, "alpha", doomed); err != nil {
		t.Fatalf("handshake before the revocation: %v", err)
	}

	writeCRL(t, ca, crlPath, 2, doomed.Leaf.SerialNumber)
	revoked := time.Now()
	waitFor(t, 30*time.Second, "the node to refuse the revoked certificate at the handshake", func() (bool, error) {
		_, err := handshake(t, run, "alpha", doomed)
		return err != nil, nil
	})
	t.Logf("revoked certificate refused %v after the CRL file changed (reload_interval 100ms)", time.Since(revoked).Round(time.Millisecond))
	_, err := handshake(t, run, "alpha", doomed)
	if err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("handshake with the revoked certificate: got %v, want a refused certificate", err)
	}
	// A new client with the revoked certificate cannot call.
	if _, err := dialWith(t, run, "alpha", doomed).Notify(ctx, notification(100)); status.Code(err) != codes.Unavailable {
		t.Fatalf("Notify on a new connection with the revoked certificate: got %v, want Unavailable (handshake refused)", err)
	}
	// The connection made before the revocation is cut off too.
	if _, err := early.Notify(ctx, notification(100)); status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("Notify on the connection made before the revocation: got %v, want Unauthenticated (revoked)", err)
	}
	// Other certificates of the same CA are unaffected.
	if _, err := dialWith(t, run, "alpha", kept).Notify(ctx, notification(100)); err != nil {
		t.Fatalf("Notify with an unrevoked certificate: %v", err)
	}
	// An older CRL (a replay) is refused; the revocation stays in force.
	writeCRL(t, ca, crlPath, 1)
	if err := run.Nodes["alpha"].Reload(); err == nil || !strings.Contains(err.Error(), "lower than") {
		t.Fatalf("Reload of an older CRL: got %v, want a refusal", err)
	}
	if _, err := handshake(t, run, "alpha", doomed); err == nil {
		t.Fatal("handshake with the revoked certificate after an older CRL: got success, want a refusal")
	}
}

// TestRenewedCertServedAfterReload renews the node's certificate on disk;
// after Reload (what SIGHUP does) new handshakes get the new certificate,
// without a restart.
func TestRenewedCertServedAfterReload(t *testing.T) {
	run := startConfigured(t, localnet.Options{NoMediators: true, Parties: []string{"alpha", "bravo"}}, func(n *localnet.Network) {
		// Only Reload, not the file watch, picks the new pair up.
		updateConfig(t, n, "alpha", func(c *config.Node) { c.ReloadInterval = "1h" })
	})
	ctx := context.Background()
	ca := loadCA(t, run, "alpha")
	op := leaf(t, ca, certs.RoleOperator, "ops2")
	old, err := handshake(t, run, "alpha", op)
	if err != nil {
		t.Fatal(err)
	}
	p := run.Parties["alpha"]
	renewed, err := ca.Issue(certs.IssueRequest{Role: certs.RoleNode, Name: "node", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	key, err := renewed.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := certs.WriteFiles(filepath.Dir(p.NodeCertFile), "node", renewed.CertPEM(), key); err != nil {
		t.Fatal(err)
	}
	if got, err := handshake(t, run, "alpha", op); err != nil || got.SerialNumber.Cmp(old.SerialNumber) != 0 {
		t.Fatalf("before Reload: got serial %v, %v; want the old certificate %x", got.SerialNumber, err, old.SerialNumber)
	}
	if err := run.Nodes["alpha"].Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	got, err := handshake(t, run, "alpha", op)
	if err != nil {
		t.Fatal(err)
	}
	if got.SerialNumber.Cmp(renewed.Cert.SerialNumber) != 0 {
		t.Fatalf("after Reload: server presents serial %x, want the renewed %x", got.SerialNumber, renewed.Cert.SerialNumber)
	}
	// The node keeps working with the renewed certificate.
	if _, err := operator(t, run, "alpha").Notify(ctx, notification(100)); err != nil {
		t.Fatalf("Notify after the renewal: %v", err)
	}
	// A broken pair is refused and the renewed one stays in force.
	if err := os.WriteFile(p.NodeKeyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run.Nodes["alpha"].Reload(); err == nil {
		t.Fatal("Reload of a broken key: got success, want an error")
	}
	if got, err := handshake(t, run, "alpha", op); err != nil || got.SerialNumber.Cmp(renewed.Cert.SerialNumber) != 0 {
		t.Fatalf("after a failed Reload: got %v, %v; want the renewed certificate still served", got, err)
	}
}

// TestRateLimitPerParty floods alpha's node from bravo's node: bravo's
// calls above its budget fail with RESOURCE_EXHAUSTED, while alpha's own
// operator, another trust domain, is served throughout.
func TestRateLimitPerParty(t *testing.T) {
	run := startConfigured(t, localnet.Options{NoMediators: true, Parties: []string{"alpha", "bravo"}}, func(n *localnet.Network) {
		updateConfig(t, n, "alpha", func(c *config.Node) {
			c.Limits.RatePerParty = 2
			c.Limits.BurstPerParty = 5
		})
	})
	ctx := context.Background()
	flooder := nodeClient(t, run.Network, "alpha", "bravo")
	victim := operator(t, run, "alpha")

	const flood = 60
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		codesSeen = map[codes.Code]int{}
	)
	start := make(chan struct{})
	for range flood {
		wg.Go(func() {
			<-start
			_, err := flooder.Exchange.FeedHeads(ctx, &parleyv1.FeedHeadsRequest{}, retry.Disable())
			mu.Lock()
			codesSeen[status.Code(err)]++
			mu.Unlock()
		})
	}
	close(start)
	// While bravo floods, alpha's operator is within its own budget.
	for i := range 4 {
		if _, err := victim.Entries(ctx, 0, 10); err != nil {
			t.Errorf("alpha's operator, call %d during the flood: %v", i, err)
		}
	}
	wg.Wait()
	t.Logf("bravo's flood of %d calls: %v", flood, codesSeen)
	// bravo's budget is spent: the client's retries with backoff carry a
	// read through once the bucket refills.
	if _, err := flooder.Exchange.FeedHeads(ctx, &parleyv1.FeedHeadsRequest{}); err != nil {
		t.Fatalf("FeedHeads with the client's retries right after the flood: %v", err)
	}
	if codesSeen[codes.ResourceExhausted] == 0 || codesSeen[codes.OK] == 0 || codesSeen[codes.OK]+codesSeen[codes.ResourceExhausted] != flood {
		t.Fatalf("bravo's flood of %d calls: got codes %v, want some OK and the rest ResourceExhausted", flood, codesSeen)
	}
	// Only a handful pass: the burst, and what the rate refills meanwhile.
	if ok := codesSeen[codes.OK]; ok > 5+10 {
		t.Errorf("bravo's flood: %d calls passed, want about the burst of 5", ok)
	}
	rec := httptest.NewRecorder()
	run.Nodes["alpha"].AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	// bravo's node also syncs with alpha's, within the same budget.
	if got := metric(body, "parley_rate_limited_total", map[string]string{"party": "bravo"}); got < float64(codesSeen[codes.ResourceExhausted]) {
		t.Errorf("parley_rate_limited_total{party=bravo}: got %v, want at least %d", got, codesSeen[codes.ResourceExhausted])
	}
	if got := metric(body, "parley_rate_limited_total", map[string]string{"party": "alpha"}); got != 0 {
		t.Errorf("parley_rate_limited_total{party=alpha}: got %v, want 0", got)
	}
	// Health checks are never limited, even for the flooding party.
	for range 10 {
		if ok, err := flooder.Healthy(ctx, ""); err != nil || !ok {
			t.Fatalf("health check from bravo after the flood: got %v, %v; want SERVING", ok, err)
		}
	}
	rec = httptest.NewRecorder()
	run.Nodes["alpha"].AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if got := metric(rec.Body.String(), "grpc_server_handled_total", map[string]string{"grpc_service": "grpc.health.v1.Health", "grpc_code": "ResourceExhausted"}); got != 0 {
		t.Errorf("health checks refused with ResourceExhausted: %v, want 0", got)
	}
}

// healthProbe returns the path of grpc-health-probe: $PARLEY_TOOLS_BIN's
// if CI built it there, else built now from tools/healthprobe.
func healthProbe(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("PARLEY_TOOLS_BIN"); dir != "" {
		if p := filepath.Join(dir, "grpc-health-probe"); fileExists(p) {
			return p
		}
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Skipf("grpc-health-probe: can't find the module root: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(t.TempDir(), "grpc-health-probe")
	cmd := exec.Command("go", "build", "-modfile=tools/healthprobe/go.mod", "-o", bin, "github.com/grpc-ecosystem/grpc-health-probe")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("grpc-health-probe could not be built from tools/healthprobe (offline without a module cache?): %v\n%s", err, out)
	}
	return bin
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestHealthProbe runs grpc-health-probe, an outside client, against a
// node over mutual TLS with an operator certificate.
func TestHealthProbe(t *testing.T) {
	probe := healthProbe(t)
	run := startNetwork(t, localnet.Options{NoMediators: true, Parties: []string{"alpha", "bravo"}})
	p := run.Parties["alpha"]
	_, port, _ := net.SplitHostPort(p.Address)
	for _, service := range []string{"", "parley.v1.SubmissionService", "parley.v1.LogService"} {
		cmd := exec.Command(probe, "-addr", "localhost:"+port, "-service", service,
			"-tls", "-tls-ca-cert", p.CAFile, "-tls-client-cert", p.OperatorCert, "-tls-client-key", p.OperatorKey,
			"-tls-server-name", "localhost", "-connect-timeout", "10s", "-rpc-timeout", "10s")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "status: SERVING") {
			t.Errorf("grpc-health-probe -service %q: got %v\n%s\nwant status: SERVING", service, err, out)
		}
	}
	// Without a client certificate the handshake is refused.
	out, err := exec.Command(probe, "-addr", "localhost:"+port, "-tls", "-tls-ca-cert", p.CAFile,
		"-tls-server-name", "localhost", "-connect-timeout", "2s").CombinedOutput()
	if err == nil {
		t.Errorf("grpc-health-probe without a client certificate: got success\n%s\nwant a failure", out)
	}
}

// TestShutdownEndsSubscriptions stops a node with a subscription open: the
// subscriber is told to reconnect (Unavailable) instead of holding the
// shutdown for the whole grace period.
func TestShutdownEndsSubscriptions(t *testing.T) {
	run := startConfigured(t, localnet.Options{NoMediators: true, Parties: []string{"alpha", "bravo"}}, func(n *localnet.Network) {
		updateConfig(t, n, "alpha", func(c *config.Node) { c.Limits.ShutdownGrace = "2m" })
	})
	ctx := context.Background()
	alpha := operator(t, run, "alpha")
	stream, err := alpha.Subscription.Subscribe(ctx, &parleyv1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alpha.Notify(ctx, notification(100)); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("Recv: %v", err)
	}
	stopped := make(chan struct{})
	go func() { run.Stop(); close(stopped) }()
	for {
		_, err := stream.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("subscription at shutdown: got %v, want Unavailable", err)
		}
		break
	}
	<-stopped
}

func loadCAFiles(t testing.TB, p *localnet.Party) *certs.CA {
	t.Helper()
	ca, err := certs.LoadCA(readFile(t, p.CAFile), readFile(t, strings.TrimSuffix(p.CAFile, ".crt")+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// TestHealthWhileWitnessesDown stops the mediators' witnesses under a
// running node: once entries have waited past witness_unhealthy_after for a
// witnessed checkpoint, SubmissionService reports NOT_SERVING (the rest of
// the node still serves), and SERVING again once the witnesses are back.
func TestHealthWhileWitnessesDown(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts witnesses")
	}
	ctx := context.Background()
	net, err := localnet.Generate(ctx, localnet.Options{Dir: t.TempDir(), Parties: []string{"alpha", "bravo"}})
	if err != nil {
		t.Fatal(err)
	}
	updateConfig(t, net, "alpha", func(c *config.Node) { c.WitnessUnhealthyAfter = "1s" })
	logger := testLogger(t)
	witnesses, err := net.StartWitnesses(ctx, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { witnesses.Stop() }) // the latest, after the nodes
	nodes, err := net.StartNodes(ctx, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nodes.Stop)
	alpha, err := net.Operator(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alpha.Close() })
	serving := func(service string) bool {
		ok, err := alpha.Healthy(ctx, service)
		return err == nil && ok
	}
	const submission = "parley.v1.SubmissionService"
	if _, err := alpha.Notify(ctx, notification(100)); err != nil {
		t.Fatal(err)
	}
	if !serving(submission) {
		t.Fatal("SubmissionService not SERVING with the witnesses up")
	}

	witnesses.Stop()
	if _, err := alpha.Notify(ctx, notification(200)); err != nil {
		t.Fatalf("Notify with the witnesses down: %v (entries must still be accepted durably)", err)
	}
	waitFor(t, 30*time.Second, "SubmissionService to report NOT_SERVING", func() (bool, error) {
		return !serving(submission), nil
	})
	for _, s := range []string{"", "parley.v1.LogService", "parley.v1.ExchangeService"} {
		if !serving(s) {
			t.Errorf("service %q not SERVING while only the witnesses are down", s)
		}
	}

	if witnesses, err = net.StartWitnesses(ctx, logger); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "SubmissionService to report SERVING again", func() (bool, error) {
		return serving(submission), nil
	})
}
