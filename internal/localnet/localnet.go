// Package localnet builds and runs a whole Parley network on loopback: a
// throwaway PKI per party and mediator, signing and checkpoint keys, an
// agreement signed by every party, node configuration files, and the nodes
// and mediator witnesses themselves. The demo, the benchmarks and the
// multi-node tests use it.
package localnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/parley-dev/parley/agreement"
	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/client"
	"github.com/parley-dev/parley/internal/config"
	"github.com/parley-dev/parley/keys"
	"github.com/parley-dev/parley/mediator"
	"github.com/parley-dev/parley/server/tlog"
)

// Options describe the network to build.
type Options struct {
	// Dir receives every generated file. Required.
	Dir string
	// Parties are the party ids. Default alpha, bravo, charlie.
	Parties []string
	// Mediators are the mediator ids. Default one, "secretariat".
	// Set NoMediators for a network without witnesses.
	Mediators []string
	// NoMediators builds a network without mediators (quorum 0).
	NoMediators bool
	// Quorum is the witness quorum. Default: all mediators.
	Quorum int
	// RuleSet is the agreed rule set. Default vd2011.
	RuleSet string
	// EffectiveFrom is the agreement's start. Default: 2 years ago, so that
	// scenarios can date entries in the past.
	EffectiveFrom time.Time
	// KeyNotAfter, if set, ends the validity window of every party's
	// signing key in the agreement (to test expired keys).
	KeyNotAfter time.Time
	// CheckpointInterval of every node. Default 200ms.
	CheckpointInterval time.Duration
	// Exchange is every node's exchange section. Optional: the node's
	// defaults. UpdateNodeConfig changes one node's.
	Exchange config.Exchange
}

// Network is a generated network: its files and addresses.
type Network struct {
	// Dir is where everything lives.
	Dir string
	// AgreementFile is the path of the signed agreement.
	AgreementFile string
	// Agreement is the parsed, signed agreement.
	Agreement *agreement.File
	// Parties maps party id to its files.
	Parties map[string]*Party
	// Mediators maps mediator id to its files.
	Mediators map[string]*Mediator
	// PartyIDs and MediatorIDs in sorted order.
	PartyIDs, MediatorIDs []string

	opts      Options
	listeners map[string]net.Listener // reserved addresses, by id
}

// Party holds one party's files and its node's address.
type Party struct {
	ID            string `json:"id"`
	Address       string `json:"address"`
	TilesAddress  string `json:"tiles_address"`
	CAFile        string `json:"ca_file"`
	NodeCertFile  string `json:"node_cert_file"`
	NodeKeyFile   string `json:"node_key_file"`
	OperatorCert  string `json:"operator_cert_file"`
	OperatorKey   string `json:"operator_key_file"`
	SigningKey    string `json:"signing_key_file"`
	CheckpointKey string `json:"checkpoint_key_file"`
	ConfigFile    string `json:"node_config_file"`
	DataDir       string `json:"data_dir"`
	LogOrigin     string `json:"log_origin"`
}

// Mediator holds one mediator's files and its witness address.
type Mediator struct {
	ID           string `json:"id"`
	Address      string `json:"witness_address"`
	CAFile       string `json:"ca_file"`
	CertFile     string `json:"cert_file"`
	KeyFile      string `json:"key_file"`
	CosigningKey string `json:"cosigning_key_file"`
	DataDir      string `json:"data_dir"`
	// ConfigFile is the mediator's configuration (parley mediator -c).
	ConfigFile string `json:"mediator_config_file"`
}

