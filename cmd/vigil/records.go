package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/aims"
)

func runRecords(ctx context.Context, env *Env, args []string) error {
	return dispatchVerbs(ctx, env, "records", "Keep the ISO/IEC 42001 management-system records (inventory, AI policies, risks, impact\nassessments, competence, documents, communication, SoA statements, audits, reviews,\nincidents) as YAML, through the admin API (needs VIGIL_TOKEN; writing needs an admin token).", []verb{
		{"import", "validate and import YAML records from files or directories", recordsImport},
		{"export", "write every record as YAML files into a directory (round-trips with import)", recordsExport},
		{"list", "list the records of one kind", recordsList},
		{"get", "show one record as JSON", recordsGet},
		{"signoff", "record a leader's sign-off of an AI policy version (a ledger event over its hash)", recordsSignoff},
		{"soa", "print the Statement of Applicability with its evidence", recordsSoA},
		{"health", "print the latest control health checks (--run to evaluate now)", recordsHealth},
		{"incidents", "list incidents with their Art. 73 deadlines and open actions", recordsIncidents},
		{"inventory", "list AI systems with what traffic showed and what is flagged", recordsInventory},
	}, args)
}

// readRecordFiles reads the YAML files named (directories: every *.yaml and *.yml in
// them, recursively), sorted by path.
func readRecordFiles(paths []string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("couldn't read %s: %w", p, err)
		}
		if !st.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("couldn't read %s: %w", p, err)
			}
			files[p] = b
			continue
		}
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files[path] = b
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("couldn't read %s: %w", p, err)
		}
	}
	if len(files) == 0 {
		return nil, errors.New("no .yaml or .yml files found")
	}
	return files, nil
}

func recordsImport(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "records import", "[--dry-run] FILE|DIR...",
		"Validate YAML records and import them. Every file is checked first: errors name the file, line, record\nand field, and nothing is imported unless all records are valid. Importing the same files again changes\nnothing. A policy with a signoff: block is signed off (in the ledger) if that version is not yet.")
	dry := fs.Bool("dry-run", false, "only validate the files locally; import nothing")
	scale := fs.Int("risk-scale", aims.DefaultRiskScale, "the server's risk scale, for --dry-run")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(env.Stderr, "vigil records import: name at least one file or directory")
		return errUsage
	}
	files, err := readRecordFiles(fs.Args())
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	count := 0
	var errs aims.FieldErrors
	for _, n := range names {
		ps, err := aims.ParseRecords(n, files[n])
		var fe aims.FieldErrors
		if errors.As(err, &fe) {
			errs = append(errs, fe...)
			continue
		}
		if err != nil {
			return err
		}
		if *dry {
			// Without --dry-run the server validates, against its own risk scale.
			for _, p := range ps {
				errs = append(errs, p.Locate(aims.Validate(p.Record, *scale))...)
			}
		}
		count += len(ps)
	}
	if len(errs) > 0 {
		return &exitError{code: 1, msg: "vigil records import: invalid records:\n" + errs.Error()}
	}
	if *dry {
		fmt.Fprintf(env.Stdout, "%d records in %d files are valid.\n", count, len(files))
		return nil
	}
	c, err := client()
	if err != nil {
		return err
	}
	type file struct {
		Name    string `json:"name"`
		Content string `json:"content"`
	}
	body := struct {
		Files []file `json:"files"`
	}{}
	for _, n := range names {
		body.Files = append(body.Files, file{n, string(files[n])})
	}
	var raw json.RawMessage
	if err := c.do(ctx, "POST", "/api/records/import", body, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var res aims.ImportResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return err
	}
	signed := 0
	for _, r := range res.Results {
		if r.Signed != nil {
			signed++
		}
	}
	fmt.Fprintf(env.Stdout, "Imported %d records from %d files: %d created, %d updated, %d unchanged; %d policy sign-offs recorded.\n",
		len(res.Results), len(files), res.Created, res.Updated, res.Same, signed)
	return nil
}

