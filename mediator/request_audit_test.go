package mediator_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/mediator"
)

func TestRequestAudit(t *testing.T) {
	var gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.RawQuery
		switch {
		case r.URL.Path != mediator.AuditPath:
			http.NotFound(w, r)
		case strings.Contains(r.URL.RawQuery, "2027"):
			http.Error(w, "couldn't audit; see the mediator's log", http.StatusInternalServerError)
		default:
			io.WriteString(w, `{"schema_version": 1}`)
		}
	}))
	defer srv.Close()
	at := time.Date(2026, 11, 24, 15, 0, 0, 0, time.FixedZone("UTC+1", 3600))
	for _, tc := range []struct {
		name, base string
		now        time.Time
		wantQuery  string
		wantBody   string
		wantErr    string
	}{
		{name: "the mediator's clock", base: srv.URL, wantBody: `{"schema_version": 1}`},
		{name: "a time of the caller's, in UTC", base: srv.URL + "/", now: at, wantQuery: "now=2026-11-24T14%3A00%3A00Z", wantBody: `{"schema_version": 1}`},
		{name: "an error answered", base: srv.URL, now: at.AddDate(1, 0, 0), wantQuery: "now=2027-11-24T14%3A00%3A00Z", wantErr: "500 Internal Server Error: couldn't audit; see the mediator's log"},
		{name: "nobody there", base: "http://127.0.0.1:1", wantErr: "couldn't ask the mediator at http://127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotQuery = ""
			body, err := mediator.RequestAudit(context.Background(), srv.Client(), tc.base, tc.now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				if gotQuery != tc.wantQuery {
					t.Errorf("query %q, want %q", gotQuery, tc.wantQuery)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer body.Close()
			b, err := io.ReadAll(body)
			if err != nil || string(b) != tc.wantBody {
				t.Errorf("body %q, %v; want %q", b, err, tc.wantBody)
			}
			if gotQuery != tc.wantQuery {
				t.Errorf("query %q, want %q", gotQuery, tc.wantQuery)
			}
		})
	}
}
