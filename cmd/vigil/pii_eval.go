package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vigil-gateway/vigil/internal/pii"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// vigil pii eval measures the engine on the labelled data in
// ../shared/testdata/pii (see its README for formats and licences). The data is read
// where it lies, never copied into the repository. Method, per dataset:
//
//   - presidio-research (synth_dataset_v2.json, generated_large.json): the texts as
//     plain text, spans matched by type with intersection over union >= 0.5 after
//     converting Python character offsets to byte offsets; and the same texts wrapped
//     as agent traffic (an OpenAI chat request, an MCP tools/call, an assistant
//     tool call whose arguments are JSON in a string, an MCP tool result), matched by
//     type and value. Gold types we don't detect (PERSON, LOCATION...) count only
//     when we report something of ours over them (a false positive).
//   - noren ground truth: email, card and secret spans, and its hard negatives.
//   - Nosey Parker rule examples: each positive example must yield a SECRET, each
//     negative example none, for the rules whose providers we cover.
//   - generated hard negatives: order numbers, UUIDs, hashes, dates, versions.

// evalEntities are the gold types of presidio-research that we detect.
var evalEntities = map[string]bool{
	pii.CreditCard: true, pii.PhoneNumber: true, pii.EmailAddress: true, pii.IBANCode: true,
	pii.USSSN: true, pii.IPAddress: true, pii.USDriverLicense: true,
}

type counts struct{ gold, pred, tp, fp, fn int }

type evalTable struct {
	title string
	rows  map[string]*counts
	docs  int
}

func newTable(title string) *evalTable { return &evalTable{title: title, rows: map[string]*counts{}} }

func (t *evalTable) row(typ string) *counts {
	c := t.rows[typ]
	if c == nil {
		c = &counts{}
		t.rows[typ] = c
	}
	return c
}

func ratio(a, b int) string {
	if b == 0 {
		return "    -"
	}
	return fmt.Sprintf("%.3f", float64(a)/float64(b))
}

func f1(c *counts) string {
	if c.tp == 0 {
		if c.gold == 0 {
			return "    -"
		}
		return "0.000"
	}
	p := float64(c.tp) / float64(c.tp+c.fp)
	r := float64(c.tp) / float64(c.tp+c.fn)
	return fmt.Sprintf("%.3f", 2*p*r/(p+r))
}

func (t *evalTable) print(w io.Writer) {
	fmt.Fprintf(w, "\n%s (%d documents)\n", t.title, t.docs)
	fmt.Fprintf(w, "| %-18s | %5s | %5s | %5s | %5s | %5s | %9s | %6s | %5s |\n", "entity", "gold", "found", "TP", "FP", "FN", "precision", "recall", "F1")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 20), "------:", "------:", "------:", "------:", "------:", "----------:", "-------:", "------:")
	names := make([]string, 0, len(t.rows))
	for n := range t.rows {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := t.rows[n]
		rec, f := ratio(c.tp, c.tp+c.fn), f1(c)
		if c.gold == 0 {
			rec, f = "    -", "    -" // nothing labelled: only precision means something
		}
		fmt.Fprintf(w, "| %-18s | %5d | %5d | %5d | %5d | %5d | %9s | %6s | %5s |\n", n, c.gold, c.pred, c.tp, c.fp, c.fn, ratio(c.tp, c.tp+c.fp), rec, f)
	}
}

// span is a labelled entity in byte offsets.
type span struct {
	typ        string
	start, end int
	value      string
}

type doc struct {
	text  string
	spans []span
}