func recordsExport(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "records export", "DIR", "Write every record as YAML, one file per kind, into DIR (created if needed). The files import back unchanged.")
	client, _ := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	dir, err := oneArg(fs, env, "directory")
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	var out struct {
		Files map[string]string `json:"files"`
	}
	if err := c.do(ctx, "GET", "/api/records/export", nil, &out); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("couldn't create %s: %w", dir, err)
	}
	names := make([]string, 0, len(out.Files))
	for n := range out.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n != filepath.Base(n) || !strings.HasSuffix(n, ".yaml") {
			return fmt.Errorf("the server sent an unexpected file name %q", n)
		}
		if err := os.WriteFile(filepath.Join(dir, n), []byte(out.Files[n]), 0o644); err != nil {
			return fmt.Errorf("couldn't write %s: %w", n, err)
		}
	}
	fmt.Fprintf(env.Stdout, "Wrote %d files to %s: %s\n", len(names), dir, strings.Join(names, ", "))
	return nil
}

func recordsList(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "records list", "KIND", "List the records of one kind: "+strings.Join(aims.RecordKinds, ", ")+".")
	raw, done, err := fetch(ctx, env, fs, args, func() (string, string) {
		if fs.NArg() != 1 {
			return "", ""
		}
		return "GET", "/api/records/" + url.PathEscape(fs.Arg(0))
	})
	if err != nil || done {
		return err
	}
	var out struct {
		Records []map[string]any `json:"records"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, r := range out.Records {
		title := ""
		for _, k := range []string{"title", "purpose", "person", "summary", "justification", "chair"} {
			if v, ok := r[k].(string); ok && v != "" {
				title = v
				break
			}
		}
		if len(title) > 70 {
			title = title[:69] + "…"
		}
		rows = append(rows, []string{fmt.Sprint(r["id"]), title})
	}
	table(env.Stdout, []string{"ID", "TITLE"}, rows)
	return nil
}

func recordsGet(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "records get", "KIND ID", "Show one record as JSON.")
	client, _ := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errUsage
	}
	c, err := client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/api/records/"+url.PathEscape(fs.Arg(0))+"/"+url.PathEscape(fs.Arg(1)), nil, &raw); err != nil {
		return err
	}
	return printJSON(env.Stdout, raw)
}

func recordsSignoff(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "records signoff", "--leader NAME [--title TITLE] [--version V] POLICY_ID",
		"Record that a named leader approved a version of an AI policy (default: the current one): a ledger event\nover the version's content hash, naming the leader and the token that recorded it.")
	leader := fs.String("leader", "", "the approving leader's name (required)")
	title := fs.String("title", "", "the leader's title, e.g. CEO")
	version := fs.String("version", "", "the policy version (default: current)")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	id, err := oneArg(fs, env, "policy id")
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "POST", "/api/records/policy/"+url.PathEscape(id)+"/signoff", map[string]string{"leader": *leader, "title": *title, "version": *version}, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var so aims.Signoff
	if err := json.Unmarshal(raw, &so); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Signed off %s version %s (%s) by %s: ledger entry %d.\n", so.Policy, so.Version, so.Hash, so.Leader, so.Index)
	return nil
}

func recordsSoA(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "records soa", "[--from DATE] [--to DATE] [--csv]", "Print the Statement of Applicability: the 38 Annex A controls with applicability, status and evidence.")
	from := fs.String("from", "", "start of the evidence period (YYYY-MM-DD; default 30 days ago)")
	to := fs.String("to", "", "end of the evidence period, inclusive (YYYY-MM-DD; default now)")
	asCSV := fs.Bool("csv", false, "print CSV")
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *from != "" {
		q.Set("from", *from)
	}
	if *to != "" {
		q.Set("to", *to)
	}
	if *asCSV {
		q.Set("format", "csv")
	}
	var raw json.RawMessage
	if *asCSV {
		return c.doRaw(ctx, "/api/aims/soa?"+q.Encode(), env.Stdout)
	}
	if err := c.do(ctx, "GET", "/api/aims/soa?"+q.Encode(), nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, raw)
	}
	var soa aims.SoA
	if err := json.Unmarshal(raw, &soa); err != nil {
		return err
	}
	rows := [][]string{}
	for _, e := range soa.Entries {
		app := "not assessed"
		if e.Assessed {
			app = map[bool]string{true: "yes", false: "no"}[e.Applicable]
		}
		auto := 0
		for _, ev := range e.Evidence {
			if ev.Automatic {
				auto++
			}
		}
		rows = append(rows, []string{strings.TrimPrefix(e.Control.ID, aims.IDPrefix), e.Control.Title, app, e.Status, fmt.Sprint(auto), fmt.Sprint(len(e.Evidence) - auto)})
	}
	table(env.Stdout, []string{"CONTROL", "TITLE", "APPLICABLE", "STATUS", "AUTO EVIDENCE", "DOCUMENTS"}, rows)
	fmt.Fprintf(env.Stdout, "\n%d controls: %d applicable, %d excluded, %d not assessed, %d implemented; %d with automatic evidence.\n",
		soa.Summary.Controls, soa.Summary.Applicable, soa.Summary.Excluded, soa.Summary.NotAssessed, soa.Summary.Implemented, soa.Summary.WithAutomatic)
	return nil
}

func recordsHealth(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "records health", "[--run]", "Print the latest result of every control health check (clause 9.1).")
	run := fs.Bool("run", false, "evaluate the checks now (admin)")
	raw, done, err := fetch(ctx, env, fs, args, func() (string, string) {
		if *run {
			return "POST", "/api/aims/health/run"
		}
		return "GET", "/api/aims/health"
	})
	if err != nil || done {
		return err
	}
	var out struct {
		Checks []aims.HealthResult `json:"checks"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, h := range out.Checks {
		rows = append(rows, []string{h.Check, map[bool]string{true: "pass", false: "FAIL"}[h.Pass], h.At.Format(time.RFC3339), h.Detail})
	}
	table(env.Stdout, []string{"CHECK", "RESULT", "AT", "DETAIL"}, rows)
	return nil
}

