package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/parley-dev/parley/client"
	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

func init() {
	commands["notify"] = &command{
		summary: "submit an activity notification to your party's node",
		usage: `Usage: parley notify -network network.json -party ID FILE
       parley notify -addr HOST:PORT -party ID -cert C -key K -ca ID=FILE... FILE

Submits the activity notification in FILE (YAML or JSON, in the protobuf JSON
form of parley.v1.ActivityNotification, e.g. designation, type, start, end,
area.place_names, forces.troops) to party ID's node, as that party's operator.
The node signs, sequences and logs it; the logged entry is printed.
`,
		run: runNotify,
	}
}

// dialFlags are the flags every client command shares.
type dialFlags struct {
	network, party, addr, cert, key string
	cas                             multiFlag
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (d *dialFlags) dial(ctx context.Context) (*client.Client, error) {
	if d.party == "" {
		return nil, usageErrorf("-party is required")
	}
	cfg := client.Config{Address: d.addr, CertFile: d.cert, KeyFile: d.key, CAFiles: map[string]string{}, Party: d.party}
	if d.network != "" {
		net, err := readNetwork(d.network)
		if err != nil {
			return nil, err
		}
		p, ok := net.party(d.party)
		if !ok {
			return nil, fmt.Errorf("network file %s has no party %q", d.network, d.party)
		}
		cfg.Address, cfg.CertFile, cfg.KeyFile = p.Address, p.OperatorCert, p.OperatorKey
		for _, q := range net.Parties {
			cfg.CAFiles[q.ID] = q.CAFile
		}
		for _, m := range net.Mediators {
			cfg.CAFiles[m.ID] = m.CAFile
		}
	}
	for _, ca := range d.cas {
		id, file, ok := strings.Cut(ca, "=")
		if !ok {
			return nil, usageErrorf("-ca %q: want ID=FILE", ca)
		}
		cfg.CAFiles[id] = file
	}
	if cfg.Address == "" || cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, usageErrorf("give -network, or -addr, -cert, -key and -ca")
	}
	return client.Dial(ctx, cfg)
}

// networkFile is the network.json that parley demo writes.
type networkFile struct {
	Agreement string         `json:"agreement_file"`
	Parties   []networkParty `json:"parties"`
	Mediators []struct {
		ID     string `json:"id"`
		CAFile string `json:"ca_file"`
	} `json:"mediators"`
}

// networkParty is one party of network.json.
type networkParty struct {
	ID           string `json:"id"`
	Address      string `json:"address"`
	CAFile       string `json:"ca_file"`
	OperatorCert string `json:"operator_cert_file"`
	OperatorKey  string `json:"operator_key_file"`
}

func readNetwork(path string) (*networkFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read network file: %w", err)
	}
	var n networkFile
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("couldn't parse network file %s: %w", path, err)
	}
	return &n, nil
}

func (n *networkFile) party(id string) (networkParty, bool) {
	for _, p := range n.Parties {
		if p.ID == id {
			return p, true
		}
	}
	return networkParty{}, false
}

// readNotification reads an ActivityNotification from YAML or JSON.
func readNotification(path string) (*parleyv1.ActivityNotification, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read notification: %w", err)
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext != ".json" {
		var v any
		if err := yaml.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("couldn't parse %s as YAML: %w", path, err)
		}
		if b, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("couldn't convert %s to JSON: %w", path, err)
		}
	}
	n := &parleyv1.ActivityNotification{}
	if err := protojson.Unmarshal(b, n); err != nil {
		return nil, fmt.Errorf("couldn't read %s as an activity notification: %w", path, err)
	}
	return n, nil
}

func runNotify(ctx context.Context, env *Env, args []string) error {
	fs := env.newFlagSet("notify")
	var d dialFlags
	fs.StringVar(&d.network, "network", "", "network.json written by parley demo --dir")
	fs.StringVar(&d.party, "party", "", "your party `id`")
	fs.StringVar(&d.addr, "addr", "", "node address `host:port`")
	fs.StringVar(&d.cert, "cert", "", "operator certificate `file`")
	fs.StringVar(&d.key, "key", "", "operator key `file`")
	fs.Var(&d.cas, "ca", "trust domain CA as `id=file` (repeatable)")
	pos, err := env.parseFlags(fs, commands["notify"].usage, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("want exactly one notification file, got %d arguments", len(pos))
	}
	n, err := readNotification(pos[0])
	if err != nil {
		return err
	}
	c, err := d.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	entry, err := c.Notify(ctx, n)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "logged %s/%d at index %d, digest %x\n", entry.GetSender(), entry.GetSeq(), entry.GetIndex(), entry.GetDigest())
	return nil
}
