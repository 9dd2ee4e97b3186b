package aims

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/ledger"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// BundleFormat is the first line of an evidence bundle's manifest.
const BundleFormat = "vigil-evidence/1"

// Bundle member names.
const (
	ManifestFile    = "MANIFEST"
	ReportFile      = "report.html"
	CheckpointsFile = "ledger/checkpoints.json"
	ConsistencyFile = "ledger/consistency.json"
	EntriesFile     = "ledger/entries.jsonl"
	BodiesFile      = "ledger/bodies.jsonl"
	PublicKeyFile   = "keys/ledger.pub"
)

// DefaultCheckpointEvery thins the period's checkpoints: the ledger publishes one a
// second while it grows, and consistency is transitive, so one per hour (plus the
// first and last) proves the same chain at a fraction of the size.
const DefaultCheckpointEvery = time.Hour

// BundleOptions configure ExportBundle.
type BundleOptions struct {
	// From and To bound the period: [From, To).
	From, To time.Time
	// Origin is the ledger's origin; Signer its checkpoint key, which also signs the
	// manifest; PublicKey the verifier key in note format, shipped in the bundle.
	Origin    string
	Signer    note.Signer
	PublicKey string
	Sources   Sources
	// WithBodies includes the period's entry bodies (prompts, arguments: personal
	// data); OpenBody decrypts a sealed body into its salt and content.
	WithBodies bool
	OpenBody   func(eventID string, sealed []byte) (salt, body []byte, err error)
	// CheckpointEvery thins checkpoints; default DefaultCheckpointEvery.
	CheckpointEvery time.Duration
}

// BundleSummary says what an export wrote.
type BundleSummary struct {
	Files       int   `json:"files"`
	Entries     int   `json:"entries"`
	Checkpoints int   `json:"checkpoints"`
	Bodies      int   `json:"bodies"`
	Bytes       int64 `json:"bytes"`
}

