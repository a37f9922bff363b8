package certs

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFiles writes certPEM to dir/<name>.crt with mode 0644 and, unless
// keyPEM is nil, keyPEM to dir/<name>.key with mode 0600, creating dir if
// needed. Each file is replaced atomically, so a [KeyPair] reloading
// concurrently never reads a partial file. It returns the paths written
// (keyPath is empty when keyPEM is nil).
func WriteFiles(dir, name string, certPEM, keyPEM []byte) (certPath, keyPath string, err error) {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return "", "", fmt.Errorf("couldn't write certificate files: invalid file name %q", name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("couldn't create directory: %w", err)
	}
	certPath = filepath.Join(dir, name+".crt")
	if err := WriteFileAtomic(certPath, certPEM, 0o644); err != nil {
		return "", "", err
	}
	if keyPEM == nil {
		return certPath, "", nil
	}
	keyPath = filepath.Join(dir, name+".key")
	if err := WriteFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// WriteFileAtomic writes data to a new temporary file next to path, with
// mode perm, syncs it, renames it over path and syncs the directory, so
// that path is never partly written, survives a crash once this returns,
// and a replaced secret file never keeps a looser mode.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("couldn't set mode of %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("couldn't sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("couldn't close %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("couldn't sync the directory of %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("couldn't sync the directory of %s: %w", path, err)
	}
	return nil
}

// LoadCertPool reads a file of one or more PEM certificates into a pool.
func LoadCertPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read certificates: %w", err)
	}
	certs, err := parseCertsPEM(data)
	if err != nil {
		return nil, fmt.Errorf("couldn't load certificates from %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}
