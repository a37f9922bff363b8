package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/certs/certstest"
)

func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "alpha")
	alpha := certstest.NewParty(t, "alpha")
	keyPEM, err := alpha.CA.KeyPEM()
	if err != nil {
		t.Fatalf("KeyPEM: %v", err)
	}
	certPath, keyPath, err := certs.WriteFiles(dir, "ca", alpha.CA.CertPEM(), keyPEM)
	if err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}
	tests := []struct {
		path     string
		wantMode os.FileMode
		want     []byte
	}{
		{filepath.Join(dir, "ca.crt"), 0o644, alpha.CA.CertPEM()},
		{filepath.Join(dir, "ca.key"), 0o600, keyPEM},
	}
	if certPath != tests[0].path || keyPath != tests[1].path {
		t.Errorf("paths: got %s, %s, want %s, %s", certPath, keyPath, tests[0].path, tests[1].path)
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			fi, err := os.Stat(tt.path)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if got := fi.Mode().Perm(); got != tt.wantMode {
				t.Errorf("mode: got %v, want %v", got, tt.wantMode)
			}
			got, err := os.ReadFile(tt.path)
			if err != nil || string(got) != string(tt.want) {
				t.Errorf("contents: got %q, %v, want %q", got, err, tt.want)
			}
		})
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 2 {
		t.Errorf("directory: got %d entries, %v, want 2 (no temporary files left)", len(entries), err)
	}

	t.Run("load", func(t *testing.T) {
		pool, err := certs.LoadCertPool(certPath)
		if err != nil {
			t.Fatalf("LoadCertPool: %v", err)
		}
		leaf := alpha.Leaf(t, certs.RoleNode, "n1").Leaf
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("Verify with loaded pool: %v", err)
		}
		if _, err := certs.LoadCertPool(keyPath); err == nil {
			t.Errorf("LoadCertPool(key file): got nil error, want error")
		}
		if _, err := certs.LoadCertPool(filepath.Join(dir, "missing.crt")); err == nil {
			t.Errorf("LoadCertPool(missing file): got nil error, want error")
		}
	})

	for _, name := range []string{"", ".", "..", "a/b"} {
		if _, _, err := certs.WriteFiles(dir, name, alpha.CA.CertPEM(), nil); err == nil {
			t.Errorf("WriteFiles(name %q): got nil error, want error", name)
		}
	}
	certOnly, keyOnly, err := certs.WriteFiles(dir, "bundle", alpha.CA.CertPEM(), nil)
	if err != nil || keyOnly != "" || certOnly != filepath.Join(dir, "bundle.crt") {
		t.Errorf("WriteFiles without key: got %q, %q, %v, want only the certificate", certOnly, keyOnly, err)
	}
}

func TestKeyPair(t *testing.T) {
	dir := t.TempDir()
	alpha := certstest.NewParty(t, "alpha")
	certPath, keyPath := alpha.WriteLeaf(t, dir, certs.RoleNode, "node1")
	kp, err := certs.LoadKeyPair(certPath, keyPath)
	if err != nil {
		t.Fatalf("LoadKeyPair: %v", err)
	}
	first, err := kp.Certificate()
	if err != nil || first == nil {
		t.Fatalf("Certificate: got %v, %v, want a certificate", first, err)
	}
	if got, want := kp.Identity().String(), "spiffe://alpha/node/node1"; got != want {
		t.Errorf("Identity: got %s, want %s", got, want)
	}

	// Renew the files, reading concurrently while reloading.
	alpha.WriteLeaf(t, dir, certs.RoleNode, "node1")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				if c, err := kp.GetCertificate(&tls.ClientHelloInfo{}); c == nil || err != nil {
					t.Errorf("GetCertificate: got %v, %v, want a certificate", c, err)
					return
				}
				if c, err := kp.GetClientCertificate(&tls.CertificateRequestInfo{}); c == nil || err != nil {
					t.Errorf("GetClientCertificate: got %v, %v, want a certificate", c, err)
					return
				}
			}
		})
	}
	if err := kp.Reload(); err != nil {
		t.Errorf("Reload: %v", err)
	}
	wg.Wait()
	second, _ := kp.Certificate()
	if second.Leaf.Equal(first.Leaf) {
		t.Errorf("after Reload: got the old certificate, want the renewed one")
	}

	t.Run("failed reload keeps the old pair", func(t *testing.T) {
		if err := os.WriteFile(keyPath, []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := kp.Reload(); err == nil {
			t.Errorf("Reload with a broken key: got nil error, want error")
		}
		if got, _ := kp.Certificate(); got != second {
			t.Errorf("after failed Reload: got a different certificate, want the previous one")
		}
	})

	t.Run("errors", func(t *testing.T) {
		other := certstest.NewParty(t, "bravo")
		otherCert, otherKey := other.WriteLeaf(t, t.TempDir(), certs.RoleNode, "node1")
		caDir := t.TempDir()
		caKey, err := alpha.CA.KeyPEM()
		if err != nil {
			t.Fatal(err)
		}
		caCert, caKeyPath, err := certs.WriteFiles(caDir, "ca", alpha.CA.CertPEM(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, cert, key, wantErr string
		}{
			{"mismatched key", certPath, otherKey, "private key does not match"},
			{"missing file", filepath.Join(dir, "missing.crt"), keyPath, "no such file"},
			{"no identity", caCert, caKeyPath, "0 URI SANs"},
			{"other pair is fine", otherCert, otherKey, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := certs.LoadKeyPair(tt.cert, tt.key)
				if tt.wantErr == "" {
					if err != nil {
						t.Errorf("LoadKeyPair: got error %v, want nil", err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("LoadKeyPair: got error %v, want it to contain %q", err, tt.wantErr)
				}
			})
		}
	})
}