func runPIIEval(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "pii eval", "DIR", `
Measure precision, recall and F1 per entity type on the labelled data in DIR
(../shared/testdata/pii): presidio-research, noren, Nosey Parker and generated hard
negatives, as plain text and wrapped as agent JSON traffic. For developers: make pii-eval.`)
	verbose := fs.Bool("verbose", false, "print each miss and false positive (the data is public test data)")
	if err := parse(fs, env, args); err != nil {
		return err
	}
	if *verbose {
		evalLog = env.Stderr
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	dir := fs.Arg(0)
	e, err := pii.New(pii.Options{})
	if err != nil {
		return err
	}
	w := env.Stdout
	fmt.Fprintf(w, "PII engine accuracy on %s (default options: threshold %.2f)\n", dir, pii.DefaultThreshold)

	for _, name := range []string{"synth_dataset_v2.json", "generated_large.json"} {
		path := filepath.Join(dir, "presidio-research", name)
		docs, err := loadPresidio(path)
		if os.IsNotExist(err) {
			fmt.Fprintf(w, "\n%s: not present, skipped\n", path)
			continue
		}
		if err != nil {
			return err
		}
		evalText(e, "presidio-research "+name+", plain text", docs).print(w)
		evalWrapped(e, "presidio-research "+name+", wrapped as chat requests, MCP calls, tool-call arguments and MCP results", docs).print(w)
	}

	noren, negatives, err := loadNoren(filepath.Join(dir, "noren-ground-truth"))
	if err != nil {
		return err
	}
	// noren labels whole headers and parameters (Authorization: Bearer x); we
	// report the credential itself, so a finding inside a gold span matches.
	t := newTable("noren ground truth, plain text (a finding inside or around a gold span matches)")
	for _, d := range noren {
		t.docs++
		score(t, d.spans, e.ScanText([]byte(d.text)), func(g span, f vigil.Finding) bool {
			return f.Start >= g.start && f.End <= g.end || g.start >= f.Start && g.end <= f.End
		})
	}
	t.print(w)
	norenMisses(e, noren, w)
	fp := 0
	for _, d := range negatives {
		for _, f := range e.ScanText([]byte(d.text)) {
			fp++
			fmt.Fprintf(evalLog, "FP %s %q (noren negative)\n", f.Type, f.Value)
		}
	}
	fmt.Fprintf(w, "noren hard negatives: %d documents, %d findings (false positives)\n", len(negatives), fp)

	if err := evalNoseyParker(e, filepath.Join(dir, "noseyparker-rules", "rules"), w); err != nil {
		return err
	}
	evalHardNegatives(e, w)
	return nil
}

