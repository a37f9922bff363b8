package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/parley-dev/parley/certs"
)

const certsUsage = `Usage: parley certs <subcommand> [flags] [arguments]

Certs issues, renews and revokes the certificates of one trust domain (a
party or a mediator) with its CA, from the CA directory made by 'parley
init' (ca.crt, ca.key). Subcommands:

  issue   issue a certificate and key for a node, operator or mediator
  renew   replace a certificate and its key by new ones with the same
          identity and names (a running node reloads them by itself)
  revoke  revoke certificates: record them in DIR/revoked.yaml and write a
          new CRL signed by the CA to DIR/ca.crl
  crl     print and verify a CRL; -update signs a fresh one before the
          current one's next update

Nodes load CRLs from the files named in the 'crls' field of node.yaml and
read them again when they change: publish ca.crl to the other parties after
every revocation and before its next update.

Run 'parley certs <subcommand> -h' for the flags of a subcommand.
`

const certsIssueUsage = `Usage: parley certs issue -ca DIR -name NAME [-role ROLE] [-dns NAME]... [-ip ADDRESS]... [-out DIR]

Issue makes a new key and a certificate for spiffe://<party>/<ROLE>/<NAME>,
signed by the CA in DIR, and writes them to OUT/NAME.crt and OUT/NAME.key
(mode 0600). It refuses to replace existing files unless -force is given.
`

const certsRenewUsage = `Usage: parley certs renew -ca DIR [-key FILE] [-validity D] CERT

Renew makes a new key and a new certificate with the identity, DNS and IP
names of CERT, which the CA in DIR must have issued, and writes them over
CERT and its key (-key, default CERT with .key for .crt). Each file is
replaced atomically: a node watching them reloads the pair without a
restart. The old certificate stays valid until it expires; revoke it if its
key may be compromised.
`

const certsRevokeUsage = `Usage: parley certs revoke -ca DIR [-reason REASON] [-serial HEX]... [CERT]...

Revoke adds the certificates (given as files, or by serial number with
-serial) to the revocation state of the CA in DIR (DIR/revoked.yaml) and
writes a new CRL, signed by the CA with the next CRL number, to
DIR/ca.crl. A certificate file must have been issued by that CA. Revoking a
certificate again changes nothing but the CRL's dates and number.

REASON is unspecified, keyCompromise, affiliationChanged, superseded or
cessationOfOperation.
`

const certsCRLUsage = `Usage: parley certs crl [-ca DIR | -ca-cert FILE] [-update] [FILE]

Crl prints the CRL in FILE (default DIR/ca.crl): issuer, number, dates and
revoked serial numbers, and verifies its signature against the CA
certificate (DIR/ca.crt, or -ca-cert). It exits with status 1 if the CRL
does not verify.

With -update (which needs -ca DIR), it first signs a new CRL from
DIR/revoked.yaml with the next number and writes it to DIR/ca.crl: run it
regularly, before the current CRL's next update.
`

func init() {
	commands["certs"] = &command{
		summary: "issue, renew and revoke certificates; write and check CRLs",
		usage:   certsUsage,
		run:     runCerts,
	}
}

// certsSubcommands are the subcommands of 'parley certs'.
var certsSubcommands = map[string]func(ctx context.Context, env *Env, args []string) error{
	"issue":  runCertsIssue,
	"renew":  runCertsRenew,
	"revoke": runCertsRevoke,
	"crl":    runCertsCRL,
}

func runCerts(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing subcommand (want issue, renew, revoke or crl)")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(env.Stdout, certsUsage)
		return flag.ErrHelp
	}
	run, ok := certsSubcommands[args[0]]
	if !ok {
		return usageErrorf("unknown subcommand %q (want issue, renew, revoke or crl)", args[0])
	}
	if err := run(ctx, env, args[1:]); err != nil {
		return subcommandError{args[0], err}
	}
	return nil
}