// CheckpointFile is one checkpoint in the bundle.
type CheckpointFile struct {
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"created_at"`
	// Note is the signed checkpoint exactly as published.
	Note string `json:"note"`
}

// ConsistencyProof proves checkpoint Old is a prefix of checkpoint New.
type ConsistencyProof struct {
	Old   int64    `json:"old"`
	New   int64    `json:"new"`
	Proof []string `json:"proof"`
}

// EntryLine is one line of ledger/entries.jsonl: an entry with its inclusion proof in
// the checkpoint of size Checkpoint.
type EntryLine struct {
	Index      int64    `json:"index"`
	Data       string   `json:"data"`
	Checkpoint int64    `json:"checkpoint"`
	Proof      []string `json:"proof"`
}

// BodyLine is one line of ledger/bodies.jsonl.
type BodyLine struct {
	Index   int64  `json:"index"`
	EventID string `json:"event_id"`
	Salt    []byte `json:"salt"`
	Body    []byte `json:"body"`
}

type member struct {
	name string
	data []byte
}

// ExportBundle writes the evidence bundle for the period to w as a .tar.gz: the SoA
// (JSON and CSV), every record kind, health-check and verification history, metrics,
// the review input pack, the ledger's checkpoints in the period with consistency
// proofs between consecutive ones, the period's entries with inclusion proofs (bodies
// only when asked), the public key, an HTML report, and a MANIFEST of SHA-256 hashes
// signed with the ledger key as a note.
func (s *Service) ExportBundle(ctx context.Context, w io.Writer, o BundleOptions) (*BundleSummary, error) {
	if o.Signer == nil || o.PublicKey == "" || o.Sources.Ledger == nil {
		return nil, errors.New("evidence export needs the ledger, its signing key and its public key")
	}
	if !o.From.Before(o.To) {
		return nil, fmt.Errorf("the period is empty: from %s is not before to %s", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	var members []member
	add := func(name string, v any) error {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("couldn't encode %s: %w", name, err)
		}
		members = append(members, member{name, append(b, '\n')})
		return nil
	}

	soa, err := s.SoA(ctx, o.Sources, o.From, o.To)
	if err != nil {
		return nil, fmt.Errorf("couldn't compute the SoA: %w", err)
	}
	csvData, err := soa.CSV()
	if err != nil {
		return nil, err
	}
	data, err := s.bundleRecords(ctx, o)
	if err != nil {
		return nil, err
	}
	data.SoA = soa
	for _, m := range []struct {
		name string
		v    any
	}{
		{"soa.json", soa}, {"inventory.json", data.Inventory}, {"policies.json", data.Policies},
		{"risks.json", data.Risks}, {"impact-assessments.json", data.Impacts}, {"competence.json", data.Competences},
		{"documents.json", data.Documents}, {"communications.json", data.Communications}, {"applicability.json", data.Statements},
		{"audits.json", data.Audits}, {"reviews.json", data.Reviews}, {"incidents.json", data.Incidents},
		{"health-history.json", data.Health}, {"verifications.json", data.Verifications}, {"metrics.json", data.Metrics},
		{"review-inputs.json", data.Inputs},
	} {
		if err := add(m.name, m.v); err != nil {
			return nil, err
		}
	}
	members = append(members, member{"soa.csv", csvData})

	cps, cons, entries, bodies, err := s.ledgerEvidence(ctx, o)
	if err != nil {
		return nil, err
	}
	data.Checkpoints, data.Entries = cps, len(entries)
	if err := add(CheckpointsFile, cps); err != nil {
		return nil, err
	}
	if err := add(ConsistencyFile, cons); err != nil {
		return nil, err
	}
	members = append(members, member{EntriesFile, jsonLines(entries)})
	if o.WithBodies {
		members = append(members, member{BodiesFile, jsonLines(bodies)})
	}
	members = append(members, member{PublicKeyFile, []byte(strings.TrimSpace(o.PublicKey) + "\n")})

	data.Origin, data.From, data.To, data.Generated, data.PublicKey = o.Origin, o.From, o.To, s.now(), strings.TrimSpace(o.PublicKey)
	data.WithBodies = o.WithBodies
	html, err := RenderReport(data)
	if err != nil {
		return nil, err
	}
	members = append(members, member{ReportFile, html})

	created := s.now()
	manifest, err := signManifest(o, created, members)
	if err != nil {
		return nil, err
	}
	cw := &countWriter{w: w}
	if err := writeArchive(cw, created, append([]member{{ManifestFile, manifest}}, members...)); err != nil {
		return nil, err
	}
	return &BundleSummary{Files: len(members) + 1, Entries: len(entries), Checkpoints: len(cps), Bodies: len(bodies), Bytes: cw.n}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func jsonLines[T any](vs []T) []byte {
	var buf bytes.Buffer
	for _, v := range vs {
		b, _ := json.Marshal(v)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// ReportData is everything the bundle (and its HTML report) holds.
type ReportData struct {
	Origin         string
	PublicKey      string
	From, To       time.Time
	Generated      time.Time
	WithBodies     bool
	SoA            *SoA
	Inventory      bundleInventory
	Policies       []PolicyStatus
	Risks          []RiskView
	Impacts        []Record
	Competences    []Record
	Documents      []Record
	Communications []Record
	Statements     []Record
	Audits         []Record
	Reviews        []Record
	Incidents      []IncidentStatus
	Health         []HealthResult
	Verifications  []Verification
	Metrics        map[string]float64
	Inputs         *InputPack
	Checkpoints    []CheckpointFile
	Entries        int
}

type bundleInventory struct {
	Systems    []InventoryEntry `json:"systems"`
	Unassigned []Flag           `json:"unattributed_flags"`
}

// RiskView is a risk with its scores.
type RiskView struct {
	*Risk
	Inherent      int    `json:"inherent_score"`
	Residual      int    `json:"residual_score"`
	InherentLevel string `json:"inherent_level"`
	ResidualLevel string `json:"residual_level"`
}

// RiskLevel places a score on the scale: the top third of scale² is high, the middle
// third medium, the rest low.
func RiskLevel(score, scale int) string {
	top := scale * scale
	switch {
	case score*3 > top*2:
		return "high"
	case score*3 > top:
		return "medium"
	}
	return "low"
}

// Risks returns every risk with its inherent and residual scores and levels.
func (s *Service) Risks(ctx context.Context) ([]RiskView, error) {
	list, err := s.List(ctx, KindRisk)
	if err != nil {
		return nil, err
	}
	scale := s.opts().RiskScale
	out := make([]RiskView, len(list))
	for i, r := range list {
		rk := r.(*Risk)
		in, res := rk.Likelihood*rk.Impact, rk.ResidualLikelihood*rk.ResidualImpact
		out[i] = RiskView{Risk: rk, Inherent: in, Residual: res, InherentLevel: RiskLevel(in, scale), ResidualLevel: RiskLevel(res, scale)}
	}
	return out, nil
}

func (s *Service) bundleRecords(ctx context.Context, o BundleOptions) (*ReportData, error) {
	d := &ReportData{}
	var err error
	if d.Inventory.Systems, d.Inventory.Unassigned, err = s.Inventory(ctx); err != nil {
		return nil, err
	}
	if d.Policies, err = s.Policies(ctx); err != nil {
		return nil, err
	}
	if d.Risks, err = s.Risks(ctx); err != nil {
		return nil, err
	}
	for kind, dst := range map[string]*[]Record{KindImpact: &d.Impacts, KindCompetence: &d.Competences, KindDocument: &d.Documents,
		KindCommunication: &d.Communications, KindApplicability: &d.Statements, KindAudit: &d.Audits, KindReview: &d.Reviews} {
		if *dst, err = s.List(ctx, kind); err != nil {
			return nil, err
		}
		if *dst == nil {
			*dst = []Record{}
		}
	}
	if d.Incidents, err = s.Incidents(ctx); err != nil {
		return nil, err
	}
	if d.Health, err = s.Store.HealthHistory(ctx, o.From, o.To); err != nil {
		return nil, err
	}
	if d.Verifications, err = s.Store.Verifications(ctx, o.From, o.To); err != nil {
		return nil, err
	}
	if d.Inputs, err = s.ReviewInputs(ctx, o.Sources, o.From, o.To); err != nil {
		return nil, err
	}
	// The period's own figures, from the ledger and health history; the live
	// registry's counters (since process start) are added when there is one.
	d.Metrics = PeriodMetrics(d.Inputs.Activity, d.Health)
	if o.Sources.Metrics != nil {
		live, err := o.Sources.Metrics.Metrics(ctx)
		if err != nil {
			return nil, fmt.Errorf("couldn't read metrics: %w", err)
		}
		for k, v := range live {
			d.Metrics["live:"+k] = v
		}
	}
	return d, nil
}

func hexes(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hex.EncodeToString(h[:])
	}
	return out
}

func unhexes(ss []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(ss))
	for i, s := range ss {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d is not 32 bytes of hex", i)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// ledgerEvidence picks the period's checkpoints (the last one before the period, one
// per CheckpointEvery within it, the last within it and the first after it), proves
// each consistent with the one before, and proves every entry stamped within the
// period included in the last checkpoint picked.
func (s *Service) ledgerEvidence(ctx context.Context, o BundleOptions) ([]CheckpointFile, []ConsistencyProof, []EntryLine, []BodyLine, error) {
	r := o.Sources.Ledger
	all, err := r.Checkpoints(ctx, 0, 1<<62)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("couldn't read checkpoints: %w", err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Size < all[j].Size })
	var picked []ledger.Checkpoint
	var lastBucket int64 = -1
	var before, after *ledger.Checkpoint
	var inPeriod []ledger.Checkpoint
	for i := range all {
		at := time.UnixMicro(all[i].CreatedAt)
		switch {
		case at.Before(o.From):
			before = &all[i]
		case at.Before(o.To):
			inPeriod = append(inPeriod, all[i])
		case after == nil:
			after = &all[i]
		}
	}
	if before != nil {
		picked = append(picked, *before)
	}
	for i, cp := range inPeriod {
		bucket := time.UnixMicro(cp.CreatedAt).Sub(o.From).Nanoseconds() / o.CheckpointEvery.Nanoseconds()
		if bucket != lastBucket || i == len(inPeriod)-1 {
			picked = append(picked, cp)
			lastBucket = bucket
		}
	}
	if after != nil {
		picked = append(picked, *after)
	}
	if len(picked) == 0 {
		return []CheckpointFile{}, []ConsistencyProof{}, nil, nil, nil
	}
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return r.ReadHashes(ctx, idx) })
	var cps []CheckpointFile
	var cons []ConsistencyProof
	parsed := make([]ledger.ParsedCheckpoint, len(picked))
	for i, cp := range picked {
		cps = append(cps, CheckpointFile{Size: cp.Size, CreatedAt: time.UnixMicro(cp.CreatedAt).UTC(), Note: string(cp.Note)})
		pc, err := parseCheckpointNote(cp.Note, o.Origin, o.PublicKey)
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("checkpoint %d in the store does not verify: %w", cp.Size, err)
		}
		parsed[i] = pc
		if i > 0 && parsed[i-1].Size < pc.Size && parsed[i-1].Size > 0 {
			p, err := tlog.ProveTree(pc.Size, parsed[i-1].Size, hr)
			if err != nil {
				return nil, nil, nil, nil, fmt.Errorf("couldn't prove checkpoint %d consistent with %d: %w", pc.Size, parsed[i-1].Size, err)
			}
			cons = append(cons, ConsistencyProof{Old: parsed[i-1].Size, New: pc.Size, Proof: hexes(p)})
		}
	}
	end := parsed[len(parsed)-1]
	start := int64(0)
	if before != nil {
		start = before.Size
	}
	var entries []EntryLine
	var ids = map[int64]string{}
	err = scan(ctx, r, start, end.Size, func(index int64, env ledger.Envelope) error {
		at, _ := time.Parse(time.RFC3339Nano, env.Time)
		if at.Before(o.From) || !at.Before(o.To) {
			return nil
		}
		es, err := r.Entries(ctx, index, index+1)
		if err != nil || len(es) != 1 {
			return fmt.Errorf("couldn't reread entry %d: %w", index, err)
		}
		p, err := tlog.ProveRecord(end.Size, index, hr)
		if err != nil {
			return fmt.Errorf("couldn't prove entry %d in checkpoint %d: %w", index, end.Size, err)
		}
		entries = append(entries, EntryLine{Index: index, Data: string(es[0].Data), Checkpoint: end.Size, Proof: hexes(p)})
		ids[index] = env.ID
		return nil
	})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var bodies []BodyLine
	if o.WithBodies && len(entries) > 0 {
		if o.OpenBody == nil {
			return nil, nil, nil, nil, errors.New("bodies were asked for but there is no key to open them")
		}
		bs, err := r.Bodies(ctx, entries[0].Index, entries[len(entries)-1].Index+1)
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("couldn't read bodies: %w", err)
		}
		for _, b := range bs {
			if _, ok := ids[b.Index]; !ok {
				continue
			}
			salt, body, err := o.OpenBody(b.EventID, b.Sealed)
			if err != nil {
				return nil, nil, nil, nil, fmt.Errorf("couldn't open the body of entry %d: %w", b.Index, err)
			}
			bodies = append(bodies, BodyLine{Index: b.Index, EventID: b.EventID, Salt: salt, Body: body})
		}
	}
	if cps == nil {
		cps = []CheckpointFile{}
	}
	if cons == nil {
		cons = []ConsistencyProof{}
	}
	return cps, cons, entries, bodies, nil
}

func parseCheckpointNote(noteText []byte, origin, publicKey string) (ledger.ParsedCheckpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(publicKey))
	if err != nil {
		return ledger.ParsedCheckpoint{}, fmt.Errorf("the public key is malformed: %w", err)
	}
	return ledger.ParseCheckpoint(noteText, origin, v)
}

// signManifest lists every member's SHA-256 and size in a note signed by the ledger
// key.
func signManifest(o BundleOptions, created time.Time, members []member) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\norigin %s\nperiod %s %s\ncreated %s\n", BundleFormat, o.Origin,
		o.From.UTC().Format(time.RFC3339), o.To.UTC().Format(time.RFC3339), created.UTC().Format(time.RFC3339))
	sorted := append([]member(nil), members...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, m := range sorted {
		sum := sha256.Sum256(m.data)
		fmt.Fprintf(&b, "%s %d %s\n", hex.EncodeToString(sum[:]), len(m.data), m.name)
	}
	signed, err := note.Sign(&note.Note{Text: b.String()}, o.Signer)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign the manifest: %w", err)
	}
	return signed, nil
}

// MaxBundleMember caps one member when verifying, so a crafted archive cannot exhaust
// memory.
const MaxBundleMember = 1 << 30

// VerifyOptions pin what the verifier trusts.
type VerifyOptions struct {
	// PublicKey is the ledger's verifier key as the auditor holds it. Empty means the
	// key shipped in the bundle, which proves integrity but not who signed: the report
	// says so.
	PublicKey string
}

// Check is one thing verification checked.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// BundleReport is what VerifyBundle found. Failures name what failed.
type BundleReport struct {
	Origin    string    `json:"origin"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Created   time.Time `json:"created"`
	KeyPinned bool      `json:"key_pinned"`
	Files     int       `json:"files"`
	Entries   int       `json:"entries"`
	Bodies    int       `json:"bodies"`
	// Checkpoints verified, and the sizes of the first and last.
	Checkpoints int      `json:"checkpoints"`
	FirstSize   int64    `json:"first_size"`
	LastSize    int64    `json:"last_size"`
	Checks      []Check  `json:"checks"`
	Failures    []string `json:"failures,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
}

// OK reports whether everything verified.
func (r *BundleReport) OK() bool { return len(r.Failures) == 0 }

func (r *BundleReport) check(name string, ok bool, format string, args ...any) {
	detail := fmt.Sprintf(format, args...)
	r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: detail})
	if !ok {
		r.Failures = append(r.Failures, name+": "+detail)
	}
}

// VerifyBundle checks an evidence bundle offline: the manifest signature verifies
// with the ledger key; every member is listed and matches its hash and size, and
// nothing listed is missing; every checkpoint verifies and each is consistent with
// the one before; every entry is canonical and proven included in its checkpoint;
// every body matches its entry's digest; every JSON member parses; and every other
// byte of the archive — gzip header, one gzip member and nothing after it, every tar
// header, padding, the end-of-archive marker, the members' order, the compressed
// encoding — is exactly what ExportBundle writes (archive.go). Failures go in the
// report; it returns an error only when the bundle cannot be read at all.
func VerifyBundle(archive io.Reader, o VerifyOptions) (*BundleReport, error) {
	rep := &BundleReport{}
	arch := readArchive(archive, rep)
	if arch == nil {
		return rep, nil
	}
	files := map[string][]byte{}
	var order []string
	for _, m := range arch.members {
		files[m.name] = m.data
		order = append(order, m.name)
	}
	// The headers carry the manifest's creation time; if the manifest has none, the
	// first header's time stands in, and the manifest fails below.
	var created time.Time
	if len(arch.members) > 0 {
		created = arch.members[0].hdr.ModTime
	}
	if t, ok := manifestCreated(files[ManifestFile]); ok {
		created = t
	}
	checkFraming(arch, created, rep)

	manifest, ok := files[ManifestFile]
	if !ok {
		rep.check("manifest", false, "the bundle has no %s", ManifestFile)
		return rep, nil
	}
	key := strings.TrimSpace(o.PublicKey)
	rep.KeyPinned = key != ""
	if key == "" {
		key = strings.TrimSpace(string(files[PublicKeyFile]))
		rep.Warnings = append(rep.Warnings, "the manifest and checkpoints were checked against the public key shipped in the bundle; pin the ledger's key with --key to prove who signed them")
	}
	verifier, err := note.NewVerifier(key)
	if err != nil {
		rep.check("manifest", false, "the ledger public key is malformed: %v", err)
		return rep, nil
	}
	n, err := note.Open(manifest, note.VerifierList(verifier))
	if err != nil {
		rep.check("manifest", false, "the signature does not verify with key %s: %v", verifier.Name(), err)
		return rep, nil
	}
	listed, err := parseManifest(n.Text, rep)
	if err != nil {
		rep.check("manifest", false, "%v", err)
		return rep, nil
	}
	rep.check("manifest", true, "signed by %s over %d files", verifier.Name(), len(listed))
	if rep.Origin != verifier.Name() {
		rep.check("manifest", false, "the manifest names origin %q but was signed by key %q", rep.Origin, verifier.Name())
	}

	names := make([]string, 0, len(listed))
	for name := range listed {
		names = append(names, name)
	}
	sort.Strings(names)
	bad := 0
	for _, name := range names {
		want := listed[name]
		got, ok := files[name]
		switch {
		case !ok:
			rep.check("file "+name, false, "listed in the manifest but missing from the bundle")
			bad++
		case int64(len(got)) != want.size:
			rep.check("file "+name, false, "is %d bytes; the manifest says %d", len(got), want.size)
			bad++
		default:
			sum := sha256.Sum256(got)
			if hex.EncodeToString(sum[:]) != want.sha {
				rep.check("file "+name, false, "SHA-256 %x does not match the manifest's %s: it was changed", sum, want.sha)
				bad++
			}
		}
	}
	for _, name := range order {
		if _, ok := listed[name]; !ok && name != ManifestFile {
			rep.check("file "+name, false, "is in the bundle but not in the signed manifest")
			bad++
		}
	}
	rep.Files = len(listed)
	if bad == 0 {
		rep.check("files", true, "all %d files match their signed SHA-256 hashes", len(listed))
	}
	for _, name := range names {
		if strings.HasSuffix(name, ".json") && files[name] != nil && !json.Valid(files[name]) {
			rep.check("file "+name, false, "is not valid JSON")
		}
	}
	verifyLedgerMembers(files, rep, verifier)
	if rep.OK() {
		// Only now: a changed file or header makes the re-encoding differ as well.
		checkEncoding(arch, created, rep)
	}
	return rep, nil
}

type listedFile struct {
	sha  string
	size int64
}

func parseManifest(text string, rep *BundleReport) (map[string]listedFile, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 4 || lines[0] != BundleFormat {
		return nil, fmt.Errorf("not a %s manifest", BundleFormat)
	}
	origin, ok := strings.CutPrefix(lines[1], "origin ")
	if !ok {
		return nil, errors.New("line 2 is not the origin")
	}
	rep.Origin = origin
	period, ok := strings.CutPrefix(lines[2], "period ")
	from, to, ok2 := strings.Cut(period, " ")
	if !ok || !ok2 {
		return nil, errors.New("line 3 is not the period")
	}
	var err error
	if rep.From, err = time.Parse(time.RFC3339, from); err != nil {
		return nil, fmt.Errorf("period start: %w", err)
	}
	if rep.To, err = time.Parse(time.RFC3339, to); err != nil {
		return nil, fmt.Errorf("period end: %w", err)
	}
	created, ok := strings.CutPrefix(lines[3], "created ")
	if !ok {
		return nil, errors.New("line 4 is not the creation time")
	}
	if rep.Created, err = time.Parse(time.RFC3339, created); err != nil {
		return nil, fmt.Errorf("creation time: %w", err)
	}
	out := map[string]listedFile{}
	for i, l := range lines[4:] {
		f := strings.SplitN(l, " ", 3)
		if len(f) != 3 || len(f[0]) != 64 {
			return nil, fmt.Errorf("line %d is not \"sha256 size path\"", i+5)
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: size: %w", i+5, err)
		}
		if _, dup := out[f[2]]; dup || f[2] == ManifestFile {
			return nil, fmt.Errorf("line %d lists %s twice (or the manifest itself)", i+5, f[2])
		}
		out[f[2]] = listedFile{sha: f[0], size: size}
	}
	return out, nil
}

// verifyLedgerMembers checks the checkpoints, consistency proofs, inclusion proofs
// and bodies. It reads the members even when their hashes failed, so a report names
// every problem a change caused.
func verifyLedgerMembers(files map[string][]byte, rep *BundleReport, v note.Verifier) {
	var cps []CheckpointFile
	if err := json.Unmarshal(files[CheckpointsFile], &cps); err != nil {
		rep.check("checkpoints", false, "%s is unreadable: %v", CheckpointsFile, err)
		return
	}
	parsed := map[int64]ledger.ParsedCheckpoint{}
	var prev *ledger.ParsedCheckpoint
	var cons []ConsistencyProof
	if err := json.Unmarshal(files[ConsistencyFile], &cons); err != nil {
		rep.check("consistency", false, "%s is unreadable: %v", ConsistencyFile, err)
		return
	}
	proofs := map[[2]int64][]string{}
	for _, c := range cons {
		proofs[[2]int64{c.Old, c.New}] = c.Proof
	}
	okCP, okCons := true, true
	for i, cf := range cps {
		pc, err := ledger.ParseCheckpoint([]byte(cf.Note), rep.Origin, v)
		if err != nil {
			rep.check(fmt.Sprintf("checkpoint %d", cf.Size), false, "does not verify: %v", err)
			okCP = false
			continue
		}
		if pc.Size != cf.Size {
			rep.check(fmt.Sprintf("checkpoint %d", cf.Size), false, "the signed note says size %d", pc.Size)
			okCP = false
		}
		parsed[pc.Size] = pc
		if prev != nil {
			switch {
			case pc.Size < prev.Size:
				rep.check(fmt.Sprintf("checkpoint %d", pc.Size), false, "comes after checkpoint %d but is smaller: the log is append-only", prev.Size)
				okCons = false
			case pc.Size == prev.Size:
				if pc.Root != prev.Root {
					rep.check(fmt.Sprintf("checkpoint %d", pc.Size), false, "two checkpoints of the same size with different roots: a fork")
					okCons = false
				}
			case prev.Size > 0:
				p, ok := proofs[[2]int64{prev.Size, pc.Size}]
				hs, err := unhexes(p)
				if !ok || err != nil {
					rep.check(fmt.Sprintf("consistency %d→%d", prev.Size, pc.Size), false, "no readable consistency proof")
					okCons = false
				} else if err := tlog.CheckTree(hs, pc.Size, pc.Root, prev.Size, prev.Root); err != nil {
					rep.check(fmt.Sprintf("consistency %d→%d", prev.Size, pc.Size), false, "the proof does not verify: %v", err)
					okCons = false
				}
			}
		}
		if i == 0 {
			rep.FirstSize = pc.Size
		}
		rep.LastSize = pc.Size
		p := pc
		prev = &p
	}
	rep.Checkpoints = len(parsed)
	if okCP && len(parsed) == 1 {
		rep.check("checkpoints", true, "1 signed checkpoint verifies (size %d)", rep.FirstSize)
	} else if okCP {
		rep.check("checkpoints", true, "%d signed checkpoints verify (sizes %d to %d)", len(parsed), rep.FirstSize, rep.LastSize)
	}
	if okCons && len(parsed) > 1 {
		rep.check("consistency", true, "each checkpoint is consistent with the one before: the ledger only grew between sizes %d and %d", rep.FirstSize, rep.LastSize)
	}

	digests := map[int64]*ledger.BodyRef{}
	okEntries := true
	sc := bufio.NewScanner(bytes.NewReader(files[EntriesFile]))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	line := 0
	for sc.Scan() {
		line++
		var el EntryLine
		if err := json.Unmarshal(sc.Bytes(), &el); err != nil {
			rep.check(fmt.Sprintf("entry line %d", line), false, "unreadable: %v", err)
			okEntries = false
			continue
		}
		name := fmt.Sprintf("entry %d", el.Index)
		env, err := ledger.ParseEnvelope([]byte(el.Data))
		if err != nil {
			rep.check(name, false, "%v", err)
			okEntries = false
			continue
		}
		cp, ok := parsed[el.Checkpoint]
		if !ok || el.Index >= cp.Size || el.Index < 0 {
			rep.check(name, false, "is not covered by a verified checkpoint (claims %d)", el.Checkpoint)
			okEntries = false
			continue
		}
		hs, err := unhexes(el.Proof)
		if err == nil {
			err = tlog.CheckRecord(hs, cp.Size, cp.Root, el.Index, tlog.RecordHash([]byte(el.Data)))
		}
		if err != nil {
			rep.check(name, false, "is not proven included in checkpoint %d: %v", cp.Size, err)
			okEntries = false
			continue
		}
		digests[el.Index] = env.Body
		rep.Entries++
	}
	if err := sc.Err(); err != nil {
		rep.check("entries", false, "%s is unreadable: %v", EntriesFile, err)
		okEntries = false
	}
	if okEntries {
		rep.check("entries", true, "%d entries are proven included in checkpoint %d", rep.Entries, rep.LastSize)
	}

	if b, ok := files[BodiesFile]; ok {
		okBodies := true
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<28)
		for sc.Scan() {
			var bl BodyLine
			if err := json.Unmarshal(sc.Bytes(), &bl); err != nil {
				rep.check("bodies", false, "a line is unreadable: %v", err)
				okBodies = false
				continue
			}
			ref := digests[bl.Index]
			if ref == nil || ledger.BodyDigest(bl.Salt, bl.Body) != ref.Digest || len(bl.Body) != ref.Len {
				rep.check(fmt.Sprintf("body %d", bl.Index), false, "does not match the digest in its entry")
				okBodies = false
				continue
			}
			rep.Bodies++
		}
		if okBodies {
			rep.check("bodies", true, "%d bodies match the digests committed in their entries", rep.Bodies)
		}
	}
}

// Proves is the plain-language account of what a passing verification proves.
func (r *BundleReport) Proves() []string {
	key := "the ledger key shipped in the bundle (not pinned: this proves integrity, not authorship)"
	if r.KeyPinned {
		key = "the ledger key you pinned"
	}
	out := []string{
		fmt.Sprintf("Every one of the %d files is exactly as it was when the manifest was signed at %s with %s (origin %s).", r.Files, r.Created.Format(time.RFC3339), key, r.Origin),
		"Every other byte of the archive — gzip header and trailer, tar headers, padding, compressed encoding — is exactly what vigil evidence export writes for these files, and nothing follows it.",
		checkpointsProof(r),
		fmt.Sprintf("The %d entries of the period %s to %s are in that ledger, at the indices shown, exactly as they appear here.", r.Entries, r.From.Format(time.RFC3339), r.To.Format(time.RFC3339)),
	}
	if r.Bodies > 0 {
		out = append(out, fmt.Sprintf("The %d bodies included are the ones the entries committed to.", r.Bodies))
	}
	out = append(out, "It does not prove that the management-system records are complete or true: they are what the deployment held when the bundle was made, signed so they cannot be changed afterwards.")
	return out
}

// checkpointsProof says what the bundle's checkpoints prove, in the words that fit
// how many there are.
func checkpointsProof(r *BundleReport) string {
	switch r.Checkpoints {
	case 0:
		return "No checkpoint was published by the end of the period, so no entry of it is proven to be in the ledger."
	case 1:
		return fmt.Sprintf("The one checkpoint (size %d) was signed by the ledger; every entry of the period is proven to be among the first %d entries.", r.FirstSize, r.FirstSize)
	}
	return fmt.Sprintf("The %d checkpoints were signed by the ledger and each extends the one before: the ledger only grew between sizes %d and %d; nothing in it was changed, removed or reordered.", r.Checkpoints, r.FirstSize, r.LastSize)
}
