package server

import "sync"

// hub wakes subscribers when the node accepts an entry or keeps new
// evidence. It holds neither: a subscriber that wakes re-reads the log from
// its own position, and the evidence from the state store, so nothing here
// grows with the log or with what a misbehaving party sends.
type hub struct {
	mu       sync.Mutex
	wake     chan struct{} // closed and replaced on every publish
	evidence int           // pieces of evidence kept since the node started
	closed   bool
}

func newHub() *hub { return &hub{wake: make(chan struct{})} }

// publish announces a new log entry.
func (h *hub) publish() { h.notify(false) }

// publishEvidence announces evidence of misbehaviour, once it is stored.
func (h *hub) publishEvidence() { h.notify(true) }

func (h *hub) notify(evidence bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if evidence {
		h.evidence++
	}
	close(h.wake)
	h.wake = make(chan struct{})
}

// waiter returns a channel closed on the next publish, and how many pieces
// of evidence were published so far.
func (h *hub) waiter() (<-chan struct{}, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.wake, h.evidence
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.wake)
	}
}
