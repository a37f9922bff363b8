package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/keys"
	"github.com/parley-dev/parley/mediator"
	"github.com/parley-dev/parley/server/tlog"
)

const initUsage = `Usage: parley init -party ID -dir DIR [flags]
       parley init -mediator -party ID -dir DIR [flags]

Init makes the key material of one party in DIR, and DIR/party.yaml, the
party's public part of the agreement, to give to whoever runs
'parley agreement create':

  ca.crt, ca.key                    the party's CA (trusted for spiffe://ID only)
  node.crt, node.key                the node's TLS certificate, spiffe://ID/node/node,
                                    with the -dns and -ip names
  operator.crt, operator.key        an operator certificate, spiffe://ID/operator/NAME
  signing.key, signing.pub          the party's evidence signing key (-key-alg),
                                    encrypted when a passphrase is given
  checkpoint.skey, checkpoint.vkey  the node's log checkpoint key (signed note,
                                    origin -origin)
  party.yaml                        id, name, ca, endpoints, keys, log_origin,
                                    checkpoint_key

With -mediator it makes a mediator's material instead: ca.crt and ca.key,
mediator.crt and mediator.key (spiffe://ID/mediator/mediator), the witness
cosigning key cosigning.skey and cosigning.vkey, and mediator.yaml.

The passphrase of signing.key is read from -passphrase-file, else from
$PARLEY_KEY_PASSPHRASE; without either the key is not encrypted. Files whose
name ends in .key or .skey are secret (mode 0600). Init refuses to replace
existing files unless -force is given.
`

func init() {
	commands["init"] = &command{
		summary: "make a party's or a mediator's keys, certificates and agreement part",
		usage:   initUsage,
		run:     runInit,
	}
}

// Default validities of what init issues.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
)

// initConfig is what 'parley init' makes, from its flags.
type initConfig struct {
	// ID is the party id, or the mediator id with Mediator.
	ID string
	// Name is the human-readable name written to party.yaml or
	// mediator.yaml.
	Name string
	// Dir is where the files are written.
	Dir string
	// Operator is the name of the operator certificate.
	Operator string
	// DNSNames and IPs are the SANs of the node or mediator certificate.
	DNSNames []string
	IPs      []net.IP
	// Endpoints are the node's host:port addresses (party only).
	Endpoints []string
	// Origin is the checkpoint origin of the node's log (party only).
	Origin string
	// Witness is the mediator's witness URL (mediator only).
	Witness string
	// Alg is the signing key algorithm (party only).
	Alg keys.Algorithm
	// Passphrase encrypts the signing key when not empty (party only).
	Passphrase []byte
	// Validity is the validity of the leaf certificates.
	Validity time.Duration
	// Mediator makes a mediator instead of a party.
	Mediator bool
	// Force replaces existing files.
	Force bool
}

