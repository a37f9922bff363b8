package mediator

// AuditProgress is auditProgress, for the external tests.
type AuditProgress = auditProgress

// NewAuditProgress returns the empty progress of a mediator that has not
// audited yet.
func NewAuditProgress() *AuditProgress {
	return &auditProgress{verified: map[string]uint64{}, failed: map[[32]byte]bool{}}
}

// AuditWith is Audit carrying progress from one run to the next, as
// Server.Audit does.
func AuditWith(in AuditInput, p *AuditProgress) (*Report, error) {
	in.progress = p
	return Audit(in)
}

// Failed returns how many digests failed the checks so far.
func (p *AuditProgress) Failed() int { return len(p.failed) }

// WithoutReplayCheck turns off, for the rest of tb, the comparison of every
// audit's replay with the verifier's (see replay_test.go): benchmarks
// measure the auditor alone.
func WithoutReplayCheck(tb interface{ Cleanup(func()) }) {
	old := replayHook
	replayHook = nil
	tb.Cleanup(func() { replayHook = old })
}