// Files of a CA directory, besides ca.crt and ca.key.
const (
	// revocationStateFile lists what the CA revoked, for 'certs revoke'.
	revocationStateFile = "revoked.yaml"
	// crlFile is the CA's current CRL, PEM.
	crlFile = "ca.crl"
	// defaultCRLValidity is how long a CRL is valid: its next update.
	defaultCRLValidity = 30 * 24 * time.Hour
)

// loadCADir loads the CA of a directory made by 'parley init'.
func loadCADir(dir string) (*certs.CA, error) {
	if dir == "" {
		return nil, usageErrorf("-ca is required")
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("couldn't read the CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		return nil, fmt.Errorf("couldn't read the CA key: %w", err)
	}
	ca, err := certs.LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("couldn't load the CA in %s: %w", dir, err)
	}
	return ca, nil
}

// readCert reads a single PEM certificate and checks that ca issued it.
func readCert(path string, ca *certs.CA) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read certificate: %w", err)
	}
	cert, err := parseOneCert(data)
	if err != nil {
		return nil, fmt.Errorf("couldn't load certificate %s: %w", path, err)
	}
	if err := cert.CheckSignatureFrom(ca.Certificate()); err != nil {
		return nil, fmt.Errorf("certificate %s was not issued by the CA of %q: %w", path, ca.Party(), err)
	}
	return cert, nil
}