// Generate creates the PKI, keys, agreement and configuration files of a
// network under opts.Dir. The node and witness addresses are reserved on
// loopback now (listening sockets kept open until Start).
func Generate(ctx context.Context, opts Options) (*Network, error) {
	if opts.Dir == "" {
		return nil, errors.New("localnet: Dir is required")
	}
	if len(opts.Parties) == 0 {
		opts.Parties = []string{"alpha", "bravo", "charlie"}
	}
	if len(opts.Mediators) == 0 && !opts.NoMediators {
		opts.Mediators = []string{"secretariat"}
	}
	if opts.NoMediators {
		opts.Mediators = nil
	}
	if opts.Quorum == 0 {
		opts.Quorum = len(opts.Mediators)
	}
	if opts.RuleSet == "" {
		opts.RuleSet = "vd2011"
	}
	if opts.EffectiveFrom.IsZero() {
		opts.EffectiveFrom = time.Now().UTC().AddDate(-2, 0, 0).Truncate(24 * time.Hour)
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = 200 * time.Millisecond
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("couldn't create %s: %w", opts.Dir, err)
	}
	n := &Network{
		Dir: opts.Dir, opts: opts,
		Parties: map[string]*Party{}, Mediators: map[string]*Mediator{},
		listeners: map[string]net.Listener{},
	}
	n.PartyIDs = append([]string(nil), opts.Parties...)
	sort.Strings(n.PartyIDs)
	n.MediatorIDs = append([]string(nil), opts.Mediators...)
	sort.Strings(n.MediatorIDs)

	a := &agreement.Agreement{
		ID:            "parley-local",
		Title:         "Parley local network",
		EffectiveFrom: opts.EffectiveFrom,
		WitnessQuorum: opts.Quorum,
		Rules:         agreement.Rules{Set: opts.RuleSet},
	}
	signers := map[string]*signerFile{}
	for _, id := range n.PartyIDs {
		p, ap, sf, err := n.generateParty(id)
		if err != nil {
			return nil, err
		}
		n.Parties[id] = p
		a.Parties = append(a.Parties, ap)
		signers[id] = sf
	}
	for _, id := range n.MediatorIDs {
		m, am, err := n.generateMediator(id)
		if err != nil {
			return nil, err
		}
		n.Mediators[id] = m
		a.Mediators = append(a.Mediators, am)
	}
	text, err := agreement.Create(a)
	if err != nil {
		return nil, fmt.Errorf("couldn't create the agreement: %w", err)
	}
	f, err := agreement.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse the agreement just created: %w", err)
	}
	for _, id := range n.PartyIDs {
		signer, err := keys.LoadSigner(ctx, signers[id].path, nil)
		if err != nil {
			return nil, err
		}
		if err := f.Sign(ctx, id, signer); err != nil {
			return nil, fmt.Errorf("couldn't sign the agreement for %s: %w", id, err)
		}
	}
	n.AgreementFile = filepath.Join(opts.Dir, "agreement.yaml")
	if err := os.WriteFile(n.AgreementFile, f.Marshal(), 0o644); err != nil {
		return nil, fmt.Errorf("couldn't write the agreement: %w", err)
	}
	n.Agreement, err = agreement.Load(n.AgreementFile)
	if err != nil {
		return nil, err
	}
	for _, id := range n.PartyIDs {
		if err := n.writeNodeConfig(n.Parties[id]); err != nil {
			return nil, err
		}
	}
	for _, id := range n.MediatorIDs {
		if err := n.writeMediatorConfig(n.Mediators[id]); err != nil {
			return nil, err
		}
	}
	if err := n.writeNetworkJSON(); err != nil {
		return nil, err
	}
	return n, nil
}

type signerFile struct{ path string }

func reserve() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("couldn't reserve a loopback port: %w", err)
	}
	return l, nil
}

func leafFor(ca *certs.CA, role certs.Role, name string) (*certs.Leaf, error) {
	return ca.Issue(certs.IssueRequest{
		Role: role, Name: name,
		DNSNames: []string{"localhost"},
		IPs:      []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		Validity: 365 * 24 * time.Hour,
	})
}

// newCA makes the CA of trust domain id and writes it to dir/ca.{crt,key}.
func newCA(dir, id string) (*certs.CA, string, error) {
	ca, err := certs.NewCA(id, 5*365*24*time.Hour)
	if err != nil {
		return nil, "", err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return nil, "", err
	}
	caFile, _, err := certs.WriteFiles(dir, "ca", ca.CertPEM(), caKey)
	return ca, caFile, err
}

