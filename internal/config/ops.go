package config

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/parley-dev/parley/certs"
	"github.com/parley-dev/parley/server"
)

// Limits bound what callers may ask of the node. Every field is optional:
// zero or absent takes the default (server.DefaultLimits). Durations are Go
// durations.
type Limits struct {
	// MaxRecvMessageBytes bounds one gRPC message the node receives.
	// Default 1048576 (1 MiB); an envelope is at most 64 KiB.
	MaxRecvMessageBytes int `yaml:"max_recv_message_bytes,omitempty"`
	// MaxSendMessageBytes bounds one gRPC message the node sends (a page
	// of up to 1,000 entries). Default 83886080 (80 MiB).
	MaxSendMessageBytes int `yaml:"max_send_message_bytes,omitempty"`
	// MaxConcurrentStreams bounds the calls in flight on one connection;
	// clients queue calls above it. Default 100.
	MaxConcurrentStreams uint32 `yaml:"max_concurrent_streams,omitempty"`
	// KeepaliveMinTime is the shortest interval the node accepts between a
	// client's keepalive pings; a client pinging more often is
	// disconnected. Default 10s.
	KeepaliveMinTime string `yaml:"keepalive_min_time,omitempty"`
	// KeepaliveTime is how long a connection may be idle before the node
	// pings the client. Default 1m.
	KeepaliveTime string `yaml:"keepalive_time,omitempty"`
	// KeepaliveTimeout is how long the node waits for the answer to its
	// ping before it closes the connection. Default 20s.
	KeepaliveTimeout string `yaml:"keepalive_timeout,omitempty"`
	// RatePerParty is how many calls per second, sustained, all the
	// certificates of one trust domain (a party or a mediator) may make
	// together; calls above it fail with RESOURCE_EXHAUSTED. Health checks
	// are not limited. Default 100; -1 disables this limit and the entry
	// limit.
	RatePerParty float64 `yaml:"rate_per_party,omitempty"`
	// EntryRatePerParty is how many entries per second, sustained, one
	// trust domain's nodes may stream to this node (delivery: a request
	// carrying several entries counts each); above it they wait, slowed
	// down by flow control. Default 5000.
	EntryRatePerParty float64 `yaml:"entry_rate_per_party,omitempty"`
	// EntryBurstPerParty is how many streamed entries may arrive at once
	// above the entry rate. Default 10000.
	EntryBurstPerParty int `yaml:"entry_burst_per_party,omitempty"`
	// BurstPerParty is how many calls a trust domain may make at once
	// above the sustained rate. Default 200.
	BurstPerParty int `yaml:"burst_per_party,omitempty"`
	// ShutdownGrace bounds how long the node waits, when stopping, for the
	// calls in flight; subscriptions end at once. Default 10s.
	ShutdownGrace string `yaml:"shutdown_grace,omitempty"`
}

// opsSettings are the parsed operational fields of a Node.
type opsSettings struct {
	limits                server.Limits
	witnessUnhealthyAfter time.Duration
	reloadInterval        time.Duration
}

// ops parses and checks the operational fields: admin_listen, crls,
// reload_interval, witness_unhealthy_after and limits.
func (c *Node) ops() (opsSettings, error) {
	var (
		s    opsSettings
		errs []error
	)
	duration := func(name, v string, min time.Duration) time.Duration {
		if v == "" {
			return 0
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < min {
			errs = append(errs, fmt.Errorf("%s: got %q, want a Go duration of at least %s", name, v, min))
			return 0
		}
		return d
	}
	if c.AdminListen != "" {
		if err := server.CheckAdminAddress(c.AdminListen); err != nil {
			errs = append(errs, fmt.Errorf("admin_listen: %w", err))
		} else if c.AdminListen == c.Listen || c.AdminListen == c.TilesListen {
			errs = append(errs, fmt.Errorf("admin_listen: %q is also the address of another listener; the admin port must be a port of its own", c.AdminListen))
		}
	}
	for _, domain := range slices.Sorted(maps.Keys(c.CRLs)) {
		if err := certs.ValidateID(domain); err != nil {
			errs = append(errs, fmt.Errorf("crls: %w", err))
		}
		if c.CRLs[domain] == "" {
			errs = append(errs, fmt.Errorf("crls: %s: file required", domain))
		}
	}
	s.reloadInterval = duration("reload_interval", c.ReloadInterval, 100*time.Millisecond)
	s.witnessUnhealthyAfter = duration("witness_unhealthy_after", c.WitnessUnhealthyAfter, time.Second)
	l := c.Limits
	s.limits = server.Limits{
		MaxRecvMessageBytes:  l.MaxRecvMessageBytes,
		MaxSendMessageBytes:  l.MaxSendMessageBytes,
		MaxConcurrentStreams: l.MaxConcurrentStreams,
		KeepaliveMinTime:     duration("limits.keepalive_min_time", l.KeepaliveMinTime, time.Second),
		KeepaliveTime:        duration("limits.keepalive_time", l.KeepaliveTime, time.Second),
		KeepaliveTimeout:     duration("limits.keepalive_timeout", l.KeepaliveTimeout, time.Second),
		RatePerParty:         l.RatePerParty,
		BurstPerParty:        l.BurstPerParty,
		EntryRatePerParty:    l.EntryRatePerParty,
		EntryBurstPerParty:   l.EntryBurstPerParty,
		ShutdownGrace:        duration("limits.shutdown_grace", l.ShutdownGrace, 0),
	}
	switch {
	case l.MaxRecvMessageBytes < 0 || l.MaxRecvMessageBytes > 0 && l.MaxRecvMessageBytes < 128<<10:
		errs = append(errs, fmt.Errorf("limits.max_recv_message_bytes: got %d, want at least 131072 (an envelope is up to 64 KiB)", l.MaxRecvMessageBytes))
	case l.MaxSendMessageBytes < 0 || l.MaxSendMessageBytes > 0 && l.MaxSendMessageBytes < 1<<20:
		errs = append(errs, fmt.Errorf("limits.max_send_message_bytes: got %d, want at least 1048576", l.MaxSendMessageBytes))
	case l.RatePerParty < 0 && l.RatePerParty != -1:
		errs = append(errs, fmt.Errorf("limits.rate_per_party: got %g, want a positive rate, or -1 for no limit", l.RatePerParty))
	case l.BurstPerParty < 0:
		errs = append(errs, fmt.Errorf("limits.burst_per_party: got %d, want a positive burst", l.BurstPerParty))
	case l.EntryRatePerParty < 0:
		errs = append(errs, fmt.Errorf("limits.entry_rate_per_party: got %g, want a positive rate", l.EntryRatePerParty))
	case l.EntryBurstPerParty < 0:
		errs = append(errs, fmt.Errorf("limits.entry_burst_per_party: got %d, want a positive burst", l.EntryBurstPerParty))
	}
	return s, errors.Join(errs...)
}

// resolveOpsPaths makes the CRL files relative to base absolute.
func (c *Node) resolveOpsPaths(base string) {
	for domain, p := range c.CRLs {
		if p != "" && !filepath.IsAbs(p) {
			c.CRLs[domain] = filepath.Join(base, p)
		}
	}
}
