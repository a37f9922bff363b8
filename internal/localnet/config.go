package localnet

import (
	"bytes"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/parley-dev/parley/internal/config"
)

// UpdateNodeConfig rewrites party's node configuration file with edit
// applied, for example to cut links with exchange.peer_overrides. A node
// reads its file when it starts: restart it for a change to take effect.
func (n *Network) UpdateNodeConfig(party string, edit func(*config.Node)) error {
	p, ok := n.Parties[party]
	if !ok {
		return fmt.Errorf("no party %q in the network", party)
	}
	data, err := os.ReadFile(p.ConfigFile)
	if err != nil {
		return fmt.Errorf("couldn't read %s's node config: %w", party, err)
	}
	var c config.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("couldn't decode %s's node config: %w", party, err)
	}
	edit(&c)
	out, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("couldn't encode %s's node config: %w", party, err)
	}
	if err := os.WriteFile(p.ConfigFile, out, 0o644); err != nil {
		return fmt.Errorf("couldn't write %s's node config: %w", party, err)
	}
	return nil
}