// parseOneCert parses the first PEM certificate of data (a chain's leaf).
func parseOneCert(data []byte) (*x509.Certificate, error) {
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil, errors.New("no PEM certificate found")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

func runCertsIssue(_ context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("certs issue")
	var (
		caDir, name, role, out string
		dns, ips               listFlag
		validity               time.Duration
		force                  bool
	)
	fs.StringVar(&caDir, "ca", "", "CA `DIR` holding ca.crt and ca.key (required)")
	fs.StringVar(&name, "name", "", "`NAME` of the holder: 1-63 of a-z, 0-9, '-', starting with a letter (required)")
	fs.StringVar(&role, "role", string(certs.RoleOperator), "`ROLE` of the holder: node, operator or mediator")
	fs.Var(&dns, "dns", "DNS `NAME` of the certificate (servers: the name clients dial); repeat for several")
	fs.Var(&ips, "ip", "IP `ADDRESS` of the certificate; repeat for several")
	fs.StringVar(&out, "out", "", "`DIR` to write NAME.crt and NAME.key to (default the CA directory)")
	fs.DurationVar(&validity, "validity", leafValidity, "validity of the certificate")
	fs.BoolVar(&force, "force", false, "replace existing files")
	pos, err := env.parseFlags(fs, certsIssueUsage, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	if name == "" {
		return usageErrorf("-ca and -name are required")
	}
	req := certs.IssueRequest{Role: certs.Role(role), Name: name, DNSNames: dns.vals, Validity: validity}
	if req.IPs, err = parseIPs(ips.vals); err != nil {
		return err
	}
	ca, err := loadCADir(caDir)
	if err != nil {
		return err
	}
	if out == "" {
		out = caDir
	}
	leaf, err := ca.Issue(req)
	if err != nil {
		return err
	}
	key, err := leaf.KeyPEM()
	if err != nil {
		return err
	}
	files := []outFile{{name + ".crt", leaf.CertPEM(), 0o644}, {name + ".key", key, 0o600}}
	if err := writeFiles(out, files, force); err != nil {
		return err
	}
	env.Logger.Info("issued certificate", "identity", leaf.Identity.String(), "serial", leaf.Cert.SerialNumber.Text(16), "not_after", leaf.Cert.NotAfter)
	for _, f := range files {
		fmt.Fprintln(env.Stdout, filepath.Join(out, f.name))
	}
	return nil
}

func runCertsRenew(_ context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("certs renew")
	var (
		caDir, keyFile string
		validity       time.Duration
	)
	fs.StringVar(&caDir, "ca", "", "CA `DIR` holding ca.crt and ca.key (required)")
	fs.StringVar(&keyFile, "key", "", "key `FILE` to replace (default CERT with .key for .crt)")
	fs.DurationVar(&validity, "validity", 0, "validity of the new certificate (default that of CERT)")
	pos, err := env.parseFlags(fs, certsRenewUsage, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("want exactly one certificate file, got %d arguments", len(pos))
	}
	certFile := pos[0]
	if keyFile == "" {
		keyFile = strings.TrimSuffix(certFile, ".crt") + ".key"
		if keyFile == certFile+".key" && !strings.HasSuffix(certFile, ".crt") {
			return usageErrorf("give -key: %s does not end in .crt", certFile)
		}
	}
	ca, err := loadCADir(caDir)
	if err != nil {
		return err
	}
	old, err := readCert(certFile, ca)
	if err != nil {
		return err
	}
	id, err := certs.IdentityFromCert(old)
	if err != nil {
		return err
	}
	if validity == 0 {
		validity = old.NotAfter.Sub(old.NotBefore).Truncate(time.Hour)
	}
	leaf, err := ca.Issue(certs.IssueRequest{Role: id.Role, Name: id.Name, DNSNames: old.DNSNames, IPs: old.IPAddresses, Validity: validity})
	if err != nil {
		return err
	}
	key, err := leaf.KeyPEM()
	if err != nil {
		return err
	}
	// The key first: a node that reloads in between sees a mismatched pair,
	// refuses it and keeps the old one until the certificate follows.
	if err := certs.WriteFileAtomic(keyFile, key, 0o600); err != nil {
		return err
	}
	if err := certs.WriteFileAtomic(certFile, leaf.CertPEM(), 0o644); err != nil {
		return err
	}
	env.Logger.Info("renewed certificate", "identity", id.String(), "old_serial", old.SerialNumber.Text(16),
		"serial", leaf.Cert.SerialNumber.Text(16), "not_after", leaf.Cert.NotAfter)
	fmt.Fprintln(env.Stdout, certFile)
	fmt.Fprintln(env.Stdout, keyFile)
	return nil
}

// revocationState is DIR/revoked.yaml: every certificate the CA revoked,
// and the number of the last CRL written.
type revocationState struct {
	// Number is the CRL number of DIR/ca.crl.
	Number int64 `yaml:"number"`
	// Revoked lists the revoked certificates, oldest first.
	Revoked []revokedCert `yaml:"revoked"`
}

// revokedCert is one revoked certificate.
type revokedCert struct {
	// Serial is the serial number, hexadecimal.
	Serial string `yaml:"serial"`
	// RevokedAt is when it was revoked.
	RevokedAt time.Time `yaml:"revoked_at"`
	// Reason is the RFC 5280 reason name.
	Reason string `yaml:"reason,omitempty"`
	// Identity and NotAfter describe the certificate, when known.
	Identity string    `yaml:"identity,omitempty"`
	NotAfter time.Time `yaml:"not_after,omitempty"`
}

// revocationReasons are the RFC 5280 reason codes revoke accepts.
var revocationReasons = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
}

func loadRevocationState(dir string) (*revocationState, error) {
	var st revocationState
	data, err := os.ReadFile(filepath.Join(dir, revocationStateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read the revocation state: %w", err)
	}
	if err := yaml.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("couldn't parse %s: %w", filepath.Join(dir, revocationStateFile), err)
	}
	return &st, nil
}

// writeCRL signs a CRL of st's revocations with the next CRL number and
// writes it and st to dir.
func (st *revocationState) writeCRL(dir string, ca *certs.CA, validity time.Duration) (string, error) {
	var entries []x509.RevocationListEntry
	for _, r := range st.Revoked {
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return "", fmt.Errorf("revocation state holds an invalid serial %q", r.Serial)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: r.RevokedAt, ReasonCode: revocationReasons[r.Reason]})
	}
	st.Number++
	now := time.Now().UTC().Truncate(time.Second)
	crl, err := ca.RevocationList(entries, big.NewInt(st.Number), now, now.Add(validity))
	if err != nil {
		return "", err
	}
	data, err := yaml.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("couldn't encode the revocation state: %w", err)
	}
	// The state first: a CRL is never written with a number the state
	// does not remember.
	if err := certs.WriteFileAtomic(filepath.Join(dir, revocationStateFile), data, 0o644); err != nil {
		return "", err
	}
	path := filepath.Join(dir, crlFile)
	if err := certs.WriteFileAtomic(path, crl, 0o644); err != nil {
		return "", err
	}
	return path, nil
}

