package mediator

import (
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// WriteHTML writes the report as one self-contained HTML page: inline CSS,
// SVG and script, no external resources. It shows the per-party
// compliance summary, a timeline of the notified activities against their
// lead times, the findings, and the evidence with all its material.
func (r *Report) WriteHTML(w io.Writer) error {
	if err := pageTemplate.Execute(w, htmlPage{Report: r, Timeline: r.timelineSVG()}); err != nil {
		return fmt.Errorf("couldn't write the HTML report: %w", err)
	}
	return nil
}

type htmlPage struct {
	*Report
	Timeline svgTimeline
}

// svgTimeline is the timeline laid out for the SVG.
type svgTimeline struct {
	Width, Height int
	Left, Right   int
	Rows          []svgRow
	Ticks         []svgTick
	Now           float64
	NowLabel      string
}

type svgRow struct {
	Y, Top, Bottom, BarY int
	Label, Title         string
	Given, Due, Start    float64
	Width                float64
	Status               string
}

type svgTick struct {
	X     float64
	Label string
}

// timelineSVG lays out the notified activities on a common time axis.
func (r *Report) timelineSVG() svgTimeline {
	t := svgTimeline{Width: 1100, Left: 260, Right: 1080}
	const rowH, top = 30, 40
	if len(r.Timeline) == 0 {
		t.Height = top + rowH
		return t
	}
	lo, hi := r.AsOf, r.AsOf
	for _, it := range r.Timeline {
		for _, x := range []time.Time{it.Given, it.Due, it.Start} {
			if x.Before(lo) {
				lo = x
			}
		}
		if it.End.After(hi) {
			hi = it.End
		}
	}
	span := hi.Sub(lo)
	lo, hi = lo.Add(-span/20-24*time.Hour), hi.Add(span/20+24*time.Hour)
	x := func(at time.Time) float64 {
		return float64(t.Left) + float64(t.Right-t.Left)*float64(at.Sub(lo))/float64(hi.Sub(lo))
	}
	for i, it := range r.Timeline {
		t.Rows = append(t.Rows, svgRow{
			Y:     top + i*rowH,
			Label: fmt.Sprintf("%s/%d %s", it.Sender, it.Seq, clipText(it.Designation, 24)),
			Title: fmt.Sprintf("%s/%d %q: given %s, due by %s, start %s, end %s, lead %.1f days: %s",
				it.Sender, it.Seq, it.Designation, it.Given.Format(time.RFC3339), it.Due.Format(time.RFC3339),
				it.Start.Format(time.RFC3339), it.End.Format(time.RFC3339), it.LeadDays, it.Status),
			Given: x(it.Given), Due: x(it.Due), Start: x(it.Start), Width: max(x(it.End)-x(it.Start), 2), Status: it.Status,
		})
		row := &t.Rows[len(t.Rows)-1]
		row.Top, row.Bottom, row.BarY = row.Y-11, row.Y+11, row.Y-5
	}
	t.Height = top + len(r.Timeline)*rowH + 20
	t.Now, t.NowLabel = x(r.AsOf), "as of "+r.AsOf.Format("2006-01-02")
	step := 24 * time.Hour * 7
	for _, s := range []time.Duration{14, 30, 61, 122, 365} {
		if hi.Sub(lo)/step <= 10 {
			break
		}
		step = s * 24 * time.Hour
	}
	for at := lo.Truncate(24 * time.Hour).Add(24 * time.Hour); at.Before(hi); at = at.Add(step) {
		t.Ticks = append(t.Ticks, svgTick{X: x(at), Label: at.Format("2006-01-02")})
	}
	return t
}

func clipText(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"b64":   func(b []byte) string { return base64.StdEncoding.EncodeToString(b) },
	"time":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") },
	"upper": strings.ToUpper,
	"f1":    func(f float64) string { return fmt.Sprintf("%.1f", f) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parley audit: {{.Agreement.ID}} ({{.Result}})</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { background: #1d2b45; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
main { padding: 18px 28px 40px; max-width: 1200px; }
section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 14px 18px; margin: 0 0 18px; }
h2 { font-size: 17px; margin: 0 0 10px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #eceff3; vertical-align: top; }
th { font-weight: 600; background: #f1f3f6; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.clean, .compliant, .ok { background: #dcf3e3; color: #17602f; }
.violations, .violation, .late { background: #fde9d5; color: #8a4200; }
.misbehaviour { background: #fbdada; color: #8f1111; }
.low, .advisory, .cancelled { background: #e6eaf0; color: #3a4354; }
code, pre { font: 12px/1.35 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { white-space: pre-wrap; word-break: break-all; background: #f4f5f7; padding: 8px; border-radius: 4px; max-height: 220px; overflow: auto; }
details { margin: 6px 0; }
summary { cursor: pointer; }
.muted { color: #5d6675; }
svg text { font: 11px system-ui, sans-serif; fill: #1d2330; }
.legend span { margin-right: 16px; }
</style>
</head>
<body>
<header>
<h1>Parley audit report <span class="badge {{.Result}}">{{upper .Result}}</span></h1>
<div>Agreement <b>{{.Agreement.ID}}</b> — {{.Agreement.Title}} · sha256 <code>{{.Agreement.SHA256}}</code></div>
<div>Mediator <b>{{.Mediator}}</b> · judged as of {{time .AsOf}} · {{.Entries}} mirrored entries · schema version {{.SchemaVersion}}</div>
</header>
<main>
<section id="parties">
<h2>Compliance by party</h2>
<table>
<tr><th>Party</th><th>Status</th><th>Entries sent</th><th>Notifications</th><th>Receipts</th><th>Receipts missing</th><th>Findings</th><th>Evidence</th></tr>
{{range .Parties}}<tr><td><b>{{.Party}}</b> <span class="muted">{{.Name}}</span></td><td><span class="badge {{.Status}}">{{.Status}}</span></td>
<td>{{.EntriesSent}}</td><td>{{.Notifications}}</td><td>{{.Receipts}}</td><td>{{.ReceiptsMissing}}</td>
<td>{{range $sev, $n := .Findings}}<span class="badge {{$sev}}">{{$n}} {{$sev}}</span> {{end}}</td>
<td>{{range .Evidence}}<a href="#{{.}}">{{.}}</a> {{end}}</td></tr>
{{end}}</table>
</section>

<section id="timeline-section">
<h2>Notified activities against their lead times</h2>
<div class="legend muted"><span>● notification given (t_given)</span><span>┆ lead-time deadline ({{.Agreement.LeadTimeDays}} days before start)</span><span>▬ activity, start to end</span></div>
<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{{.Timeline.Width}}" height="{{.Timeline.Height}}" viewBox="0 0 {{.Timeline.Width}} {{.Timeline.Height}}" role="img" aria-label="timeline of notified activities">
{{range .Timeline.Ticks}}<line x1="{{f1 .X}}" y1="22" x2="{{f1 .X}}" y2="{{$.Timeline.Height}}" stroke="#eceff3"/><text x="{{f1 .X}}" y="16" text-anchor="middle">{{.Label}}</text>
{{end}}{{if .Timeline.Rows}}<line x1="{{f1 .Timeline.Now}}" y1="22" x2="{{f1 .Timeline.Now}}" y2="{{.Timeline.Height}}" stroke="#6b7a99" stroke-dasharray="2 3"/><text x="{{f1 .Timeline.Now}}" y="{{.Timeline.Height}}" dy="-4" text-anchor="middle" class="muted">{{.Timeline.NowLabel}}</text>{{end}}
{{range .Timeline.Rows}}<g class="activity {{.Status}}"><title>{{.Title}}</title>
<text x="8" y="{{.Y}}" dy="4">{{.Label}}</text>
<line x1="{{f1 .Given}}" y1="{{.Y}}" x2="{{f1 .Start}}" y2="{{.Y}}" stroke="#9aa5b8" stroke-width="1.5"/>
<line class="due" x1="{{f1 .Due}}" y1="{{.Top}}" x2="{{f1 .Due}}" y2="{{.Bottom}}" stroke="#c0392b" stroke-width="2" stroke-dasharray="3 2"/>
<rect x="{{f1 .Start}}" y="{{.BarY}}" width="{{f1 .Width}}" height="10" fill="#3867d6" rx="2"/>
<circle cx="{{f1 .Given}}" cy="{{.Y}}" r="5" fill="{{if eq .Status "late"}}#c0392b{{else}}#27ae60{{end}}"/>
</g>
{{end}}</svg>
{{if not .Timeline.Rows}}<p class="muted">No notified activities.</p>{{end}}
<table>
<tr><th>Entry</th><th>Activity</th><th>Given</th><th>Due by</th><th>Start</th><th>End</th><th>Lead (days)</th><th>Status</th></tr>
{{range .Report.Timeline}}<tr><td><code>{{.Sender}}/{{.Seq}}</code></td><td>{{.Designation}}{{if .Alert}} (alert){{end}}</td><td>{{time .Given}}</td><td>{{time .Due}}</td><td>{{time .Start}}</td><td>{{time .End}}</td><td>{{f1 .LeadDays}}</td><td><span class="badge {{.Status}}">{{.Status}}</span></td></tr>
{{end}}</table>
</section>

<section id="findings">
<h2>Findings ({{len .Findings}})</h2>
<label>Party: <select id="party-filter"><option value="">all</option>{{range .Agreement.Parties}}<option>{{.}}</option>{{end}}</select></label>
<table id="findings-table">
<tr><th>Rule</th><th>Severity</th><th>Party</th><th>Summary</th><th>Required</th><th>Seen</th><th>Entries</th></tr>
{{range .Findings}}<tr data-party="{{.Party}}"><td><code>{{.Rule}}</code></td><td><span class="badge {{.Severity}}">{{.Severity}}</span></td><td>{{.Party}}</td>
<td>{{.Summary}}{{if .Evidence}} <a href="#{{.Evidence}}">[{{.Evidence}}]</a>{{end}}</td><td>{{.Required}}</td><td>{{.Seen}}</td>
<td>{{range .Entries}}<code title="{{.Digest}}">{{.Sender}}/{{.Seq}}</code> {{end}}</td></tr>
{{end}}</table>
</section>

<section id="evidence">
<h2>Evidence ({{len .Evidence}})</h2>
{{if not .Evidence}}<p class="muted">No evidence of misbehaviour.</p>{{end}}
{{range .Evidence}}<div id="{{.ID}}">
<h3>{{.ID}} · {{.Kind}} · against {{.Party}} {{if .Verified}}<span class="badge ok">verified</span>{{else}}<span class="badge misbehaviour">not verified</span>{{end}}</h3>
<p>{{.Summary}}</p>
<p class="muted">How to check it independently: {{.HowToVerify}}</p>
{{if .Acknowledged}}<p>Acknowledged entry: <code>{{.Acknowledged.Sender}}/{{.Acknowledged.Seq}} {{.Acknowledged.Digest}}</code></p>{{end}}
{{range .Envelopes}}<details><summary>Envelope ({{.Role}}) <code>{{.Sender}}/{{.Seq}}</code> sha256 <code>{{.Digest}}</code></summary>
<pre>{{b64 .Envelope}}</pre>
{{range .FoundIn}}<div class="muted">in {{.Log}}'s log at index {{.Index}}{{if .TreeSize}}, inclusion proof in tree size {{.TreeSize}}:{{end}}</div>{{if .InclusionProof}}<pre>{{range .InclusionProof}}{{b64 .}}
{{end}}</pre>{{end}}{{end}}
</details>{{end}}
{{range .Checkpoints}}<details><summary>Checkpoint ({{.Role}}) {{.Origin}} size {{.Size}} — {{.Source}}</summary><pre>{{.Note}}</pre></details>{{end}}
{{with .Proof}}<details><summary>Consistency proof from size {{.FromSize}} to {{.ToSize}}</summary><pre>from_root {{b64 .FromRoot}}
{{range .Hashes}}{{b64 .}}
{{end}}</pre></details>{{end}}
{{with .Log}}<details><summary>{{.Party}}'s log, {{.Size}} envelopes</summary>{{if .Note}}<p>{{.Note}}</p>{{end}}<pre>{{range .Envelopes}}{{b64 .}}
{{end}}</pre></details>{{end}}
</div>
{{end}}
</section>

<section id="logs">
<h2>Logs</h2>
<table>
<tr><th>Party</th><th>Origin</th><th>Mirrored entries</th><th>Checkpoint size</th><th>Witnessed</th><th>Cosigned by this mediator</th></tr>
{{range .Logs}}<tr><td>{{.Party}}</td><td><code>{{.Origin}}</code></td><td>{{.Size}}</td><td>{{.CheckpointSize}}</td><td>{{.Witnessed}}</td><td>{{.CosignedSize}}</td></tr>
{{end}}</table>
{{range .Logs}}{{if .Checkpoint}}<details><summary>{{.Party}}'s mirrored checkpoint</summary><pre>{{.Checkpoint}}</pre></details>{{end}}{{end}}
{{if .Problems}}<h2>Problems (the audit is incomplete)</h2><ul>{{range .Problems}}<li>{{.}}</li>{{end}}</ul>{{end}}
</section>
</main>
<script>
(function () {
  "use strict";
  var select = document.getElementById("party-filter");
  var rows = document.querySelectorAll("#findings-table tr[data-party]");
  select.addEventListener("change", function () {
    for (var i = 0; i < rows.length; i++) {
      rows[i].style.display = (!select.value || rows[i].getAttribute("data-party") === select.value) ? "" : "none";
    }
  });
})();
</script>
</body>
</html>
`))
