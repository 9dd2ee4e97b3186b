package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/aims"
)

func runRecords(ctx context.Context, env *Env, args []string) error {
	return dispatchAPI(ctx, env, "records", "Keep the ISO/IEC 42001 management-system records (inventory, AI policies, risks, impact\nassessments, competence, documents, communication, SoA statements, audits, reviews,\nincidents) as YAML, through the admin API (needs VIGIL_TOKEN; writing needs an admin token).", args,
		recordsImport(), recordsExport(), recordsList(), recordsGet(), recordsSignoff(), recordsSoA(), recordsHealth(), recordsIncidents(), recordsInventory())
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

func recordsImport() apiCommand {
	var dry bool
	var scale int
	var files map[string][]byte
	var names []string
	return apiCommand{
		name:  "records import",
		brief: "validate and import YAML records from files or directories",
		usage: "[--dry-run] FILE|DIR...",
		help:  "Validate YAML records and import them. Every file is checked first: errors name the file, line, record\nand field, and nothing is imported unless all records are valid. Importing the same files again changes\nnothing. A policy with a signoff: block is signed off (in the ledger) if that version is not yet.",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&dry, "dry-run", false, "only validate the files locally; import nothing")
			fs.IntVar(&scale, "risk-scale", aims.DefaultRiskScale, "the server's risk scale, for --dry-run")
		},
		check: func(in *invocation) error {
			if len(in.args) == 0 {
				return in.complain("name at least one file or directory")
			}
			var err error
			if files, err = readRecordFiles(in.args); err != nil {
				return err
			}
			names = make([]string, 0, len(files))
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
				if dry {
					// Without --dry-run the server validates, against its own risk scale.
					for _, p := range ps {
						errs = append(errs, p.Locate(aims.Validate(p.Record, scale))...)
					}
				}
				count += len(ps)
			}
			if len(errs) > 0 {
				return &exitError{code: 1, msg: "vigil records import: invalid records:\n" + errs.Error()}
			}
			if dry {
				fmt.Fprintf(in.env.Stdout, "%d records in %d files are valid.\n", count, len(files))
				return errDone
			}
			return nil
		},
		request: func(*invocation) (apiRequest, error) {
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
			return apiRequest{method: "POST", path: apiPath("records", "import"), body: body}, nil
		},
		show: decoded(func(w io.Writer, _ []string, res aims.ImportResult) {
			signed := 0
			for _, r := range res.Results {
				if r.Signed != nil {
					signed++
				}
			}
			fmt.Fprintf(w, "Imported %d records from %d files: %d created, %d updated, %d unchanged; %d policy sign-offs recorded.\n",
				len(res.Results), len(files), res.Created, res.Updated, res.Same, signed)
		}),
	}
}