func runInit(ctx context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("init")
	var (
		c              initConfig
		dns            = listFlag{vals: []string{"localhost"}}
		ips            = listFlag{vals: []string{"127.0.0.1"}}
		endpoints      = listFlag{vals: []string{"127.0.0.1:7001"}}
		alg            string
		passphraseFile string
	)
	fs.StringVar(&c.ID, "party", "", "party `ID` (or mediator id with -mediator): 1-63 of a-z, 0-9, '-', starting with a letter (required)")
	fs.StringVar(&c.Dir, "dir", "", "directory `DIR` to write the files to, created if needed (required)")
	fs.StringVar(&c.Name, "name", "", "human-readable `NAME` of the party or mediator (default the id)")
	fs.StringVar(&c.Operator, "operator", "admin", "`NAME` of the operator certificate (party only)")
	fs.Var(&dns, "dns", "DNS `NAME` of the node or mediator certificate; repeat for several")
	fs.Var(&ips, "ip", "IP `ADDRESS` of the node or mediator certificate; repeat for several")
	fs.Var(&endpoints, "endpoint", "`HOST:PORT` of the node's gRPC port for party.yaml; repeat for several (party only)")
	fs.StringVar(&c.Origin, "origin", "", "checkpoint `ORIGIN` of the node's log (default parley/ID; party only)")
	fs.StringVar(&c.Witness, "witness", "https://127.0.0.1:7101/", "witness `URL` for mediator.yaml (mediator only)")
	fs.StringVar(&alg, "key-alg", string(keys.DefaultAlgorithm), "signing key `ALGORITHM`: ed25519 or ecdsa-p256 (party only)")
	fs.StringVar(&passphraseFile, "passphrase-file", "", "`FILE` holding the passphrase that encrypts signing.key (party only)")
	fs.DurationVar(&c.Validity, "validity", leafValidity, "validity of the node, operator and mediator certificates")
	fs.BoolVar(&c.Mediator, "mediator", false, "make a mediator instead of a party")
	fs.BoolVar(&c.Force, "force", false, "replace existing files")
	pos, err := env.parseFlags(fs, initUsage, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	if c.ID == "" || c.Dir == "" {
		return usageErrorf("-party and -dir are required")
	}
	if err := certs.ValidateID(c.ID); err != nil {
		return usageErrorf("invalid -party: %v", err)
	}
	if c.Mediator {
		var partyOnly []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "operator", "endpoint", "origin", "key-alg", "passphrase-file":
				partyOnly = append(partyOnly, "-"+f.Name)
			}
		})
		if len(partyOnly) > 0 {
			return usageErrorf("%s cannot be used with -mediator (party only)", strings.Join(partyOnly, ", "))
		}
	} else {
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "witness" {
				err = usageErrorf("-witness can only be used with -mediator")
			}
		})
		if err != nil {
			return err
		}
		if err := certs.ValidateID(c.Operator); err != nil {
			return usageErrorf("invalid -operator: %v", err)
		}
		if c.Alg, err = keys.ParseAlgorithm(alg); err != nil {
			return usageErrorf("invalid -key-alg: %v", err)
		}
		if c.Passphrase, err = readPassphrase(passphraseFile); err != nil {
			return err
		}
		if c.Origin == "" {
			c.Origin = "parley/" + c.ID
		}
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	c.DNSNames = dns.vals
	for _, s := range ips.vals {
		ip := net.ParseIP(s)
		if ip == nil {
			return usageErrorf("invalid -ip %q: not an IP address", s)
		}
		c.IPs = append(c.IPs, ip)
	}
	c.Endpoints = endpoints.vals
	for _, e := range c.Endpoints {
		if _, _, err := net.SplitHostPort(e); err != nil {
			return usageErrorf("invalid -endpoint %q: %v", e, err)
		}
	}
	if c.Validity <= 0 {
		return usageErrorf("invalid -validity %v: not positive", c.Validity)
	}

	var files []outFile
	if c.Mediator {
		files, err = makeMediator(&c)
	} else {
		files, err = makeParty(&c)
	}
	if err != nil {
		return err
	}
	if err := writeFiles(c.Dir, files, c.Force); err != nil {
		return err
	}
	what := "party"
	if c.Mediator {
		what = "mediator"
	}
	env.Logger.InfoContext(ctx, "initialized "+what, "party", c.ID, "dir", c.Dir)
	if !c.Mediator && len(c.Passphrase) == 0 {
		env.Logger.WarnContext(ctx, "signing key is not encrypted: give -passphrase-file or $PARLEY_KEY_PASSPHRASE, or move it to a KMS", "path", filepath.Join(c.Dir, "signing.key"))
	}
	for _, f := range files {
		fmt.Fprintln(env.Stdout, filepath.Join(c.Dir, f.name))
	}
	return nil
}

// outFile is a file that init writes.
type outFile struct {
	name string
	data []byte
	perm os.FileMode
}

// makeParty makes a party's CA, node and operator certificates, signing key,
// checkpoint key and party.yaml.
func makeParty(c *initConfig) ([]outFile, error) {
	ca, err := certs.NewCA(c.ID, caValidity)
	if err != nil {
		return nil, err
	}
	files, err := caFiles(ca)
	if err != nil {
		return nil, err
	}
	node, err := ca.Issue(certs.IssueRequest{Role: certs.RoleNode, Name: "node", DNSNames: c.DNSNames, IPs: c.IPs, Validity: c.Validity})
	if err != nil {
		return nil, fmt.Errorf("couldn't issue node certificate: %w", err)
	}
	if files, err = appendLeaf(files, "node", node); err != nil {
		return nil, err
	}
	op, err := ca.Issue(certs.IssueRequest{Role: certs.RoleOperator, Name: c.Operator, Validity: c.Validity})
	if err != nil {
		return nil, fmt.Errorf("couldn't issue operator certificate: %w", err)
	}
	if files, err = appendLeaf(files, "operator", op); err != nil {
		return nil, err
	}

	priv, err := keys.Generate(c.Alg)
	if err != nil {
		return nil, fmt.Errorf("couldn't generate signing key: %w", err)
	}
	privPEM, err := keys.MarshalPrivatePEM(priv, c.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("couldn't encode signing key: %w", err)
	}
	pubPEM, err := keys.MarshalPublicPEM(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("couldn't encode signing public key: %w", err)
	}
	keyID, err := keys.KeyID(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("couldn't compute signing key id: %w", err)
	}
	files = append(files, outFile{"signing.key", privPEM, 0o600}, outFile{"signing.pub", pubPEM, 0o644})

	skey, vkey, err := tlog.GenerateKey(c.Origin)
	if err != nil {
		return nil, err
	}
	files = append(files, outFile{"checkpoint.skey", []byte(skey + "\n"), 0o600}, outFile{"checkpoint.vkey", []byte(vkey + "\n"), 0o644})

	p := agreement.Party{
		ID:        c.ID,
		Name:      c.Name,
		CA:        string(ca.CertPEM()),
		Endpoints: c.Endpoints,
		Keys: []agreement.Key{{
			ID:        keyID,
			PublicKey: string(pubPEM),
			NotBefore: time.Now().UTC().Truncate(time.Second),
		}},
		LogOrigin:     c.Origin,
		CheckpointKey: vkey,
	}
	y, err := marshalYAML(&p)
	if err != nil {
		return nil, err
	}
	return append(files, outFile{"party.yaml", y, 0o644}), nil
}