func runCertsRevoke(_ context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("certs revoke")
	var (
		caDir, reason string
		serials       listFlag
		validity      time.Duration
	)
	fs.StringVar(&caDir, "ca", "", "CA `DIR` holding ca.crt and ca.key (required)")
	fs.StringVar(&reason, "reason", "unspecified", "`REASON` of the revocation")
	fs.Var(&serials, "serial", "serial number `HEX` of a certificate to revoke; repeat for several")
	fs.DurationVar(&validity, "crl-validity", defaultCRLValidity, "time from now to the new CRL's next update")
	pos, err := env.parseFlags(fs, certsRevokeUsage, args)
	if err != nil {
		return err
	}
	if _, ok := revocationReasons[reason]; !ok {
		return usageErrorf("invalid -reason %q: want one of %s", reason, strings.Join(slices.Sorted(maps.Keys(revocationReasons)), ", "))
	}
	if len(pos) == 0 && len(serials.vals) == 0 {
		return usageErrorf("no certificate files or -serial given")
	}
	if validity <= 0 {
		return usageErrorf("invalid -crl-validity %v: not positive", validity)
	}
	ca, err := loadCADir(caDir)
	if err != nil {
		return err
	}
	st, err := loadRevocationState(caDir)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	var add []revokedCert
	for _, path := range pos {
		cert, err := readCert(path, ca)
		if err != nil {
			return err
		}
		r := revokedCert{Serial: cert.SerialNumber.Text(16), RevokedAt: now, Reason: reason, NotAfter: cert.NotAfter}
		if id, err := certs.IdentityFromCert(cert); err == nil {
			r.Identity = id.String()
		}
		add = append(add, r)
	}
	for _, s := range serials.vals {
		serial, ok := new(big.Int).SetString(strings.TrimPrefix(strings.ToLower(strings.ReplaceAll(s, ":", "")), "0x"), 16)
		if !ok || serial.Sign() <= 0 {
			return usageErrorf("invalid -serial %q: want a positive hexadecimal number", s)
		}
		add = append(add, revokedCert{Serial: serial.Text(16), RevokedAt: now, Reason: reason})
	}
	for _, r := range add {
		if slices.ContainsFunc(st.Revoked, func(o revokedCert) bool { return o.Serial == r.Serial }) {
			fmt.Fprintf(env.Stdout, "already revoked: serial %s\n", r.Serial)
			continue
		}
		st.Revoked = append(st.Revoked, r)
		what := "serial " + r.Serial
		if r.Identity != "" {
			what = fmt.Sprintf("%s (serial %s)", r.Identity, r.Serial)
		}
		fmt.Fprintf(env.Stdout, "revoked %s\n", what)
	}
	path, err := st.writeCRL(caDir, ca, validity)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "wrote %s: CRL number %d, %d revoked, next update %s\n", path, st.Number, len(st.Revoked), now.Add(validity).Format(time.RFC3339))
	return nil
}

