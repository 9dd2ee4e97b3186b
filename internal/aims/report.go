package aims

import (
	"bytes"
	"fmt"
	"html/template"
	"sort"
	"strings"
	"time"
)

// RenderReport renders the human-readable HTML report of an evidence bundle: one
// self-contained page (inline styles, no scripts, no external assets) an auditor can
// open from the archive in any browser.
func RenderReport(d *ReportData) ([]byte, error) {
	var buf bytes.Buffer
	if err := reportTemplate.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("couldn't render the report: %w", err)
	}
	return buf.Bytes(), nil
}

var reportFuncs = template.FuncMap{
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02")
	},
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"day": func(d Date) string {
		if d.IsZero() {
			return "—"
		}
		return d.String()
	},
	"join": strings.Join,
	"short": func(s string) string {
		s = strings.TrimPrefix(s, "sha256:")
		if len(s) > 16 {
			return s[:16] + "…"
		}
		return s
	},
	"ctl": func(id string) string { return strings.TrimPrefix(id, IDPrefix) },
	"rec": func(r Record) any { return r },
	"checkName": func(name string) string {
		for _, c := range Checks {
			if c.Name == name {
				return c.Question
			}
		}
		return name
	},
	"latestHealth": func(hs []HealthResult) []HealthResult {
		latest := map[string]HealthResult{}
		for _, h := range hs {
			latest[h.Check] = h
		}
		var out []HealthResult
		for _, c := range Checks {
			if h, ok := latest[c.Name]; ok {
				out = append(out, h)
			}
		}
		return out
	},
	"healthCounts": func(hs []HealthResult) map[string][2]int {
		m := map[string][2]int{}
		for _, h := range hs {
			c := m[h.Check]
			if h.Pass {
				c[0]++
			} else {
				c[1]++
			}
			m[h.Check] = c
		}
		return m
	},
	"seenNames": func(us []Usage) string {
		var names []string
		for _, u := range us {
			mark := ""
			if !u.Approved {
				mark = " (unapproved)"
			}
			names = append(names, fmt.Sprintf("%s ×%d%s", u.Name, u.Count, mark))
		}
		sort.Strings(names)
		return strings.Join(names, ", ")
	},
	"metricRows": func(m map[string]float64) [][2]string {
		var rows [][2]string
		for k, v := range m {
			if strings.HasPrefix(k, "vigil_") {
				rows = append(rows, [2]string{k, fmt.Sprintf("%.0f", v)})
			}
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
		return rows
	},
	"deref": func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	},
	"add": func(a, b int) int { return a + b },
}

