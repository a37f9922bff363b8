package server

import (
	"strings"
	"testing"
	"time"
)

func TestRetryBackoff(t *testing.T) {
	r := retry{min: 100 * time.Millisecond, max: time.Second}
	steps := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, step := range steps {
		step *= time.Millisecond
		for range 20 {
			r2 := r // the same step, drawn again
			if got := r2.next(); got < step/2 || got > step {
				t.Fatalf("attempt %d: got %s, want between %s and %s", i+1, got, step/2, step)
			}
		}
		r.next()
	}
	r.reset()
	if got := r.next(); got > 100*time.Millisecond {
		t.Fatalf("after reset: got %s, want at most 100ms", got)
	}
}

func TestExchangeConfigDefaults(t *testing.T) {
	var c ExchangeConfig
	if err := c.setDefaults(); err != nil {
		t.Fatal(err)
	}
	if c.ReceiptDelay != DefaultReceiptDelay || c.ReceiptMaxAcks != DefaultReceiptMaxAcks || c.SyncInterval != DefaultSyncInterval ||
		c.RelayDelay != DefaultRelayDelay || c.BackoffMin != DefaultBackoffMin || c.BackoffMax != DefaultBackoffMax || c.Window != DefaultWindow {
		t.Fatalf("got %+v, want every default", c)
	}
}

func TestExchangeConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  ExchangeConfig
		want string
	}{
		{"negative delay", ExchangeConfig{ReceiptDelay: -time.Second}, "receipt delay"},
		{"too many acks", ExchangeConfig{ReceiptMaxAcks: 1001}, "receipt max acks"},
		{"backoff max below min", ExchangeConfig{BackoffMin: time.Second, BackoffMax: time.Millisecond}, "backoff max"},
		{"negative window", ExchangeConfig{Window: -1}, "window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.setDefaults()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestOwnFeedCache(t *testing.T) {
	f := newOwnFeed()
	wake := f.waiter()
	for seq := uint64(1); seq <= ownCacheSize+10; seq++ {
		f.put(seq, seq-1, []byte{byte(seq)})
	}
	select {
	case <-wake:
	default:
		t.Fatal("put did not wake the waiter")
	}
	if _, ok := f.get(10); ok {
		t.Error("seq 10 still cached, want it dropped")
	}
	if e, ok := f.get(ownCacheSize + 10); !ok || e.index != ownCacheSize+9 {
		t.Errorf("got %v, %v for the latest seq, want it cached at index %d", e, ok, ownCacheSize+9)
	}
	if got := len(f.entries); got != ownCacheSize {
		t.Errorf("cache holds %d entries, want %d", got, ownCacheSize)
	}
}