// loadPresidio reads a presidio-research dataset, converting character offsets to
// byte offsets.
func loadPresidio(path string) ([]doc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var recs []struct {
		FullText string `json:"full_text"`
		Spans    []struct {
			Type  string `json:"entity_type"`
			Value string `json:"entity_value"`
			Start int    `json:"start_position"`
			End   int    `json:"end_position"`
		} `json:"spans"`
	}
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("couldn't parse %s: %w", path, err)
	}
	docs := make([]doc, 0, len(recs))
	for _, r := range recs {
		off := runeOffsets(r.FullText)
		d := doc{text: r.FullText}
		for _, s := range r.Spans {
			if s.Start < 0 || s.End >= len(off) || s.Start > s.End {
				continue
			}
			d.spans = append(d.spans, span{typ: s.Type, start: off[s.Start], end: off[s.End], value: s.Value})
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// runeOffsets maps code point index → byte offset (with one past the end).
func runeOffsets(s string) []int {
	off := make([]int, 0, len(s)+1)
	for i := range s {
		off = append(off, i)
	}
	return append(off, len(s))
}

// utf16Offsets maps UTF-16 code unit index → byte offset (JavaScript offsets).
func utf16Offsets(s string) []int {
	off := make([]int, 0, len(s)+1)
	for i, r := range s {
		off = append(off, i)
		if r >= 0x10000 {
			off = append(off, i)
		}
	}
	return append(off, len(s))
}

func loadNoren(dir string) (pos, neg []doc, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, nil, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		var recs []struct {
			Text        string `json:"text"`
			Annotations []struct {
				Start int    `json:"start"`
				End   int    `json:"end"`
				Type  string `json:"type"`
				Value string `json:"value"`
			} `json:"annotations"`
		}
		if err := json.Unmarshal(b, &recs); err != nil {
			return nil, nil, fmt.Errorf("couldn't parse %s: %w", f, err)
		}
		for _, r := range recs {
			off := utf16Offsets(r.Text)
			d := doc{text: r.Text}
			for _, a := range r.Annotations {
				typ := pii.Secret
				switch a.Type {
				case "credit_card":
					typ = pii.CreditCard
				case "email":
					typ = pii.EmailAddress
				}
				if a.End >= len(off) {
					continue
				}
				d.spans = append(d.spans, span{typ: typ, start: off[a.Start], end: off[a.End], value: a.Value})
			}
			if len(d.spans) == 0 {
				neg = append(neg, d)
			} else {
				pos = append(pos, d)
			}
		}
	}
	return pos, neg, nil
}

// evalText scores findings against gold spans by type and IoU >= 0.5.
func evalText(e *pii.Engine, title string, docs []doc) *evalTable {
	t := newTable(title)
	for _, d := range docs {
		t.docs++
		fs := e.ScanText([]byte(d.text))
		score(t, d.spans, fs, func(g span, f vigil.Finding) bool { return iou(g.start, g.end, f.Start, f.End) >= 0.5 })
	}
	return t
}

func iou(a0, a1, b0, b1 int) float64 {
	inter := min(a1, b1) - max(a0, b0)
	if inter <= 0 {
		return 0
	}
	return float64(inter) / float64(max(a1, b1)-min(a0, b0))
}

// evalLog receives misses and false positives with --verbose.
var evalLog io.Writer = io.Discard

// score adds one document's results to t.
func score(t *evalTable, gold []span, fs []vigil.Finding, match func(span, vigil.Finding) bool) {
	used := make([]bool, len(gold))
	for _, g := range gold {
		if evalEntities[g.typ] || g.typ == pii.Secret {
			t.row(g.typ).gold++
		}
	}
	for _, f := range fs {
		r := t.row(f.Type)
		r.pred++
		hit := false
		for i, g := range gold {
			// DATE_OF_BIRTH is scored against the DATE_TIME spans: a birth date we
			// report is right when the data labels a date there.
			if !used[i] && (g.typ == f.Type || f.Type == pii.DateOfBirth && g.typ == "DATE_TIME") && match(g, f) {
				used[i], hit = true, true
				break
			}
		}
		if hit {
			r.tp++
		} else {
			r.fp++
			fmt.Fprintf(evalLog, "FP %s %q (%s)\n", f.Type, f.Value, t.title)
		}
	}
	for i, g := range gold {
		if !used[i] && (evalEntities[g.typ] || g.typ == pii.Secret) {
			t.row(g.typ).fn++
			fmt.Fprintf(evalLog, "FN %s %q (%s)\n", g.typ, g.value, t.title)
		}
	}
}

// wrappers turn a text into the JSON an agent sends or receives.
var wrappers = []func(text string) []byte{
	func(s string) []byte { // OpenAI chat request
		b, _ := json.Marshal(map[string]any{"model": "gpt-4o", "messages": []map[string]any{
			{"role": "system", "content": "You are a helpful support assistant."},
			{"role": "user", "content": s}}})
		return b
	},
	func(s string) []byte { // MCP tools/call
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "tools/call",
			"params": map[string]any{"name": "create_ticket", "arguments": map[string]any{"description": s, "priority": 2}}})
		return b
	},
	func(s string) []byte { // assistant tool call: arguments are JSON in a string
		args, _ := json.Marshal(map[string]any{"note": s})
		b, _ := json.Marshal(map[string]any{"model": "gpt-4o", "messages": []map[string]any{
			{"role": "assistant", "tool_calls": []map[string]any{{"id": "call_1", "type": "function",
				"function": map[string]any{"name": "save_note", "arguments": string(args)}}}}}})
		return b
	},
	func(s string) []byte { // MCP tool result
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "result": map[string]any{
			"content": []map[string]any{{"type": "text", "text": s}}, "isError": false}})
		return b
	},
}