// issueLeaf issues a loopback certificate for role/name and writes it to
// dir/file.{crt,key}.
func issueLeaf(ca *certs.CA, dir string, role certs.Role, name, file string) (string, string, error) {
	l, err := leafFor(ca, role, name)
	if err != nil {
		return "", "", err
	}
	return writeLeaf(dir, file, l)
}

func writeLeaf(dir, name string, l *certs.Leaf) (string, string, error) {
	key, err := l.KeyPEM()
	if err != nil {
		return "", "", err
	}
	return certs.WriteFiles(dir, name, l.CertPEM(), key)
}

func (n *Network) generateParty(id string) (*Party, agreement.Party, *signerFile, error) {
	fail := func(err error) (*Party, agreement.Party, *signerFile, error) {
		return nil, agreement.Party{}, nil, fmt.Errorf("couldn't generate party %s: %w", id, err)
	}
	dir := filepath.Join(n.Dir, id)
	ca, caFile, err := newCA(dir, id)
	if err != nil {
		return fail(err)
	}
	nodeCert, nodeKey, err := issueLeaf(ca, dir, certs.RoleNode, "node", "node")
	if err != nil {
		return fail(err)
	}
	opCert, opKey, err := issueLeaf(ca, dir, certs.RoleOperator, "ops", "operator")
	if err != nil {
		return fail(err)
	}
	priv, err := keys.Generate(keys.Ed25519)
	if err != nil {
		return fail(err)
	}
	privPEM, err := keys.MarshalPrivatePEM(priv, nil)
	if err != nil {
		return fail(err)
	}
	signingFile := filepath.Join(dir, "signing.key")
	if err := os.WriteFile(signingFile, privPEM, 0o600); err != nil {
		return fail(err)
	}
	pubPEM, err := keys.MarshalPublicPEM(priv.Public())
	if err != nil {
		return fail(err)
	}
	keyID, err := keys.KeyID(priv.Public())
	if err != nil {
		return fail(err)
	}
	origin := "parley.local/" + id
	skey, vkey, err := tlog.GenerateKey(origin)
	if err != nil {
		return fail(err)
	}
	cpFile := filepath.Join(dir, "checkpoint.skey")
	if err := os.WriteFile(cpFile, []byte(skey+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "checkpoint.vkey"), []byte(vkey+"\n"), 0o644); err != nil {
		return fail(err)
	}
	l, err := reserve()
	if err != nil {
		return fail(err)
	}
	n.listeners[id] = l
	tl, err := reserve()
	if err != nil {
		return fail(err)
	}
	n.listeners["tiles/"+id] = tl
	p := &Party{
		ID: id, Address: l.Addr().String(), TilesAddress: tl.Addr().String(), CAFile: caFile,
		NodeCertFile: nodeCert, NodeKeyFile: nodeKey,
		OperatorCert: opCert, OperatorKey: opKey,
		SigningKey: signingFile, CheckpointKey: cpFile,
		ConfigFile: filepath.Join(dir, "node.yaml"), DataDir: filepath.Join(dir, "data"),
		LogOrigin: origin,
	}
	ap := agreement.Party{
		ID: id, Name: "Party " + id, CA: string(ca.CertPEM()),
		Endpoints:    []string{p.Address},
		TileEndpoint: "https://" + p.TilesAddress + "/",
		Keys:         []agreement.Key{{ID: keyID, PublicKey: string(pubPEM), NotBefore: n.opts.EffectiveFrom, NotAfter: n.opts.KeyNotAfter}},
		LogOrigin:    origin, CheckpointKey: vkey,
	}
	return p, ap, &signerFile{path: signingFile}, nil
}

