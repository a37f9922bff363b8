package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Every node of a benchmark network serves its admin port on loopback:
// Prometheus metrics, from which the harness counts the messages nodes
// exchange, and the Go profiler, from which it saves CPU profiles.

// peerMessages counts the gRPC messages one node received from, and sent
// to, the nodes of other parties (requests, stream messages and responses:
// entry deliveries, pulls, feed-head and checkpoint calls).
type peerMessages struct {
	received, sent float64
	// delivered is the Deliver stream messages received: requests, each
	// pushing one entry or (to a node that takes batches) several.
	delivered float64
}

func (m peerMessages) minus(o peerMessages) peerMessages {
	return peerMessages{received: m.received - o.received, sent: m.sent - o.sent, delivered: m.delivered - o.delivered}
}

// scrapePeerMessages reads party's node metrics (grpc_server_msg_*_total,
// labelled with the caller's trust domain) and sums the messages with the
// nodes of the other parties.
func (n *network) scrapePeerMessages(ctx context.Context, party string) (peerMessages, error) {
	var m peerMessages
	addr, ok := n.admin[party]
	if !ok {
		return m, fmt.Errorf("node %s has no admin port", party)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return m, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, fmt.Errorf("couldn't read %s's metrics: %w", party, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("couldn't read %s's metrics: %s", party, resp.Status)
	}
	peers := map[string]bool{}
	for _, id := range n.PartyIDs {
		peers[id] = id != party
	}
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		name, labels, value, ok := parseSample(s.Text())
		if !ok || !peers[labels["peer_party"]] {
			continue
		}
		switch name {
		case "grpc_server_msg_received_total":
			m.received += value
			if labels["grpc_method"] == "Deliver" {
				m.delivered += value
			}
		case "grpc_server_msg_sent_total":
			m.sent += value
		}
	}
	if err := s.Err(); err != nil {
		return m, fmt.Errorf("couldn't read %s's metrics: %w", party, err)
	}
	return m, nil
}

// scrapeAll reads the peer messages of every started node, summed.
func (n *network) scrapeAll(ctx context.Context) (peerMessages, error) {
	var sum peerMessages
	for _, id := range n.order {
		m, err := n.scrapePeerMessages(ctx, id)
		if err != nil {
			return sum, err
		}
		sum.received += m.received
		sum.sent += m.sent
		sum.delivered += m.delivered
	}
	return sum, nil
}

// parseSample parses one sample line of the Prometheus text format:
// name{label="value",...} value. Comments and malformed lines yield false.
func parseSample(line string) (name string, labels map[string]string, value float64, ok bool) {
	if line == "" || line[0] == '#' {
		return "", nil, 0, false
	}
	labels = map[string]string{}
	rest := line
	if i := strings.IndexByte(line, '{'); i >= 0 {
		j := strings.LastIndexByte(line, '}')
		if j < i {
			return "", nil, 0, false
		}
		name, rest = line[:i], line[j+1:]
		for _, kv := range splitLabels(line[i+1 : j]) {
			k, v, found := strings.Cut(kv, "=")
			if !found {
				return "", nil, 0, false
			}
			uq, err := strconv.Unquote(v)
			if err != nil {
				return "", nil, 0, false
			}
			labels[k] = uq
		}
	} else {
		var found bool
		name, rest, found = strings.Cut(line, " ")
		if !found {
			return "", nil, 0, false
		}
		rest = " " + rest
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return "", nil, 0, false
	}
	value, err := strconv.ParseFloat(f[0], 64)
	return name, labels, value, err == nil
}

// splitLabels splits the inside of {...} at the commas outside quotes.
func splitLabels(s string) []string {
	var (
		out      []string
		start    int
		inQuotes bool
	)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQuotes = !inQuotes
		case ',':
			if !inQuotes {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// profile saves a CPU profile of party's node over d to path, in the
// background; the returned function waits for it and returns its error.
func (n *network) profile(ctx context.Context, party string, d time.Duration, path string) func() error {
	errc := make(chan error, 1)
	go func() {
		errc <- func() error {
			addr, ok := n.admin[party]
			if !ok {
				return fmt.Errorf("node %s has no admin port", party)
			}
			secs := max(1, int(d.Round(time.Second)/time.Second))
			ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("couldn't profile node %s: %w", party, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("couldn't profile node %s: %s", party, resp.Status)
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			f, err := os.Create(path)
			if err != nil {
				return fmt.Errorf("couldn't save the profile of node %s: %w", party, err)
			}
			if _, err := io.Copy(f, resp.Body); err != nil {
				_ = f.Close()
				return fmt.Errorf("couldn't save the profile of node %s: %w", party, err)
			}
			return f.Close()
		}()
	}()
	return func() error { return <-errc }
}

// startProfiles profiles the nodes of parties over the configured duration
// if the run asks for profiles, into dir/profiles/<phase>-<party>.pprof.
// The returned function waits for the profiles and records their paths.
func (r *runner) startProfiles(ctx context.Context, n *network, phase string, parties []string) func() {
	if !r.cfg.CPUProfile {
		return func() {}
	}
	type pending struct {
		path string
		wait func() error
	}
	var ps []pending
	for _, id := range parties {
		path := filepath.Join(r.cfg.Dir, "profiles", phase+"-"+id+".pprof")
		ps = append(ps, pending{path, n.profile(ctx, id, r.cfg.Duration, path)})
	}
	return func() {
		for _, p := range ps {
			if err := p.wait(); err != nil {
				r.cfg.logf("couldn't save a CPU profile", "err", err)
				continue
			}
			r.report.Profiles = append(r.report.Profiles, p.path)
		}
	}
}