func runCertsCRL(_ context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("certs crl")
	var (
		caDir, caCert string
		update        bool
		validity      time.Duration
	)
	fs.StringVar(&caDir, "ca", "", "CA `DIR` holding ca.crt (and ca.key, revoked.yaml for -update)")
	fs.StringVar(&caCert, "ca-cert", "", "CA certificate `FILE` to verify the CRL with (default DIR/ca.crt)")
	fs.BoolVar(&update, "update", false, "sign a new CRL from DIR/revoked.yaml and write it to DIR/ca.crl first")
	fs.DurationVar(&validity, "crl-validity", defaultCRLValidity, "with -update: time from now to the new CRL's next update")
	pos, err := env.parseFlags(fs, certsCRLUsage, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageErrorf("want at most one CRL file, got %d arguments", len(pos))
	}
	if caDir == "" && caCert == "" {
		return usageErrorf("-ca or -ca-cert is required")
	}
	if update && caDir == "" {
		return usageErrorf("-update needs -ca DIR, whose key signs the CRL")
	}
	if caCert == "" {
		caCert = filepath.Join(caDir, "ca.crt")
	}
	file := filepath.Join(caDir, crlFile)
	if len(pos) == 1 {
		file = pos[0]
	} else if caDir == "" {
		return usageErrorf("give the CRL file, or -ca DIR for DIR/%s", crlFile)
	}
	if update {
		ca, err := loadCADir(caDir)
		if err != nil {
			return err
		}
		st, err := loadRevocationState(caDir)
		if err != nil {
			return err
		}
		if file, err = st.writeCRL(caDir, ca, validity); err != nil {
			return err
		}
	}
	caPEM, err := os.ReadFile(caCert)
	if err != nil {
		return fmt.Errorf("couldn't read the CA certificate: %w", err)
	}
	ca, err := parseOneCert(caPEM)
	if err != nil {
		return fmt.Errorf("couldn't load the CA certificate %s: %w", caCert, err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("couldn't read the CRL: %w", err)
	}
	crls, err := certs.ParseRevocationLists(data)
	if err != nil {
		return fmt.Errorf("couldn't load the CRL %s: %w", file, err)
	}
	var errs []error
	for _, crl := range crls {
		domain, verr := certs.VerifyRevocationList(crl, ca)
		printCRL(env.Stdout, file, crl, domain, verr)
		if verr != nil {
			errs = append(errs, fmt.Errorf("CRL %s does not verify: %w", file, verr))
		}
	}
	return errors.Join(errs...)
}

// printCRL writes a human-readable summary of crl.
func printCRL(w io.Writer, file string, crl *x509.RevocationList, domain string, verr error) {
	fmt.Fprintf(w, "file: %s\n", file)
	fmt.Fprintf(w, "issuer: %s\n", crl.Issuer)
	if domain != "" {
		fmt.Fprintf(w, "trust domain: %s\n", domain)
	}
	fmt.Fprintf(w, "number: %v\n", crl.Number)
	fmt.Fprintf(w, "this update: %s\n", crl.ThisUpdate.UTC().Format(time.RFC3339))
	next := crl.NextUpdate.UTC().Format(time.RFC3339)
	if time.Now().After(crl.NextUpdate) {
		next += " (past: sign a new CRL with 'parley certs crl -update')"
	}
	fmt.Fprintf(w, "next update: %s\n", next)
	if verr != nil {
		fmt.Fprintf(w, "signature: INVALID: %v\n", verr)
	} else {
		fmt.Fprintf(w, "signature: verified with the CA of %q\n", domain)
	}
	fmt.Fprintf(w, "revoked: %d\n", len(crl.RevokedCertificateEntries))
	names := map[int]string{}
	for name, code := range revocationReasons {
		names[code] = name
	}
	for _, e := range crl.RevokedCertificateEntries {
		fmt.Fprintf(w, "  %s  %s  %s\n", e.SerialNumber.Text(16), e.RevocationTime.UTC().Format(time.RFC3339), names[e.ReasonCode])
	}
}

// parseIPs parses -ip values.
func parseIPs(vals []string) ([]net.IP, error) {
	var out []net.IP
	for _, s := range vals {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, usageErrorf("invalid -ip %q: not an IP address", s)
		}
		out = append(out, ip)
	}
	return out, nil
}