func (n *Network) generateMediator(id string) (*Mediator, agreement.Mediator, error) {
	fail := func(err error) (*Mediator, agreement.Mediator, error) {
		return nil, agreement.Mediator{}, fmt.Errorf("couldn't generate mediator %s: %w", id, err)
	}
	dir := filepath.Join(n.Dir, "mediator-"+id)
	ca, caFile, err := newCA(dir, id)
	if err != nil {
		return fail(err)
	}
	certFile, keyFile, err := issueLeaf(ca, dir, certs.RoleMediator, "witness", "mediator")
	if err != nil {
		return fail(err)
	}
	skey, vkey, err := mediator.GenerateCosigningKey("parley.local/mediator/" + id)
	if err != nil {
		return fail(err)
	}
	cosignFile := filepath.Join(dir, "cosigning.skey")
	if err := os.WriteFile(cosignFile, []byte(skey+"\n"), 0o600); err != nil {
		return fail(err)
	}
	l, err := reserve()
	if err != nil {
		return fail(err)
	}
	n.listeners["mediator/"+id] = l
	m := &Mediator{ID: id, Address: l.Addr().String(), CAFile: caFile, CertFile: certFile, KeyFile: keyFile, CosigningKey: cosignFile, DataDir: filepath.Join(dir, "data")}
	am := agreement.Mediator{ID: id, Name: "Mediator " + id, CA: string(ca.CertPEM()), WitnessEndpoint: "https://" + m.Address, CosigningKey: vkey}
	return m, am, nil
}

func (n *Network) writeNodeConfig(p *Party) error {
	c := config.Node{
		Party: p.ID, Listen: p.Address, TilesListen: p.TilesAddress,
		Agreement: n.AgreementFile, DataDir: p.DataDir,
		SigningKey: p.SigningKey, CheckpointKey: p.CheckpointKey,
		TLS:                config.TLS{Cert: p.NodeCertFile, Key: p.NodeKeyFile},
		CheckpointInterval: n.opts.CheckpointInterval.String(),
		LogLevel:           "info",
		Exchange:           n.opts.Exchange,
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("couldn't write node config for %s: %w", p.ID, err)
	}
	return os.WriteFile(p.ConfigFile, b, 0o644)
}

func (n *Network) writeNetworkJSON() error {
	doc := struct {
		Agreement string      `json:"agreement_file"`
		Parties   []*Party    `json:"parties"`
		Mediators []*Mediator `json:"mediators"`
	}{Agreement: n.AgreementFile}
	for _, id := range n.PartyIDs {
		doc.Parties = append(doc.Parties, n.Parties[id])
	}
	for _, id := range n.MediatorIDs {
		doc.Mediators = append(doc.Mediators, n.Mediators[id])
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.Dir, "network.json"), append(b, '\n'), 0o644)
}

// CAFiles maps every trust domain of the network to its CA file.
func (n *Network) CAFiles() map[string]string {
	m := map[string]string{}
	for id, p := range n.Parties {
		m[id] = p.CAFile
	}
	for id, md := range n.Mediators {
		m[id] = md.CAFile
	}
	return m
}

// Operator dials party's node as that party's operator.
func (n *Network) Operator(ctx context.Context, party string) (*client.Client, error) {
	p, ok := n.Parties[party]
	if !ok {
		return nil, fmt.Errorf("no party %q in the network", party)
	}
	return client.Dial(ctx, client.Config{Address: p.Address, CertFile: p.OperatorCert, KeyFile: p.OperatorKey, CAFiles: n.CAFiles(), Party: party})
}

// LogKeys returns what a client needs to verify party's checkpoints.
func (n *Network) LogKeys(party string) client.LogKeys {
	a := n.Agreement.Agreement
	p, _ := a.Party(party)
	k := client.LogKeys{Origin: p.LogOrigin, CheckpointKey: p.CheckpointKey, Quorum: a.WitnessQuorum}
	for _, m := range a.Mediators {
		k.WitnessKeys = append(k.WitnessKeys, m.CosigningKey)
	}
	return k
}

// Listener hands over the reserved listener for a party id (its node's
// gRPC port), "tiles/<id>" (its node's tile port) or "mediator/<id>" (a
// witness), once.
func (n *Network) Listener(id string) (net.Listener, bool) {
	l, ok := n.listeners[id]
	delete(n.listeners, id)
	return l, ok
}