func recordsExport() apiCommand {
	return apiCommand{
		name:  "records export",
		brief: "write every record as YAML files into a directory (round-trips with import)",
		usage: "DIR",
		help:  "Write every record as YAML, one file per kind, into DIR (created if needed). The files import back unchanged.",
		args:  one("directory"),
		request: func(*invocation) (apiRequest, error) {
			return apiRequest{method: "GET", path: apiPath("records", "export")}, nil
		},
		show: func(w io.Writer, args []string, raw json.RawMessage) error {
			var out struct {
				Files map[string]string `json:"files"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			dir := args[0]
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
			fmt.Fprintf(w, "Wrote %d files to %s: %s\n", len(names), dir, strings.Join(names, ", "))
			return nil
		},
		showAlways: true,
	}
}

func recordsList() apiCommand {
	return apiCommand{
		name:  "records list",
		brief: "list the records of one kind",
		usage: "KIND",
		help:  "List the records of one kind: " + strings.Join(aims.RecordKinds, ", ") + ".",
		request: func(in *invocation) (apiRequest, error) {
			// Checked here rather than in args: records list has always read the token
			// before looking at its argument.
			if len(in.args) != 1 {
				in.fs.Usage()
				return apiRequest{}, errUsage
			}
			return apiRequest{method: "GET", path: apiPath("records", in.args[0])}, nil
		},
		show: decoded(func(w io.Writer, _ []string, out struct {
			Records []map[string]any `json:"records"`
		}) {
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
			table(w, []string{"ID", "TITLE"}, rows)
		}),
	}
}

func recordsGet() apiCommand {
	return apiCommand{
		name:  "records get",
		brief: "show one record as JSON",
		usage: "KIND ID",
		help:  "Show one record as JSON.",
		args:  &positional{n: 2},
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "GET", path: apiPath("records", in.args[0], in.args[1])}, nil
		},
	}
}

func recordsSignoff() apiCommand {
	var leader, title, version string
	return apiCommand{
		name:  "records signoff",
		brief: "record a leader's sign-off of an AI policy version (a ledger event over its hash)",
		usage: "--leader NAME [--title TITLE] [--version V] POLICY_ID",
		help:  "Record that a named leader approved a version of an AI policy (default: the current one): a ledger event\nover the version's content hash, naming the leader and the token that recorded it.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&leader, "leader", "", "the approving leader's name (required)")
			fs.StringVar(&title, "title", "", "the leader's title, e.g. CEO")
			fs.StringVar(&version, "version", "", "the policy version (default: current)")
		},
		args: one("policy id"),
		request: func(in *invocation) (apiRequest, error) {
			return apiRequest{method: "POST", path: apiPath("records", "policy", in.args[0], "signoff"), body: map[string]string{"leader": leader, "title": title, "version": version}}, nil
		},
		show: decoded(func(w io.Writer, _ []string, so aims.Signoff) {
			fmt.Fprintf(w, "Signed off %s version %s (%s) by %s: ledger entry %d.\n", so.Policy, so.Version, so.Hash, so.Leader, so.Index)
		}),
	}
}

func recordsSoA() apiCommand {
	var from, to string
	var asCSV bool
	return apiCommand{
		name:  "records soa",
		brief: "print the Statement of Applicability with its evidence",
		usage: "[--from DATE] [--to DATE] [--csv]",
		help:  "Print the Statement of Applicability: the 38 Annex A controls with applicability, status and evidence.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&from, "from", "", "start of the evidence period (YYYY-MM-DD; default 30 days ago)")
			fs.StringVar(&to, "to", "", "end of the evidence period, inclusive (YYYY-MM-DD; default now)")
			fs.BoolVar(&asCSV, "csv", false, "print CSV")
		},
		request: func(*invocation) (apiRequest, error) {
			q := url.Values{}
			if from != "" {
				q.Set("from", from)
			}
			if to != "" {
				q.Set("to", to)
			}
			if asCSV {
				q.Set("format", "csv")
			}
			return apiRequest{method: "GET", path: apiPath("aims", "soa") + "?" + q.Encode(), verbatim: asCSV}, nil
		},
		show: decoded(func(w io.Writer, _ []string, soa aims.SoA) {
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
			table(w, []string{"CONTROL", "TITLE", "APPLICABLE", "STATUS", "AUTO EVIDENCE", "DOCUMENTS"}, rows)
			fmt.Fprintf(w, "\n%d controls: %d applicable, %d excluded, %d not assessed, %d implemented; %d with automatic evidence.\n",
				soa.Summary.Controls, soa.Summary.Applicable, soa.Summary.Excluded, soa.Summary.NotAssessed, soa.Summary.Implemented, soa.Summary.WithAutomatic)
		}),
	}
}

func recordsHealth() apiCommand {
	var run bool
	return apiCommand{
		name:  "records health",
		brief: "print the latest control health checks (--run to evaluate now)",
		usage: "[--run]",
		help:  "Print the latest result of every control health check (clause 9.1).",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&run, "run", false, "evaluate the checks now (admin)")
		},
		request: func(*invocation) (apiRequest, error) {
			if run {
				return apiRequest{method: "POST", path: apiPath("aims", "health", "run")}, nil
			}
			return apiRequest{method: "GET", path: apiPath("aims", "health")}, nil
		},
		show: decoded(func(w io.Writer, _ []string, out struct {
			Checks []aims.HealthResult `json:"checks"`
		}) {
			rows := [][]string{}
			for _, h := range out.Checks {
				rows = append(rows, []string{h.Check, map[bool]string{true: "pass", false: "FAIL"}[h.Pass], h.At.Format(time.RFC3339), h.Detail})
			}
			table(w, []string{"CHECK", "RESULT", "AT", "DETAIL"}, rows)
		}),
	}
}

func recordsIncidents() apiCommand {
	return apiCommand{
		name:  "records incidents",
		brief: "list incidents with their Art. 73 deadlines and open actions",
		help:  "List incidents and nonconformities with their EU AI Act Art. 73 deadlines and open actions.",
		request: func(*invocation) (apiRequest, error) {
			return apiRequest{method: "GET", path: apiPath("aims", "incidents")}, nil
		},
		show: decoded(func(w io.Writer, _ []string, out struct {
			Incidents []aims.IncidentStatus `json:"incidents"`
		}) {
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
			table(w, []string{"ID", "TYPE", "SEVERITY", "STATUS", "ART. 73 DEADLINE", "OPEN ACTIONS", "TITLE"}, rows)
		}),
	}
}

// inventoryAnswer is the answer of GET /api/aims/inventory.
type inventoryAnswer struct {
	Systems []aims.InventoryEntry `json:"systems"`
	Flags   []aims.Flag           `json:"unattributed_flags"`
}

func recordsInventory() apiCommand {
	return apiCommand{
		name:  "records inventory",
		brief: "list AI systems with what traffic showed and what is flagged",
		help:  "List AI systems with their EU AI Act class, agents, what traffic showed them using, and flags.",
		request: func(*invocation) (apiRequest, error) {
			return apiRequest{method: "GET", path: apiPath("aims", "inventory")}, nil
		},
		show: decoded(func(w io.Writer, _ []string, out inventoryAnswer) {
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
			table(w, []string{"SYSTEM", "EU AI ACT", "AGENTS", "MODELS SEEN", "FLAGS"}, rows)
			for _, f := range out.Flags {
				fmt.Fprintf(w, "unattributed: %s\n", f.Detail)
			}
		}),
	}
}