func recordsIncidents(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "records incidents", "", "List incidents and nonconformities with their EU AI Act Art. 73 deadlines and open actions.")
	raw, done, err := fetch(ctx, env, fs, args, func() (string, string) { return "GET", "/api/aims/incidents" })
	if err != nil || done {
		return err
	}
	var out struct {
		Incidents []aims.IncidentStatus `json:"incidents"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, i := range out.Incidents {
		deadline := "-"
		if i.Deadline != nil {
			deadline = i.Deadline.Format(time.RFC3339)
			if i.ReportOverdue {
				deadline += " OVERDUE"
			}
		}
		rows = append(rows, []string{i.Incident.ID, i.Incident.Type, i.Incident.Severity, i.Incident.Status, deadline, fmt.Sprint(i.OpenActions), i.Incident.Title})
	}
	table(env.Stdout, []string{"ID", "TYPE", "SEVERITY", "STATUS", "ART. 73 DEADLINE", "OPEN ACTIONS", "TITLE"}, rows)
	return nil
}

func recordsInventory(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "records inventory", "", "List AI systems with their EU AI Act class, agents, what traffic showed them using, and flags.")
	raw, done, err := fetch(ctx, env, fs, args, func() (string, string) { return "GET", "/api/aims/inventory" })
	if err != nil || done {
		return err
	}
	var out struct {
		Systems []aims.InventoryEntry `json:"systems"`
		Flags   []aims.Flag           `json:"unattributed_flags"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, e := range out.Systems {
		class := "(no record)"
		if e.Record != nil {
			class = e.Record.RiskClass
		}
		var models []string
		for _, u := range e.Seen["models"] {
			models = append(models, u.Name)
		}
		rows = append(rows, []string{e.System.Name, class, fmt.Sprint(len(e.Agents)), strings.Join(models, ","), fmt.Sprint(len(e.Flags))})
	}
	table(env.Stdout, []string{"SYSTEM", "EU AI ACT", "AGENTS", "MODELS SEEN", "FLAGS"}, rows)
	for _, f := range out.Flags {
		fmt.Fprintf(env.Stdout, "unattributed: %s\n", f.Detail)
	}
	return nil
}

// fetch parses args, then calls the API at the method and path that target gives
// (it may depend on the flags; an empty method means the arguments are wrong) and
// returns the answer; with --json it prints the answer itself and done is true.
func fetch(ctx context.Context, env *Env, fs *flag.FlagSet, args []string, target func() (method, path string)) (raw json.RawMessage, done bool, err error) {
	client, asJSON := clientFlags(fs, env)
	if err := parse(fs, env, args); err != nil {
		return nil, false, err
	}
	c, err := client()
	if err != nil {
		return nil, false, err
	}
	method, path := target()
	if method == "" {
		fs.Usage()
		return nil, false, errUsage
	}
	if err := c.do(ctx, method, path, nil, &raw); err != nil {
		return nil, false, err
	}
	if *asJSON {
		return raw, true, printJSON(env.Stdout, raw)
	}
	return raw, false, nil
}

// doRaw GETs path and copies the answer body to w (for non-JSON answers such as CSV).
func (c *apiClient) doRaw(ctx context.Context, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("couldn't reach Vigil at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return &apiError{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(b))}
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