var reportTemplate = template.Must(template.New("report").Funcs(reportFuncs).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigil evidence bundle — {{.Origin}}</title>
<style>
:root { --ink:#1d2433; --muted:#5b6478; --line:#dfe3ea; --ok:#1a7f4b; --okbg:#e6f4ec; --bad:#b42318; --badbg:#fdecea; --warn:#8a5a00; --warnbg:#fff4d6; --accent:#2f4b9a; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif; color:var(--ink); background:#f6f7f9; }
header { background:var(--accent); color:#fff; padding:24px 40px; }
header h1 { margin:0 0 4px; font-size:24px; }
header p { margin:2px 0; opacity:.9; }
main { max-width:1360px; margin:0 auto; padding:24px 40px 60px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:20px 24px; margin:0 0 20px; overflow-x:auto; }
h2 { margin:0 0 12px; font-size:18px; color:var(--accent); }
h3 { margin:16px 0 8px; font-size:15px; }
table { width:100%; border-collapse:collapse; font-size:13px; }
th, td { text-align:left; vertical-align:top; padding:6px 8px; border-bottom:1px solid var(--line); }
th { background:#f0f2f6; font-weight:600; }
.mono { font-family:ui-monospace,"DejaVu Sans Mono",monospace; font-size:12px; }
.pill { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; white-space:nowrap; }
.ok { background:var(--okbg); color:var(--ok); } .bad { background:var(--badbg); color:var(--bad); } .warn { background:var(--warnbg); color:var(--warn); }
.muted { color:var(--muted); }
.nowrap { white-space:nowrap; }
.pill.doc { background:#eef0f5; color:var(--muted); }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(160px,1fr)); gap:12px; }
.card { border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.card b { display:block; font-size:22px; }
ul.ev { margin:0; padding-left:16px; } ul.ev li { margin:2px 0; overflow-wrap:anywhere; }
td.mono, td .mono { overflow-wrap:anywhere; } /* hashes and ids may break anywhere, words may not */
.note { background:#f0f2f6; border-left:4px solid var(--accent); padding:10px 14px; }
</style>
</head>
<body>
<header>
<h1>Vigil evidence bundle</h1>
<p>ISO/IEC 42001 management system and ledger evidence for <b>{{.Origin}}</b></p>
<p>Period {{datetime .From}} to {{datetime .To}} · generated {{datetime .Generated}}</p>
</header>
<main>
<section id="summary">
<h2>Summary</h2>
<div class="cards">
<div class="card"><b>{{.SoA.Summary.Controls}}</b>Annex A controls</div>
<div class="card"><b>{{.SoA.Summary.Applicable}}</b>applicable</div>
<div class="card"><b>{{.SoA.Summary.Implemented}}</b>implemented</div>
<div class="card"><b>{{.SoA.Summary.WithAutomatic}}</b>with automatic evidence</div>
<div class="card"><b>{{len .Inventory.Systems}}</b>AI systems</div>
<div class="card"><b>{{len .Incidents}}</b>incidents and nonconformities</div>
<div class="card"><b>{{.Entries}}</b>ledger entries proven</div>
<div class="card"><b>{{len .Checkpoints}}</b>signed checkpoints</div>
</div>
<p class="note">This page is a view of the bundle's signed files. To check them, run <span class="mono">vigil evidence verify --key ledger.pub FILE</span>: it verifies the manifest signature, every file's SHA-256, every checkpoint signature, the consistency proofs between checkpoints and every entry's inclusion proof, offline. Entry bodies are {{if .WithBodies}}included{{else}}withheld (their digests are in the entries){{end}}.</p>
</section>

<section id="soa">
<h2>Statement of Applicability</h2>
<table>
<tr><th>Control</th><th>Title</th><th>Applicable</th><th>Status</th><th>Owner</th><th>Evidence</th><th>EU AI Act</th><th>NIST AI RMF</th></tr>
{{range .SoA.Entries}}<tr>
<td class="mono">{{ctl .Control.ID}}</td>
<td>{{.Control.Title}}{{if .Justification}}<div class="muted">{{.Justification}}</div>{{end}}{{if .Risks}}<div class="muted">Risks: {{join .Risks ", "}}</div>{{end}}</td>
<td>{{if not .Assessed}}<span class="pill warn">not assessed</span>{{else if .Applicable}}<span class="pill ok">yes</span>{{else}}<span class="pill">no</span>{{end}}</td>
<td>{{.Status}}</td>
<td>{{.Owner}}</td>
<td><ul class="ev">{{range .Evidence}}<li>{{if .Automatic}}<span class="pill {{if .OK}}ok{{else}}bad{{end}}">{{.Source}}</span>{{else}}<span class="pill doc">document</span>{{end}} {{.Summary}}</li>{{else}}<li class="muted">none</li>{{end}}</ul></td>
<td>{{join .Control.EUAIAct "; "}}</td>
<td class="muted">{{join .Control.NIST ", "}}</td>
</tr>{{end}}
</table>
</section>

<section id="health">
<h2>Control health checks</h2>
{{$counts := healthCounts .Health}}
<table>
<tr><th>Check</th><th>Latest</th><th>Detail</th><th>In the period</th></tr>
{{range latestHealth .Health}}{{$c := index $counts .Check}}<tr>
<td>{{checkName .Check}}<div class="mono muted">{{.Check}}</div></td>
<td class="nowrap">{{if .Pass}}<span class="pill ok">pass</span>{{else}}<span class="pill bad">fail</span>{{end}}<div class="muted">{{datetime .At}}</div></td>
<td>{{.Detail}}</td>
<td class="nowrap">{{index $c 0}} pass · {{index $c 1}} fail</td>
</tr>{{else}}<tr><td colspan="4" class="muted">No health checks ran in the period.</td></tr>{{end}}
</table>
<h3>Ledger verifications</h3>
<table><tr><th>When</th><th>Result</th><th>By</th><th>Summary</th></tr>
{{range .Verifications}}<tr><td class="nowrap">{{datetime .At}}</td><td>{{if .OK}}<span class="pill ok">passed</span>{{else}}<span class="pill bad">failed</span>{{end}}</td><td>{{.Method}}</td><td>{{.Summary}}</td></tr>{{else}}<tr><td colspan="4" class="muted">No verification recorded in the period.</td></tr>{{end}}
</table>
</section>

<section id="inventory">
<h2>AI system inventory</h2>
<table>
<tr><th>System</th><th>Purpose and owner</th><th>EU AI Act</th><th>Agents</th><th>Seen in traffic</th><th>Flags</th></tr>
{{range .Inventory.Systems}}<tr>
<td><b>{{.System.Name}}</b><div class="muted">{{.System.Lifecycle}}</div></td>
<td>{{.System.Purpose}}<div class="muted">Owner: {{.System.Owner}}</div></td>
<td>{{with .Record}}<span class="pill {{if eq .RiskClass "high"}}bad{{else}}ok{{end}}">{{.RiskClass}}</span> {{.Role}}<div class="muted">{{.RiskRationale}}</div>{{else}}<span class="pill warn">no record</span>{{end}}</td>
<td>{{range .Agents}}{{.Name}} {{end}}</td>
<td>{{with index .Seen "models"}}Models: {{seenNames .}}<br>{{end}}{{with index .Seen "providers"}}Providers: {{seenNames .}}<br>{{end}}{{with index .Seen "tools"}}Tools: {{seenNames .}}{{end}}</td>
<td>{{range .Flags}}<div><span class="pill bad">{{.Kind}}</span> {{.Detail}}</div>{{else}}<span class="muted">none</span>{{end}}</td>
</tr>{{end}}
</table>
{{if .Inventory.Unassigned}}<h3>Traffic not attributed to a registered agent</h3><ul>{{range .Inventory.Unassigned}}<li>{{.Detail}} ({{.Count}} calls, last {{datetime .LastSeen}})</li>{{end}}</ul>{{end}}
</section>

<section id="policies">
<h2>AI policies and sign-offs</h2>
<table>
<tr><th>Policy</th><th>Version and hash</th><th>Sign-offs (ledger)</th><th>Review</th><th>Enforced by</th></tr>
{{range .Policies}}<tr>
<td><b>{{.Policy.Title}}</b><div class="mono muted">{{.Policy.ID}}</div></td>
<td>{{.Policy.Version}}<div class="mono muted">{{short .Hash}}</div></td>
<td>{{range .Signoffs}}<div>{{.Leader}}{{if .Title}}, {{.Title}}{{end}} — v{{.Version}} on {{date .At}} <span class="mono muted">#{{.Index}}</span></div>{{else}}<span class="pill bad">not signed</span>{{end}}</td>
<td>{{day .Policy.NextReview}} {{if .Overdue}}<span class="pill bad">overdue</span>{{else}}<span class="pill ok">on time</span>{{end}}</td>
<td class="mono">{{range .Policy.EnforcedBy}}<div>{{short .}}</div>{{end}}</td>
</tr>{{end}}
</table>
</section>

<section id="risks">
<h2>Risk assessment and treatment</h2>
<table>
<tr><th>Risk</th><th>System</th><th>Inherent</th><th>Residual</th><th>Option</th><th>Treatments</th><th>Owner and review</th></tr>
{{range .Risks}}<tr>
<td><b>{{.ID}}</b> {{.Title}}</td>
<td>{{.System}}</td>
<td><span class="pill {{if eq .InherentLevel "high"}}bad{{else if eq .InherentLevel "medium"}}warn{{else}}ok{{end}}">{{.Inherent}} {{.InherentLevel}}</span><div class="muted">{{.Likelihood}}×{{.Impact}}</div></td>
<td><span class="pill {{if eq .ResidualLevel "high"}}bad{{else if eq .ResidualLevel "medium"}}warn{{else}}ok{{end}}">{{.Residual}} {{.ResidualLevel}}</span><div class="muted">{{.ResidualLikelihood}}×{{.ResidualImpact}}</div></td>
<td>{{.Option}}<div class="muted">{{.Status}}</div></td>
<td>{{range .Treatments}}<div><b>{{.ID}}</b> {{.Description}} <span class="muted">({{.Status}}, {{.Owner}}, due {{day .Due}})</span><div class="mono muted">{{range .Controls}}{{ctl .}} {{end}}{{range .Technical}}{{.}} {{end}}</div></div>{{end}}</td>
<td>{{.Owner}}<div class="muted">next review {{day .NextReview}}</div></td>
</tr>{{end}}
</table>
</section>

<section id="impact">
<h2>Impact assessments</h2>
<table><tr><th>Assessment</th><th>System</th><th>Status</th><th>FRIA (Art. 27)</th><th>Next review</th></tr>
{{range .Impacts}}{{with rec .}}<tr><td><b>{{.ID}}</b> {{.Title}}</td><td>{{.System}}</td><td>{{.Status}}{{if .ApprovedBy}}<div class="muted">by {{.ApprovedBy}} on {{day .ApprovedAt}}</div>{{end}}</td><td>{{if .FRIA}}yes — affected: {{join .FRIA.AffectedCategories ", "}}{{else}}<span class="muted">not required</span>{{end}}</td><td>{{day .NextReview}}</td></tr>{{end}}{{end}}
</table>
</section>

<section id="incidents">
<h2>Incidents, nonconformities and corrective actions</h2>
<table><tr><th>Incident</th><th>Type and severity</th><th>Status</th><th>Art. 73 deadline</th><th>Actions</th><th>Root cause and effectiveness</th></tr>
{{range .Incidents}}<tr>
<td><b>{{.Incident.ID}}</b> {{.Incident.Title}}<div class="muted">{{.Incident.System}} · detected {{datetime .Incident.DetectedAt}} · {{.Incident.Source}}</div></td>
<td>{{.Incident.Type}}<div><span class="pill {{if or (eq .Incident.Severity "high") (eq .Incident.Severity "critical")}}bad{{else}}warn{{end}}">{{.Incident.Severity}}</span></div></td>
<td>{{.Incident.Status}}</td>
<td>{{if .Deadline}}{{datetime (deref .Deadline)}} <div>{{if .ReportOverdue}}<span class="pill bad">overdue</span>{{else if not .Incident.ReportedAt.IsZero}}<span class="pill ok">reported {{date .Incident.ReportedAt}}</span>{{else}}<span class="pill warn">{{.Incident.Category}}</span>{{end}}</div>{{else}}<span class="muted">not serious</span>{{end}}</td>
<td>{{range .Incident.Actions}}<div>{{.ID}} {{.Description}} <span class="muted">({{.Owner}}, due {{day .Due}}, {{.Status}})</span></div>{{end}}</td>
<td>{{.Incident.RootCause}}{{with .Incident.Effectiveness}}<div class="muted">Checked {{day .CheckedAt}} by {{.By}}: {{if .Effective}}effective{{else}}not effective{{end}}</div>{{end}}</td>
</tr>{{end}}
</table>
</section>

<section id="support">
<h2>Competence, documents and communication</h2>
<h3>Competence and training (clause 7.2, Art. 26(2))</h3>
<table><tr><th>Person</th><th>Competence</th><th>Obtained</th><th>Expires</th><th>Evidence</th></tr>
{{range .Competences}}{{with rec .}}<tr><td>{{.Person}}</td><td>{{.Competence}}</td><td>{{day .Obtained}}</td><td>{{day .Expires}}</td><td>{{.Evidence}}</td></tr>{{end}}{{end}}
</table>
<h3>Controlled documents (clause 7.5)</h3>
<table><tr><th>Document</th><th>Version</th><th>Owner</th><th>Approved</th><th>Next review</th></tr>
{{range .Documents}}{{with rec .}}<tr><td><b>{{.ID}}</b> {{.Title}}</td><td>{{.Version}}</td><td>{{.Owner}}</td><td>{{.ApprovedBy}} {{day .ApprovedAt}}</td><td>{{day .NextReview}}</td></tr>{{end}}{{end}}
</table>
<h3>Communication (clause 7.4, Art. 26(7), 26(11))</h3>
<table><tr><th>Date</th><th>Audience</th><th>Basis</th><th>Summary</th><th>By</th></tr>
{{range .Communications}}{{with rec .}}<tr><td>{{day .Date}}</td><td>{{.Audience}}</td><td>{{.Basis}}</td><td>{{.Summary}}</td><td>{{.By}}</td></tr>{{end}}{{end}}
</table>
</section>

<section id="audits">
<h2>Internal audits and management reviews</h2>
<table><tr><th>Audit</th><th>Auditor</th><th>Performed</th><th>Findings</th></tr>
{{range .Audits}}{{with rec .}}<tr><td><b>{{.ID}}</b> {{.Title}}<div class="muted">{{.Scope}}</div></td><td>{{.Auditor}}</td><td>{{day .Performed}} ({{.Status}})</td><td>{{range .Findings}}<div><span class="pill {{if eq .Type "major_nonconformity"}}bad{{else}}warn{{end}}">{{.Type}}</span> {{.Description}}</div>{{end}}</td></tr>{{end}}{{end}}
</table>
<h3>Management reviews</h3>
<table><tr><th>Review</th><th>Chair</th><th>Decisions</th></tr>
{{range .Reviews}}{{with rec .}}<tr><td><b>{{.ID}}</b> {{day .Date}}</td><td>{{.Chair}}</td><td>{{range .Decisions}}<div>{{.}}</div>{{end}}</td></tr>{{end}}{{end}}
</table>
{{with .Inputs}}<h3>Review inputs compiled for the period</h3>
<p>{{len .Incidents}} incidents open in the period; {{len .OpenActions}} open actions; {{len .Audits}} audits; {{len .Flags}} flags from traffic; {{len .PolicySignoffs}} policy sign-offs.</p>{{end}}
</section>

<section id="ledger">
<h2>Ledger and metrics</h2>
<p>Origin <span class="mono">{{.Origin}}</span>. Public key: <span class="mono">{{.PublicKey}}</span></p>
<table><tr><th>Checkpoint size</th><th>Published</th></tr>
{{range .Checkpoints}}<tr><td class="mono">{{.Size}}</td><td>{{datetime .CreatedAt}}</td></tr>{{else}}<tr><td colspan="2" class="muted">No checkpoint covers the period.</td></tr>{{end}}
</table>
{{with metricRows .Metrics}}<h3>Metrics at export</h3><table><tr><th>Metric</th><th>Value</th></tr>{{range .}}<tr><td class="mono">{{index . 0}}</td><td>{{index . 1}}</td></tr>{{end}}</table>{{end}}
</section>
</main>
</body>
</html>
`))