// makeMediator makes a mediator's CA, certificate, cosigning key and
// mediator.yaml.
func makeMediator(c *initConfig) ([]outFile, error) {
	ca, err := certs.NewCA(c.ID, caValidity)
	if err != nil {
		return nil, err
	}
	files, err := caFiles(ca)
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Issue(certs.IssueRequest{Role: certs.RoleMediator, Name: "mediator", DNSNames: c.DNSNames, IPs: c.IPs, Validity: c.Validity})
	if err != nil {
		return nil, fmt.Errorf("couldn't issue mediator certificate: %w", err)
	}
	if files, err = appendLeaf(files, "mediator", leaf); err != nil {
		return nil, err
	}
	skey, vkey, err := mediator.GenerateCosigningKey("parley/witness/" + c.ID)
	if err != nil {
		return nil, err
	}
	files = append(files, outFile{"cosigning.skey", []byte(skey + "\n"), 0o600}, outFile{"cosigning.vkey", []byte(vkey + "\n"), 0o644})
	m := agreement.Mediator{
		ID:              c.ID,
		Name:            c.Name,
		CA:              string(ca.CertPEM()),
		WitnessEndpoint: c.Witness,
		CosigningKey:    vkey,
	}
	y, err := marshalYAML(&m)
	if err != nil {
		return nil, err
	}
	return append(files, outFile{"mediator.yaml", y, 0o644}), nil
}

func caFiles(ca *certs.CA) ([]outFile, error) {
	key, err := ca.KeyPEM()
	if err != nil {
		return nil, fmt.Errorf("couldn't encode CA key: %w", err)
	}
	return []outFile{{"ca.crt", ca.CertPEM(), 0o644}, {"ca.key", key, 0o600}}, nil
}

func appendLeaf(files []outFile, name string, leaf *certs.Leaf) ([]outFile, error) {
	key, err := leaf.KeyPEM()
	if err != nil {
		return nil, fmt.Errorf("couldn't encode %s key: %w", name, err)
	}
	return append(files, outFile{name + ".crt", leaf.CertPEM(), 0o644}, outFile{name + ".key", key, 0o600}), nil
}

// marshalYAML encodes v as YAML with two-space indentation, the layout of
// agreement files.
func marshalYAML(v any) ([]byte, error) {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("couldn't encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("couldn't encode YAML: %w", err)
	}
	return []byte(b.String()), nil
}

// writeFiles writes files to dir, creating it (mode 0700) if needed. Unless
// force is set it first checks that none of them exists, so that it never
// writes some files and then refuses the rest.
func writeFiles(dir string, files []outFile, force bool) error {
	if !force {
		var exist []string
		for _, f := range files {
			p := filepath.Join(dir, f.name)
			if _, err := os.Lstat(p); err == nil {
				exist = append(exist, p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("couldn't check %s: %w", p, err)
			}
		}
		switch len(exist) {
		case 0:
		case 1:
			return fmt.Errorf("refusing to overwrite existing %s (use -force to replace it)", exist[0])
		default:
			return fmt.Errorf("refusing to overwrite existing %s and %d other files (use -force to replace them)", exist[0], len(exist)-1)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("couldn't create directory: %w", err)
	}
	for _, f := range files {
		if err := certs.WriteFileAtomic(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	return nil
}

// readPassphrase returns the passphrase of a signing key: the contents of
// file without its final line break when file is not empty, else the value
// of $PARLEY_KEY_PASSPHRASE, else nil.
func readPassphrase(file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("couldn't read passphrase: %w", err)
		}
		b = []byte(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"))
		if len(b) == 0 {
			return nil, fmt.Errorf("passphrase file %s is empty", file)
		}
		return b, nil
	}
	if p := os.Getenv(passphraseEnv); p != "" {
		return []byte(p), nil
	}
	return nil, nil
}

// passphraseEnv is the environment variable that holds a signing key's
// passphrase when no -passphrase-file is given.
const passphraseEnv = "PARLEY_KEY_PASSPHRASE"

// listFlag is a repeatable string flag with a default list that the first
// use of the flag replaces.
type listFlag struct {
	vals []string
	set  bool
}

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.vals, ",")
}

func (l *listFlag) Set(s string) error {
	if !l.set {
		l.vals, l.set = nil, true
	}
	l.vals = append(l.vals, s)
	return nil
}