// evalWrapped scores the wrapped documents by type and value (offsets differ once
// escaped); the wrappers themselves hold no personal data.
func evalWrapped(e *pii.Engine, title string, docs []doc) *evalTable {
	t := newTable(title)
	for i, d := range docs {
		t.docs++
		fs, err := e.ScanJSON(wrappers[i%len(wrappers)](d.text))
		if err != nil {
			panic(err) // json.Marshal output is valid JSON
		}
		score(t, d.spans, fs, func(g span, f vigil.Finding) bool {
			gv := d.text[g.start:g.end]
			return strings.Contains(gv, f.Value) && len(f.Value)*2 >= len(gv) || strings.Contains(f.Value, gv) && len(gv)*2 >= len(f.Value)
		})
	}
	return t
}

// npCovered are the Nosey Parker rules whose providers the engine covers.
var npCovered = map[string]string{
	"np.aws.1": "aws-access-key-id", "np.github.1": "github-pat", "np.github.2": "github-oauth-token",
	"np.github.3": "github-app-token", "np.github.4": "github-refresh-token", "np.github.7": "github-fine-grained-pat",
	"np.gitlab.1": "gitlab-runner-registration-token", "np.gitlab.2": "gitlab-pat", "np.gitlab.3": "gitlab-pipeline-trigger-token",
	"np.slack.2": "slack-bot-token", "np.slack.3": "slack-webhook", "np.slack.4": "slack-user-token",
	"np.slack.5": "slack-app-token", "np.slack.6": "slack-legacy-bot-token",
	"np.stripe.1": "stripe-secret-key", "np.stripe.2": "stripe-secret-key", "np.openai.1": "openai-api-key",
	"np.anthropic.1": "anthropic-api-key", "np.google.3": "google-oauth-client-secret",
	"np.google.4": "google-oauth-access-token", "np.google.5": "google-api-key",
	"np.huggingface.1": "huggingface-token", "np.pem.1": "private-key", "np.jwt.1": "jwt",
	"np.npm.1": "npm-token", "np.pypi.1": "pypi-token", "np.sendgrid.1": "sendgrid-api-key",
	"np.digitalocean.1": "digitalocean-token", "np.digitalocean.2": "digitalocean-token",
	"np.digitalocean.3": "digitalocean-token", "np.groq.1": "groq-api-key", "np.databricks.1": "databricks-token",
	"np.shopify.3": "shopify-token", "np.shopify.4": "shopify-token", "np.shopify.5": "shopify-token",
	"np.postman.1": "postman-api-key", "np.http.1": "basic-auth", "np.http.2": "bearer-token",
	"np.postgres.1": "url-credentials",
}

// npDecided are Nosey Parker examples whose label the engine disagrees with on
// purpose (docs/adr/0004-pii-engine.md), by a substring of the example. They still
// count as misses or false positives; the report says why.
var npDecided = []struct{ in, why string }{
	{"@[2001:db8::1234]", "a real credential: NP's pattern can't parse an IPv6 host"},
	{"xoxb-0000000000-0000000000000-xxxx", "a placeholder of zeros and x"},
	{`"aaaaaaaaaaaaaaaaaaaaaaa-"`, "a placeholder of one repeated letter"},
}

