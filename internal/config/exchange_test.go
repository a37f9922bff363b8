package config

import (
	"strings"
	"testing"
	"time"
)

func TestExchangeFields(t *testing.T) {
	c, err := load(t, minimal+`exchange:
  receipt_delay: 20ms
  receipt_max_acks: 100
  sync_interval: 500ms
  relay_delay: 50ms
  backoff_max: 2s
  peer_overrides: {charlie: "127.0.0.1:1"}
`)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	receipt, syncEvery, relay, backoff, err := c.Exchange.durations()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		got, want time.Duration
	}{
		{"receipt_delay", receipt, 20 * time.Millisecond},
		{"sync_interval", syncEvery, 500 * time.Millisecond},
		{"relay_delay", relay, 50 * time.Millisecond},
		{"backoff_max", backoff, 2 * time.Second},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, tt.got, tt.want)
		}
	}
	if c.Exchange.ReceiptMaxAcks != 100 || c.Exchange.PeerOverrides["charlie"] != "127.0.0.1:1" {
		t.Errorf("got %+v, want receipt_max_acks 100 and charlie overridden", c.Exchange)
	}
}

func TestExchangeErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"receipt delay not a duration", "exchange: {receipt_delay: soon}", "exchange.receipt_delay"},
		{"receipt delay too long", "exchange: {receipt_delay: 2m}", "exchange.receipt_delay"},
		{"sync interval too short", "exchange: {sync_interval: 1ms}", "exchange.sync_interval"},
		{"negative relay delay", "exchange: {relay_delay: -1s}", "exchange.relay_delay"},
		{"backoff too short", "exchange: {backoff_max: 10ms}", "exchange.backoff_max"},
		{"too many acks", "exchange: {receipt_max_acks: 5000}", "exchange.receipt_max_acks"},
		{"override not host:port", "exchange: {peer_overrides: {bravo: nowhere}}", "exchange.peer_overrides"},
		{"unknown field", "exchange: {flood: true}", "flood"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, minimal+tt.yaml+"\n")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
