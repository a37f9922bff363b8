package e2e_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/internal/localnet"
)

// tileClient is an HTTPS client of party's tile endpoint that presents
// certFile (nil: no client certificate) and accepts only party's node.
func tileClient(t testing.TB, run *localnet.Running, party, certFile, keyFile string) *http.Client {
	t.Helper()
	bundle, err := config.TrustBundle(run.Agreement.Agreement)
	if err != nil {
		t.Fatal(err)
	}
	getCert := func() (*tls.Certificate, error) { return &tls.Certificate{}, nil }
	if certFile != "" {
		kp, err := certs.LoadKeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		getCert = kp.Certificate
	}
	tr := &http.Transport{TLSClientConfig: certs.ClientConfig(bundle, getCert, party), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// submitConcurrently makes n entries in party's log from 16 submitters.
func submitConcurrently(t testing.TB, run *localnet.Running, party string, n int) {
	t.Helper()
	c := operator(t, run.Network, party)
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		errs = make(chan error, 16)
	)
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if _, err := c.Notify(context.Background(), notification(int(i))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Notify: %v", err)
	}
}

func TestTileEndpointAccess(t *testing.T) {
	run := start(t, localnet.Options{})
	submitConcurrently(t, run, "alpha", 3)
	cp, _ := awaitCheckpoint(t, operator(t, run.Network, "alpha"), run.LogKeys("alpha"), 3, 10*time.Second)
	// The tiles of the checkpoint's tree (which may also hold receipts).
	width := strconv.FormatUint(cp.Size, 10)
	alpha, bravo := run.Parties["alpha"], run.Parties["bravo"]
	m := run.Mediators["secretariat"]
	base := "https://" + alpha.TilesAddress
	tests := []struct {
		name, cert, key string
		path            string
		want            int // 0: the TLS handshake fails
	}{
		{"mediator reads the checkpoint", m.CertFile, m.KeyFile, "/checkpoint", http.StatusOK},
		{"mediator reads an entry bundle", m.CertFile, m.KeyFile, "/tile/entries/000.p/" + width, http.StatusOK},
		{"mediator reads a tile", m.CertFile, m.KeyFile, "/tile/0/000.p/" + width, http.StatusOK},
		{"own operator reads", alpha.OperatorCert, alpha.OperatorKey, "/checkpoint", http.StatusOK},
		{"another party's node reads", bravo.NodeCertFile, bravo.NodeKeyFile, "/checkpoint", http.StatusOK},
		{"another party's operator may not", bravo.OperatorCert, bravo.OperatorKey, "/checkpoint", http.StatusForbidden},
		{"no client certificate", "", "", "/checkpoint", 0},
		{"private state is not served", m.CertFile, m.KeyFile, "/.state/treeState", http.StatusNotFound},
		{"non-canonical path", m.CertFile, m.KeyFile, "/tile/0/0.p/" + width, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tileClient(t, run, "alpha", tt.cert, tt.key).Get(base + tt.path)
			if tt.want == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got %s, want a failed TLS handshake", resp.Status)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET %s: %v", tt.path, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("GET %s: got %s (%s), want %d", tt.path, resp.Status, bytes.TrimSpace(body), tt.want)
			}
		})
	}
	// Writes are refused.
	resp, err := tileClient(t, run, "alpha", m.CertFile, m.KeyFile).Post(base+"/checkpoint", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /checkpoint: got %s, want 405", resp.Status)
	}
}

// TestFsck runs Tessera's own fsck (v1.0.4, pinned in tools/tessera) against
// alpha's tile endpoint with alpha's checkpoint key from the agreement: it
// re-derives every tile and the root of the checkpoint from the entry
// bundles. The log spans more than one entry bundle and full tiles.
//
// fsck fetches with Go's default HTTP client and cannot present a client
// certificate, which the tile endpoint requires. So the test puts a plain
// HTTP reverse proxy on loopback in front of it that terminates the mutual
// TLS as the mediator (a reader the agreement admits), the way an auditor
// would give such a tool access: fsck still reads exactly the bytes the
// node serves on its tile endpoint. A second run through a proxy that
// flips one byte of an entry bundle must fail, which shows the first run's
// success means something.
func TestFsck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Tessera's fsck and makes 300 entries; skipped with -short")
	}
	fsck := fsckBinary(t)
	run := start(t, localnet.Options{})
	const entries = 300
	submitConcurrently(t, run, "alpha", entries)
	keys := run.LogKeys("alpha")
	cp, _ := awaitCheckpoint(t, operator(t, run.Network, "alpha"), keys, entries, 20*time.Second)

	// fsck reads the key's name as the origin; the agreement's key is the
	// node's checkpoint verifier key.
	keyFile := filepath.Join(t.TempDir(), "alpha.vkey")
	if err := os.WriteFile(keyFile, []byte(keys.CheckpointKey), 0o644); err != nil {
		t.Fatal(err)
	}
	m := run.Mediators["secretariat"]
	upstream := &url.URL{Scheme: "https", Host: run.Parties["alpha"].TilesAddress}
	transport := tileClient(t, run, "alpha", m.CertFile, m.KeyFile).Transport

	runFsck := func(t *testing.T, tamper func(path string, body []byte) []byte) string {
		t.Helper()
		proxy := httputil.NewSingleHostReverseProxy(upstream)
		proxy.Transport = transport
		if tamper != nil {
			proxy.ModifyResponse = func(resp *http.Response) error {
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					return err
				}
				body = tamper(resp.Request.URL.Path, body)
				resp.Body = io.NopCloser(bytes.NewReader(body))
				resp.ContentLength = int64(len(body))
				resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
				return nil
			}
		}
		front := httptest.NewServer(proxy)
		defer front.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, fsck,
			"--storage_url="+front.URL+"/",
			"--public_key="+keyFile,
			"--origin="+keys.Origin,
			"--N=4",
			"--ui=false",
			"--v=1",
		)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fsck: %v\n%s", err, out)
		}
		return string(out)
	}

	t.Run("tile endpoint", func(t *testing.T) {
		out := runFsck(t, nil)
		// fsck exits with status 0 either way; its log says how it went.
		// The log may have grown since cp with the other node's receipts.
		m := regexp.MustCompile(`Fsck: checking log of size (\d+)`).FindStringSubmatch(out)
		if strings.Contains(out, "fsck failed") || m == nil {
			t.Fatalf("fsck did not verify the log:\n%s", out)
		}
		if size, _ := strconv.ParseUint(m[1], 10, 64); size < cp.Size {
			t.Fatalf("fsck checked a log of size %d, want at least %d", size, cp.Size)
		}
		if !strings.Contains(out, "Completed ranges") {
			t.Fatalf("fsck did not complete:\n%s", out)
		}
		t.Logf("fsck verified alpha's log of %s entries:\n%s", m[1], lastLines(out, 6))
	})
	t.Run("tampered entry bundle", func(t *testing.T) {
		out := runFsck(t, func(path string, body []byte) []byte {
			if path == "/tile/entries/000" && len(body) > 100 {
				body = bytes.Clone(body)
				body[100] ^= 1
			}
			return body
		})
		i := strings.Index(out, "fsck failed")
		if i < 0 {
			t.Fatalf("fsck accepted a tampered entry bundle:\n%s", out)
		}
		t.Logf("fsck refused the tampered bundle: %s", strings.SplitN(out[i:], "\n", 2)[0])
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