// norenDecided are the kinds of noren SECRET positives the engine leaves alone on
// purpose (docs/adr/0004-pii-engine.md), by a substring of the value.
var norenDecided = []struct{ in, what string }{
	{"EXAMPLE", "AWS's documentation key"},
	{"SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "the jwt.io sample token"},
	{"SG.", "SendGrid-like keys shorter than SendGrid's format"},
}

// norenMisses prints how many SECRET positives were missed, and how many of them
// by decision.
func norenMisses(e *pii.Engine, docs []doc, w io.Writer) {
	counts := make([]int, len(norenDecided))
	total, other := 0, 0
	for _, d := range docs {
		fs := e.ScanText([]byte(d.text))
	gold:
		for _, g := range d.spans {
			if g.typ != pii.Secret {
				continue
			}
			for _, f := range fs {
				if f.Start >= g.start && f.End <= g.end || g.start >= f.Start && g.end <= f.End {
					continue gold
				}
			}
			total++
			for i, k := range norenDecided {
				if strings.Contains(g.value, k.in) {
					counts[i]++
					continue gold
				}
			}
			other++
		}
	}
	var parts []string
	for i, k := range norenDecided {
		if counts[i] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[i], k.what))
		}
	}
	fmt.Fprintf(w, "noren SECRET misses: %d; by decision: %s; others: %d\n", total, strings.Join(parts, ", "), other)
}

func npNote(id, ex string) string {
	for _, d := range npDecided {
		if strings.Contains(ex, d.in) {
			return id + " (by decision: " + d.why + ")"
		}
	}
	return id
}

func evalNoseyParker(e *pii.Engine, dir string, w io.Writer) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil {
		return err
	}
	var covPos, covPosHit, covNeg, covNegFP, otherPos, otherPosHit, otherNeg, otherNegFP int
	var missed, flagged []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var rs struct {
			Rules []struct {
				ID       string   `yaml:"id"`
				Examples []string `yaml:"examples"`
				Negative []string `yaml:"negative_examples"`
			} `yaml:"rules"`
		}
		if err := yaml.Unmarshal(b, &rs); err != nil {
			return fmt.Errorf("couldn't parse %s: %w", f, err)
		}
		for _, r := range rs.Rules {
			_, cov := npCovered[r.ID]
			for _, ex := range r.Examples {
				hit := hasSecret(e.ScanText([]byte(ex)))
				if cov {
					covPos++
					if hit {
						covPosHit++
					} else {
						missed = append(missed, npNote(r.ID, ex))
						fmt.Fprintf(evalLog, "FN %s %q\n", r.ID, ex)
					}
				} else {
					otherPos++
					if hit {
						otherPosHit++
					}
				}
			}
			for _, ex := range r.Negative {
				// A rule's negatives are often other providers' real tokens, so
				// one counts as flagged when we report the same kind of secret.
				fp := hasRule(e.ScanText([]byte(ex)), npCovered[r.ID])
				if cov {
					covNeg++
					if fp {
						covNegFP++
						flagged = append(flagged, npNote(r.ID, ex))
						fmt.Fprintf(evalLog, "FP %s %q\n", r.ID, ex)
					}
				} else {
					otherNeg++
					if fp {
						otherNegFP++
					}
				}
			}
		}
	}
	fmt.Fprintf(w, "\nNosey Parker rule examples (SECRET; a positive is caught by any SECRET finding, a negative is flagged when we report that rule's kind)\n")
	fmt.Fprintf(w, "| rules | positives caught | negatives flagged |\n|---|---:|---:|\n")
	fmt.Fprintf(w, "| %d covered rules | %d / %d | %d / %d |\n", len(npCovered), covPosHit, covPos, covNegFP, covNeg)
	fmt.Fprintf(w, "| other rules (not claimed) | %d / %d | %d / %d |\n", otherPosHit, otherPos, otherNegFP, otherNeg)
	if len(missed) > 0 {
		fmt.Fprintf(w, "covered positives missed: %s\n", strings.Join(missed, "; "))
	}
	if len(flagged) > 0 {
		fmt.Fprintf(w, "covered negatives flagged: %s\n", strings.Join(flagged, "; "))
	}
	return nil
}

