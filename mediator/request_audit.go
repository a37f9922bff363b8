package mediator

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// RequestAudit asks the mediator at base (its https URL) for a fresh audit
// report over hc, which must present a certificate of the agreement: the
// mediator syncs its mirror and audits the whole of it. Deadlines are
// judged at now, or by the mediator's clock if now is zero. It returns the
// report as the mediator sends it, JSON that [ReadReport] decodes, for the
// caller to read and close; an answer other than 200 OK is an error with
// what the mediator said.
func RequestAudit(ctx context.Context, hc *http.Client, base string, now time.Time) (io.ReadCloser, error) {
	u := strings.TrimSuffix(base, "/") + AuditPath
	if !now.IsZero() {
		u += "?now=" + url.QueryEscape(now.UTC().Format(time.RFC3339))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("couldn't ask the mediator at %s for an audit: %w", base, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("couldn't ask the mediator at %s for an audit: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("the mediator at %s answered %s: %s", base, resp.Status, bytes.TrimSpace(body))
	}
	return resp.Body, nil
}
