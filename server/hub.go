package server

import (
	"sync"

	parleyv1 "github.com/parley-dev/parley/proto/parley/v1"
)

// hub fans newly accepted entries and evidence out to subscribers. A
// subscriber that falls behind is not blocked on: it is woken and re-reads
// the log from its own position.
type hub struct {
	mu     sync.Mutex
	wake   chan struct{} // closed and replaced on every publish
	events []*parleyv1.Evidence
	closed bool
}

func newHub() *hub { return &hub{wake: make(chan struct{})} }

// publish announces a new log entry.
func (h *hub) publish(*parleyv1.LogEntry) { h.notify(nil) }

// publishEvidence announces new evidence of misbehaviour.
func (h *hub) publishEvidence(ev *parleyv1.Evidence) { h.notify(ev) }

func (h *hub) notify(ev *parleyv1.Evidence) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if ev != nil {
		h.events = append(h.events, ev)
	}
	close(h.wake)
	h.wake = make(chan struct{})
}

// waiter returns a channel closed on the next publish, and the number of
// evidence events so far.
func (h *hub) waiter() (<-chan struct{}, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.wake, len(h.events)
}

// evidenceSince returns evidence events from position i.
func (h *hub) evidenceSince(i int) []*parleyv1.Evidence {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i >= len(h.events) {
		return nil
	}
	return append([]*parleyv1.Evidence(nil), h.events[i:]...)
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.wake)
	}
}