func hasRule(fs []vigil.Finding, rule string) bool {
	for _, f := range fs {
		if f.Type == pii.Secret && (rule == "" || f.Rule == rule) {
			return true
		}
	}
	return false
}

func hasSecret(fs []vigil.Finding) bool {
	for _, f := range fs {
		if f.Type == pii.Secret {
			return true
		}
	}
	return false
}

// evalHardNegatives generates identifiers that are not personal data and counts
// what the engine reports in them, by kind, as text and inside JSON.
func evalHardNegatives(e *pii.Engine, w io.Writer) {
	rng := rand.New(rand.NewPCG(42, 1))
	hex := func(n int) string {
		const h = "0123456789abcdef"
		b := make([]byte, n)
		for i := range b {
			b[i] = h[rng.IntN(16)]
		}
		return string(b)
	}
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		if b[0] == '0' {
			b[0] = '1'
		}
		return string(b)
	}
	kinds := []struct {
		name string
		gen  func() string
	}{
		{"order numbers", func() string {
			switch rng.IntN(4) {
			case 0:
				return "Your order #" + digits(8+rng.IntN(9)) + " has shipped."
			case 1:
				return "Invoice INV-" + digits(4) + "-" + digits(6) + " is due."
			case 2:
				return "order_id: " + digits(10+rng.IntN(7))
			default:
				return "Tracking number " + digits(12+rng.IntN(7)) + " (UPS)"
			}
		}},
		{"UUIDs", func() string {
			return "request " + hex(8) + "-" + hex(4) + "-4" + hex(3) + "-a" + hex(3) + "-" + hex(12)
		}},
		{"hashes", func() string {
			switch rng.IntN(3) {
			case 0:
				return "commit " + hex(40)
			case 1:
				return "sha256:" + hex(64)
			default:
				return "fixed in " + hex(7)
			}
		}},
		{"dates and times", func() string {
			y, m, d := 1990+rng.IntN(40), 1+rng.IntN(12), 1+rng.IntN(28)
			switch rng.IntN(4) {
			case 0:
				return fmt.Sprintf("on %04d-%02d-%02d at %02d:%02d:%02d", y, m, d, rng.IntN(24), rng.IntN(60), rng.IntN(60))
			case 1:
				return fmt.Sprintf("due %02d/%02d/%04d", d, m, y)
			case 2:
				return fmt.Sprintf("ts=%d", 1600000000+rng.IntN(200000000))
			default:
				return fmt.Sprintf("%02d.%02d.%04d", d, m, y)
			}
		}},
		{"version strings", func() string {
			switch rng.IntN(3) {
			case 0:
				return fmt.Sprintf("upgrade to v%d.%d.%d", rng.IntN(20), rng.IntN(50), rng.IntN(100))
			case 1:
				return fmt.Sprintf("version %d.%d.%d.%d", rng.IntN(10), rng.IntN(20), rng.IntN(100), rng.IntN(9999))
			default:
				return fmt.Sprintf("go%d.%d.%d linux/amd64", 1, rng.IntN(30), rng.IntN(10))
			}
		}},
	}
	fmt.Fprintf(w, "\nGenerated hard negatives (1000 of each kind; findings are false positives)\n")
	fmt.Fprintf(w, "| kind | text findings | JSON findings |\n|---|---:|---:|\n")
	for _, k := range kinds {
		text, js := 0, 0
		examples := map[string]bool{}
		for range 1000 {
			s := k.gen()
			fs := e.ScanText([]byte(s))
			text += len(fs)
			for _, f := range fs {
				if len(examples) < 3 {
					examples[f.Type+" in "+s] = true
				}
			}
			jf, _ := e.ScanJSON(wrappers[0](s))
			js += len(jf)
		}
		fmt.Fprintf(w, "| %s | %d | %d |\n", k.name, text, js)
		for ex := range examples {
			fmt.Fprintf(w, "  e.g. %s\n", ex)
		}
	}
}
