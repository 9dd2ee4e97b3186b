package aims_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-gateway/vigil/internal/aims"
	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// ledgerTypes counts the ledger's events by type.
func ledgerTypes(t *testing.T, e *env) map[string]int {
	t.Helper()
	ctx := context.Background()
	size, _, err := e.db.Ledger().TreeState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	es, err := e.db.Ledger().Entries(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, x := range es {
		env, err := ledger.ParseEnvelope(x.Data)
		if err != nil {
			t.Fatal(err)
		}
		out[env.Type]++
	}
	return out
}

func TestImportDemoIsIdempotentAndRecorded(t *testing.T) {
	e := newEnv(t, aims.Options{})
	ctx := context.Background()
	res := e.importDemo(t)
	if res.Created == 0 || res.Updated != 0 {
		t.Fatalf("first import = %+v, want only creations", res)
	}
	types := ledgerTypes(t, e)
	if types[aims.EventRecordChanged] < res.Created || types[aims.EventPolicySignoff] != 2 || types[vigil.EventSystemCreated] != 2 {
		t.Errorf("ledger after import = %v; want a record event per record, 2 sign-offs, 2 systems", types)
	}
	again, err := e.svc.Import(ctx, admin, demo(t))
	if err != nil {
		t.Fatal(err)
	}
	if again.Created != 0 || again.Updated != 0 || again.Same != len(again.Results) {
		t.Errorf("second import = %+v, want everything unchanged", again)
	}
	if got := ledgerTypes(t, e); got[aims.EventRecordChanged] != types[aims.EventRecordChanged] || got[aims.EventPolicySignoff] != 2 {
		t.Errorf("re-import wrote to the ledger: %v, was %v", got, types)
	}
	// The system record is the inventory's record: its fields come from there.
	sys, err := e.inv.LookupSystem(ctx, "credit-scoring")
	if err != nil || sys.Owner != "Retail Credit Risk (Dr. Samuel Okafor)" || !sys.Complete() {
		t.Fatalf("inventory system = %+v, %v", sys, err)
	}
}

func TestImportRefusesEverythingWhenOneRecordIsBad(t *testing.T) {
	e := newEnv(t, aims.Options{})
	ps := demo(t)
	bad, err := aims.ParseRecords("bad.yaml", []byte("kind: risk\nid: R-X\nsystem: nowhere\ntitle: t\nowner: o\nlikelihood: 9\nimpact: 1\nresidual_likelihood: 1\nresidual_impact: 1\noption: accept\nstatus: open\nassessed_at: 2026-01-01\nnext_review: 2027-01-01\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Import(context.Background(), admin, append(ps, bad...))
	if err == nil {
		t.Fatal("import with a bad record succeeded")
	}
	for _, want := range []string{"bad.yaml:6", `risk "R-X"`, "likelihood: 9 is outside the scale 1..5", `no AI system named "nowhere"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if list, _ := e.svc.List(context.Background(), aims.KindRisk); len(list) != 0 {
		t.Errorf("%d risks stored despite the failed import", len(list))
	}
}

func TestPolicyVersionsAndSignoffs(t *testing.T) {
	e := newEnv(t, aims.Options{})
	ctx := context.Background()
	p := &aims.Policy{ID: "ai", Title: "AI policy", Version: "1", Owner: "cro", Text: "one\n", NextReview: aims.DateOf(testNow.AddDate(1, 0, 0))}
	if _, err := e.svc.Put(ctx, admin, p); err != nil {
		t.Fatal(err)
	}
	p2 := *p
	p2.Text = "two\n"
	if _, err := e.svc.Put(ctx, admin, &p2); err == nil || !strings.Contains(err.Error(), "give the new text a new version") {
		t.Fatalf("changed text under the same version: %v", err)
	}
	p2.Version = "2"
	p2.Signoff = &aims.SignoffRequest{Leader: "Maria Keller", Title: "CEO"}
	res, err := e.svc.Put(ctx, admin, &p2)
	if err != nil || res.Signed == nil {
		t.Fatalf("put v2 with sign-off = %+v, %v", res, err)
	}
	if res.Signed.Hash != aims.PolicyHash("two\n") || res.Signed.Leader != "Maria Keller" {
		t.Errorf("sign-off = %+v", res.Signed)
	}
	// The sign-off is a ledger event over the hash.
	es, err := e.db.Ledger().Entries(ctx, res.Signed.Index, res.Signed.Index+1)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := ledger.ParseEnvelope(es[0].Data)
	if env.Type != aims.EventPolicySignoff || env.Attrs["hash"] != aims.PolicyHash("two\n") || env.Attrs["leader"] != "Maria Keller" {
		t.Errorf("ledger entry %d = %+v", res.Signed.Index, env)
	}
	vs, err := e.svc.PolicyVersions(ctx, "ai")
	if err != nil || len(vs) != 2 || vs[0].Text != "one\n" {
		t.Errorf("versions = %+v, %v", vs, err)
	}
	// Linking the enforced policy-as-code version.
	code := strings.Repeat("ab", 32)
	if err := e.svc.LinkEnforcedPolicy(ctx, admin, code, "ai"); err != nil {
		t.Fatal(err)
	}
	if got, err := e.svc.PolicyFor(ctx, "sha256:"+code); err != nil || got.ID != "ai" {
		t.Errorf("PolicyFor = %v, %v", got, err)
	}
	if err := e.svc.LinkEnforcedPolicy(ctx, admin, "nothex", "ai"); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("link with a bad hash = %v", err)
	}
	sts, err := e.svc.Policies(ctx)
	if err != nil || len(sts) != 1 || !sts[0].Signed || sts[0].Overdue {
		t.Errorf("policies = %+v, %v", sts, err)
	}
}

func TestCompetenceCurrent(t *testing.T) {
	e := newEnv(t, aims.Options{})
	e.importDemo(t)
	ctx := context.Background()
	at := func(s string) time.Time { t.Helper(); d, _ := time.Parse(time.RFC3339, s); return d }
	cases := []struct {
		person, competence string
		at                 time.Time
		want               bool
	}{
		{"amira.haddad", "credit-decision-oversight", at("2026-11-26T10:00:00Z"), true},
		{"amira.haddad", "credit-decision-oversight", at("2026-03-01T23:59:59Z"), false}, // before obtained
		{"amira.haddad", "credit-decision-oversight", at("2027-03-01T23:59:59Z"), true},  // last day
		{"amira.haddad", "credit-decision-oversight", at("2027-03-02T00:00:00Z"), false}, // expired
		{"tom.berger", "credit-decision-oversight", at("2026-11-26T10:00:00Z"), false},   // expired record
		{"amira.haddad", "ai-literacy", at("2026-11-26T10:00:00Z"), false},               // other competence
		{"nobody", "credit-decision-oversight", at("2026-11-26T10:00:00Z"), false},
	}
	for _, c := range cases {
		got, err := e.svc.Current(ctx, c.person, c.competence, c.at)
		if err != nil || got != c.want {
			t.Errorf("Current(%s, %s, %s) = %v, %v; want %v", c.person, c.competence, c.at, got, err, c.want)
		}
	}
}

func TestArt73Deadlines(t *testing.T) {
	aware := time.Date(2026, 11, 18, 11, 5, 0, 0, time.UTC)
	cases := []struct {
		category string
		want     time.Duration
	}{
		{"general", 15 * 24 * time.Hour},
		{"widespread_infringement", 2 * 24 * time.Hour},
		{"critical_infrastructure", 2 * 24 * time.Hour},
		{"death", 10 * 24 * time.Hour},
	}
	for _, c := range cases {
		got, ok := aims.Deadline(&aims.Incident{Serious: true, Category: c.category, DetectedAt: aware.Add(-time.Hour), AwareAt: aware}, aims.LegalArt73)
		if !ok || !got.Equal(aware.Add(c.want)) {
			t.Errorf("%s: deadline %v, want %v", c.category, got, aware.Add(c.want))
		}
	}
	if _, ok := aims.Deadline(&aims.Incident{Category: "general"}, aims.LegalArt73); ok {
		t.Error("a non-serious incident has a deadline")
	}
	// Awareness defaults to detection.
	got, _ := aims.Deadline(&aims.Incident{Serious: true, Category: "death", DetectedAt: aware}, aims.LegalArt73)
	if !got.Equal(aware.Add(240 * time.Hour)) {
		t.Errorf("deadline from detection = %v", got)
	}
}

func TestRaiseDeduplicatesAndRespectsSwitches(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, aims.Options{Auto: aims.AutoIncidents{KillSwitch: true}})
	inc, opened, err := e.svc.KillSwitchUsed(ctx, "agent-1", "", "user:bob", "loop")
	if err != nil || !opened || inc.Source != "auto:kill_switch" {
		t.Fatalf("first signal = %+v, %v, %v", inc, opened, err)
	}
	again, opened, err := e.svc.KillSwitchUsed(ctx, "agent-1", "", "user:bob", "loop again")
	if err != nil || opened || again.ID != inc.ID || again.Occurrences != 2 {
		t.Fatalf("repeat signal = %+v, opened %v, %v; want the same incident with 2 occurrences", again, opened, err)
	}
	other, opened, _ := e.svc.KillSwitchUsed(ctx, "agent-2", "", "user:bob", "x")
	if !opened || other.ID == inc.ID {
		t.Errorf("a signal for another agent did not open its own incident")
	}
	off, opened, err := e.svc.PIIInAnswer(ctx, "agent-1", "", "gpt-4o", map[string]int64{"EMAIL_ADDRESS": 1})
	if err != nil || opened || off != nil {
		t.Errorf("switched-off signal opened %+v, %v", off, err)
	}
	// Closing the incident lets the signal open a new one.
	inc.Status, inc.RootCause = "closed", "fixed"
	inc.Effectiveness = &aims.Effectiveness{CheckedAt: aims.DateOf(testNow), By: "qa", Effective: true}
	if _, err := e.svc.Put(ctx, admin, inc); err != nil {
		t.Fatal(err)
	}
	third, opened, _ := e.svc.KillSwitchUsed(ctx, "agent-1", "", "user:bob", "again")
	if !opened || third.ID == inc.ID {
		t.Errorf("after closing, the signal did not open a new incident")
	}
}

func TestInventoryFlagsUnregisteredAndUnapproved(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, aims.Options{})
	e.importDemo(t)
	a, sys, _, err := e.inv.CreateAgent(ctx, admin, inventoryAgent("scorer", "credit-scoring"))
	if err != nil {
		t.Fatal(err)
	}
	report := func(o aims.Observation) {
		t.Helper()
		if err := e.svc.ReportUsage(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	report(aims.Observation{AgentID: a.ID, SystemID: sys.ID, Provider: "openai", Model: "gpt-4o-2024-08-06"})
	report(aims.Observation{AgentID: a.ID, SystemID: sys.ID, Provider: "openai", Model: "gpt-4o-2024-08-06"})
	report(aims.Observation{AgentID: a.ID, SystemID: sys.ID, Provider: "mistral", Model: "mistral-large"})
	report(aims.Observation{AgentID: a.ID, SystemID: sys.ID, Server: "bureau", Tool: "get_credit_report"})
	report(aims.Observation{AgentID: a.ID, SystemID: sys.ID, Server: "bureau", Tool: "delete_report"})
	report(aims.Observation{Source: "key:vk_unknown1", Model: "gpt-4o"})
	entries, orphans, err := e.svc.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var credit *aims.InventoryEntry
	for i := range entries {
		if entries[i].System.Name == "credit-scoring" {
			credit = &entries[i]
		}
	}
	if credit == nil || credit.Record == nil || len(credit.Agents) != 1 {
		t.Fatalf("credit-scoring entry = %+v", credit)
	}
	kinds := map[string]int{}
	for _, f := range credit.Flags {
		kinds[f.Kind]++
	}
	want := map[string]int{aims.FlagUnapprovedModel: 1, aims.FlagUnapprovedProvider: 1, aims.FlagUnapprovedTool: 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("flags = %v; want %d %s", credit.Flags, n, k)
		}
	}
	if len(credit.Flags) != 3 {
		t.Errorf("flags = %+v, want exactly 3", credit.Flags)
	}
	if len(orphans) != 1 || orphans[0].Kind != aims.FlagUnregistered || !strings.Contains(orphans[0].Detail, "vk_unknown1") {
		t.Errorf("unattributed flags = %+v", orphans)
	}
	for _, u := range credit.Seen["models"] {
		if u.Name == "gpt-4o-2024-08-06" && (u.Count != 2 || !u.Approved) {
			t.Errorf("approved model seen = %+v, want count 2 approved", u)
		}
	}
}

func TestHealthChecksFailClosedAndPass(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, aims.Options{NeverSeenGrace: time.Hour})
	h := &aims.Health{Service: e.svc, Ledger: e.db.Ledger()}
	results := func() map[string]aims.HealthResult { t.Helper(); return evaluate(t, h) }
	// An empty system vouches for nothing.
	r := results()
	for _, c := range []string{aims.CheckLedgerVerified, aims.CheckPolicyLive, aims.CheckPIIMasking, aims.CheckPolicyReview} {
		if r[c].Pass {
			t.Errorf("%s passed with nothing to go on: %s", c, r[c].Detail)
		}
	}
	if !strings.Contains(r[aims.CheckLedgerVerified].Detail, "failing closed") {
		t.Errorf("ledger check detail = %q", r[aims.CheckLedgerVerified].Detail)
	}
	// Failing checks opened incidents when switched on; they are off here.
	if incs, _ := e.svc.Incidents(ctx); len(incs) != 0 {
		t.Errorf("incidents opened with auto incidents off: %d", len(incs))
	}

	e.importDemo(t)
	if err := e.svc.RecordVerification(ctx, aims.Verification{OK: true, Size: 10, Summary: "intact", Method: "test"}); err != nil {
		t.Fatal(err)
	}
	h.PII = piiModes{"openai": "tokenize", "anthropic": "mask"}
	h.Policy = policyState{aims.PolicyState{Hash: "sha256:abc", Compiled: true}}
	r = results()
	for _, c := range []string{aims.CheckLedgerVerified, aims.CheckPolicyLive, aims.CheckPIIMasking, aims.CheckPolicyReview, aims.CheckHighRiskAssessed, aims.CheckApprovalSLA, aims.CheckAgentsThroughVigil} {
		if !r[c].Pass {
			t.Errorf("%s failed: %s", c, r[c].Detail)
		}
	}

	// A failed verification fails the check (and would open an incident).
	if err := e.svc.RecordVerification(ctx, aims.Verification{OK: false, Summary: "index 3: edited", Method: "test"}); err != nil {
		t.Fatal(err)
	}
	h.PII = piiModes{"openai": "tokenize", "anthropic": "off"}
	e.now = e.now.Add(2 * time.Hour)
	if _, _, _, err := e.inv.CreateAgent(ctx, admin, inventoryAgent("quiet", "support-assistant")); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(2 * time.Hour)
	r = results()
	for c, want := range map[string]string{
		aims.CheckLedgerVerified:     "index 3: edited",
		aims.CheckPIIMasking:         "anthropic",
		aims.CheckAgentsThroughVigil: "quiet",
	} {
		if r[c].Pass || !strings.Contains(r[c].Detail, want) {
			t.Errorf("%s = %+v; want a failure naming %q", c, r[c], want)
		}
	}
	// Review dates pass: the policy review check fails once overdue.
	e.now = time.Date(2027, 9, 2, 0, 0, 0, 0, time.UTC)
	r = results()
	if r[aims.CheckPolicyReview].Pass || !strings.Contains(r[aims.CheckPolicyReview].Detail, "ai-policy") {
		t.Errorf("policy review after its date = %+v", r[aims.CheckPolicyReview])
	}
	if r[aims.CheckHighRiskAssessed].Pass {
		t.Errorf("high-risk assessments past their review dates still pass: %+v", r[aims.CheckHighRiskAssessed])
	}
}

func TestFailingChecksOpenOneIncidentEach(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, aims.Options{Auto: aims.AutoIncidents{HealthCheck: true, LedgerVerification: true}})
	h := &aims.Health{Service: e.svc, Ledger: e.db.Ledger()}
	for range 2 {
		if _, err := h.Evaluate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	incs, err := e.svc.Incidents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	failing := 0
	hist, _ := e.db.AIMS().HealthHistory(ctx, testNow.Add(-time.Minute), testNow.Add(time.Minute))
	for _, r := range hist {
		if !r.Pass {
			failing++
		}
	}
	if failing == 0 || len(incs) != failing/2 {
		t.Fatalf("%d incidents for %d failing results over two runs; want one per failing check", len(incs), failing)
	}
	for _, i := range incs {
		if i.Incident.Occurrences != 2 || i.Incident.Source != "auto:health_check" {
			t.Errorf("incident %+v, want 2 occurrences from auto:health_check", i.Incident)
		}
	}
	if err := e.svc.RecordVerification(ctx, aims.Verification{OK: false, Summary: "checkpoint 5: fork", Method: "test"}); err != nil {
		t.Fatal(err)
	}
	incs, _ = e.svc.Incidents(ctx)
	found := false
	for _, i := range incs {
		if i.Incident.Source == "auto:"+aims.SignalLedgerVerification && i.Incident.Severity == "critical" && strings.Contains(i.Incident.Description, "fork") {
			found = true
		}
	}
	if !found {
		t.Error("a failed verification opened no critical incident")
	}
}

func TestWatchRaisesFromTheLedger(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, aims.Options{Auto: aims.AutoIncidents{KillSwitch: true, DeniedBurst: true, PIIInAnswer: true, DeniedBurstThreshold: 3}})
	e.importDemo(t)
	h := &aims.Health{Service: e.svc, Ledger: e.db.Ledger()}
	if err := h.Watch(ctx); err != nil { // starts at the end: history is not replayed
		t.Fatal(err)
	}
	a, sys, _, err := e.inv.CreateAgent(ctx, admin, inventoryAgent("scorer", "credit-scoring"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.inv.SetAgentStatus(ctx, admin, a.ID, "suspended", "runaway"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := e.log.Record(ctx, vigil.Event{Type: vigil.EventDecision, AgentID: a.ID, SystemID: sys.ID, Decision: vigil.Deny, Time: testNow.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.log.Record(ctx, vigil.Event{Type: vigil.EventModelResponse, AgentID: a.ID, SystemID: sys.ID, Counts: map[string]int64{"pii.EMAIL_ADDRESS": 2, "tokens_out": 50}, Attrs: map[string]string{"model": "gpt-4o"}}); err != nil {
		t.Fatal(err)
	}
	if err := h.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	incs, err := e.svc.Incidents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{}
	for _, i := range incs {
		sources[i.Incident.Source] = i.Incident.Description
	}
	for _, want := range []string{"auto:kill_switch", "auto:denied_burst", "auto:pii_in_answer"} {
		if _, ok := sources[want]; !ok {
			t.Errorf("no incident from %s; incidents: %v", want, sources)
		}
	}
	if d := sources["auto:pii_in_answer"]; !strings.Contains(d, "EMAIL_ADDRESS×2") || strings.Contains(d, "tokens_out") {
		t.Errorf("PII incident detail = %q", d)
	}
	// Watching again raises nothing new.
	n := len(incs)
	if err := h.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	if incs, _ = e.svc.Incidents(ctx); len(incs) != n {
		t.Errorf("a second watch changed the incidents: %d, was %d", len(incs), n)
	}
}

func TestSoAListsAll38WithAutomaticEvidence(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, aims.Options{})
	e.importDemo(t)
	if err := e.svc.RecordVerification(ctx, aims.Verification{OK: true, Summary: "intact", Method: "test"}); err != nil {
		t.Fatal(err)
	}
	a, _, _, err := e.inv.CreateAgent(ctx, admin, inventoryAgent("bot", "support-assistant"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.log.Record(ctx, vigil.Event{Type: vigil.EventDecision, AgentID: a.ID, Decision: vigil.Allow, Time: testNow}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.log.Record(ctx, vigil.Event{Type: vigil.EventModelRequest, AgentID: a.ID, Time: testNow, Counts: map[string]int64{"IBAN_CODE": 3}}); err != nil {
		t.Fatal(err)
	}
	e.checkpoint(t)
	soa, err := e.svc.SoA(ctx, aims.Sources{Ledger: e.db.Ledger(), Metrics: metrics{"vigil_http_requests_total": 7}}, testNow.Add(-24*time.Hour), testNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(soa.Entries) != 38 || soa.Summary.NotAssessed != 0 || soa.Summary.Excluded != 1 {
		t.Fatalf("SoA summary = %+v", soa.Summary)
	}
	byID := map[string]aims.SoAEntry{}
	for _, en := range soa.Entries {
		byID[en.Control.ID] = en
	}
	has := func(id, source, text string) {
		t.Helper()
		for _, ev := range byID[id].Evidence {
			if ev.Automatic && ev.Source == source && strings.Contains(ev.Summary, text) {
				return
			}
		}
		t.Errorf("%s lacks %s evidence containing %q: %+v", id, source, text, byID[id].Evidence)
	}
	has("iso42001:A.6.2.8", "verification", "1 ledger verifications in the period, 1 passed")
	has("iso42001:A.9.2", "ledger", "1 policy decisions (allow 1)")
	has("iso42001:A.7.6", "ledger", "IBAN_CODE 3")
	has("iso42001:A.6.2.6", "metrics", "HTTP requests served: 7")
	has("iso42001:A.4.2", "inventory", "2 AI systems and 1 agents")
	has("iso42001:A.8.4", "records", "1 serious (Art. 73)")
	has("iso42001:A.2.2", "records", "2 with the current version signed off")
	has("iso42001:A.4.6", "records", "3 competence records, 2 current")
	if r := byID["iso42001:A.9.2"].Risks; len(r) != 2 || r[0] != "R-CS-01" {
		t.Errorf("A.9.2 risks = %v, want the risks whose treatments link to it", r)
	}
	if en := byID["iso42001:A.7.2"]; en.Applicable || en.Status != "not_applicable" {
		t.Errorf("A.7.2 = %+v, want excluded", en)
	}
	csv, err := soa.CSV()
	if err != nil || strings.Count(string(csv), "\niso42001:A.") != 38 {
		t.Errorf("CSV has %d control rows, %v", strings.Count(string(csv), "\niso42001:A."), err)
	}
}

func TestReviewInputPack(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, aims.Options{})
	e.importDemo(t)
	p, err := e.svc.ReviewInputsFor(ctx, aims.Sources{Ledger: e.db.Ledger()}, "MR-2026-Q4")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Health) != len(aims.Checks) || p.Activity == nil {
		t.Errorf("pack health/activity = %d/%v", len(p.Health), p.Activity)
	}
	ids := map[string]bool{}
	for _, i := range p.Incidents {
		ids[i.Incident.ID] = true
	}
	if !ids["INC-2026-07"] || !ids["NC-2026-01"] {
		t.Errorf("pack incidents = %v, want both demo incidents", ids)
	}
	open := map[string]bool{}
	for _, a := range p.OpenActions {
		open[a.From+"/"+a.Action.ID] = true
	}
	if !open["incident INC-2026-07/A2"] || !open["review MR-2026-Q4/A1"] || open["incident INC-2026-07/A1"] {
		t.Errorf("open actions = %v", open)
	}
	if len(p.Audits) != 1 || p.Audits[0].ID != "AUD-2026-01" {
		t.Errorf("pack audits = %v", p.Audits)
	}
}

func TestGetAndDelete(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, aims.Options{})
	e.importDemo(t)
	r, err := e.svc.Get(ctx, aims.KindSystem, "credit-scoring")
	if err != nil || r.(*aims.System).RiskClass != "high" {
		t.Fatalf("Get system = %v, %v", r, err)
	}
	if _, err := e.svc.Get(ctx, "nonsense", "x"); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("Get unknown kind = %v", err)
	}
	if err := e.svc.Delete(ctx, admin, aims.KindDocument, "DOC-RISK-METHOD"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Get(ctx, aims.KindDocument, "DOC-RISK-METHOD"); !errors.Is(err, vigil.ErrNotFound) {
		t.Errorf("deleted document: %v", err)
	}
}
