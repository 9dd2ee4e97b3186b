package aims

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/vigil-gateway/vigil/internal/inventory"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Ledger event types aims writes.
const (
	EventRecordChanged = "aims.record"
	EventPolicySignoff = "aims.policy.signoff"
	EventPolicyLinked  = "aims.policy.linked"
	EventIncident      = "aims.incident"
	EventVerification  = "aims.verification"
)

// Defaults for Options.
const (
	DefaultRiskScale          = 5
	DefaultVerificationMaxAge = 24 * time.Hour
	DefaultApprovalSLA        = time.Hour
	DefaultNeverSeenGrace     = 24 * time.Hour
	DefaultDeniedBurst        = 5
	DefaultDeniedBurstWindow  = 10 * time.Minute
)

// Art73Clocks are the EU AI Act Art. 73 reporting deadlines for serious incidents,
// counted from when the organisation became aware. Internal targets may be shorter
// than the law's; never longer.
type Art73Clocks struct {
	// General is Art. 73(2): not later than 15 days.
	General time.Duration
	// Widespread is Art. 73(3): 2 days for a widespread infringement or a serious and
	// irreversible disruption of critical infrastructure (Art. 3(49)(b)).
	Widespread time.Duration
	// Death is Art. 73(4): 10 days.
	Death time.Duration
}

// LegalArt73 are the law's own deadlines.
var LegalArt73 = Art73Clocks{General: 15 * 24 * time.Hour, Widespread: 2 * 24 * time.Hour, Death: 10 * 24 * time.Hour}

// AutoIncidents switches automatic incidents on per signal.
type AutoIncidents struct {
	HealthCheck        bool
	LedgerVerification bool
	DeniedBurst        bool
	PIIInAnswer        bool
	KillSwitch         bool
	// DeniedBurstThreshold denials of high-risk actions by one agent within
	// DeniedBurstWindow make a burst.
	DeniedBurstThreshold int
	DeniedBurstWindow    time.Duration
	// SetupGrace is how long after the first health evaluation a check that has
	// never passed may fail without opening an incident: a fresh install has no AI
	// policy, risk or impact records yet, and a control never in place is a gap the
	// check shows, not an event. A check that passed before opens an incident as soon
	// as it fails, grace or not. Zero (the default here) gives no grace; vigil serve's
	// configuration (aims.auto_incidents.setup_grace) defaults to 7 days.
	SetupGrace time.Duration
}

// Options tune the Service. The zero value gets the defaults.
type Options struct {
	// RiskScale is the top of the likelihood and impact scales (1..RiskScale).
	RiskScale int
	Art73     Art73Clocks
	Auto      AutoIncidents
	// VerificationMaxAge is how recent a passing ledger verification must be.
	VerificationMaxAge time.Duration
	// ApprovalSLA is how long an approval may wait for a human decision.
	ApprovalSLA time.Duration
	// NeverSeenGrace is how long a registered agent may exist without any traffic
	// through Vigil before the health check flags it.
	NeverSeenGrace time.Duration
}

func (o *Options) applyDefaults() {
	if o.RiskScale == 0 {
		o.RiskScale = DefaultRiskScale
	}
	if o.Art73.General == 0 {
		o.Art73.General = LegalArt73.General
	}
	if o.Art73.Widespread == 0 {
		o.Art73.Widespread = LegalArt73.Widespread
	}
	if o.Art73.Death == 0 {
		o.Art73.Death = LegalArt73.Death
	}
	if o.VerificationMaxAge == 0 {
		o.VerificationMaxAge = DefaultVerificationMaxAge
	}
	if o.ApprovalSLA == 0 {
		o.ApprovalSLA = DefaultApprovalSLA
	}
	if o.NeverSeenGrace == 0 {
		o.NeverSeenGrace = DefaultNeverSeenGrace
	}
	if o.Auto.DeniedBurstThreshold == 0 {
		o.Auto.DeniedBurstThreshold = DefaultDeniedBurst
	}
	if o.Auto.DeniedBurstWindow == 0 {
		o.Auto.DeniedBurstWindow = DefaultDeniedBurstWindow
	}
}

// Recorder appends an event to the ledger and returns once it is durable.
type Recorder interface {
	Record(ctx context.Context, e vigil.Event) (vigil.Receipt, error)
}

// Service is the management system's behaviour over a Store: validation, the link to
// the inventory, policy versions and sign-offs, incidents, and a ledger record of
// every change. Fields are set before first use and not changed after.
type Service struct {
	Store Store
	// Registry is the inventory whose system records aims extends.
	Registry *inventory.Service
	Ledger   Recorder
	Options  Options
	Log      *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (s *Service) opts() Options {
	o := s.Options
	o.applyDefaults()
	return o
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Result says what Put did.
type Result struct {
	Kind    string `json:"kind"`
	ID      string `json:"id"`
	Created bool   `json:"created"`
	// Changed is false when the record was already stored exactly so.
	Changed bool `json:"changed"`
	// Signed is set when a policy sign-off was recorded.
	Signed *Signoff `json:"signed,omitempty"`
}

// Validate checks r against its kind's rules and this deployment's risk scale.
func (s *Service) Validate(r Record) FieldErrors { return Validate(r, s.opts().RiskScale) }

// Put validates r and stores it, creating or replacing the record of its kind and id.
// The change is recorded in the ledger. A system record creates or updates the
// inventory's system of that name; other records must name an existing system.
func (s *Service) Put(ctx context.Context, by vigil.Actor, r Record) (Result, error) {
	if errs := s.Validate(r); len(errs) > 0 {
		for _, e := range errs {
			e.Kind, e.ID = r.Kind(), r.Key()
		}
		return Result{}, errs.asVigil()
	}
	switch r := r.(type) {
	case *System:
		return s.putSystem(ctx, by, r)
	case *Policy:
		return s.putPolicy(ctx, by, r)
	case *Incident:
		if r.Source == "" {
			r.Source = "manual"
		}
	}
	systemID := ""
	if name := r.SystemName(); name != "" {
		sys, err := s.Registry.LookupSystem(ctx, name)
		if errors.Is(err, vigil.ErrNotFound) {
			return Result{}, (FieldErrors{{Kind: r.Kind(), ID: r.Key(), Field: "system", Msg: fmt.Sprintf("no AI system named %q in the inventory", name)}}).asVigil()
		}
		if err != nil {
			return Result{}, err
		}
		systemID = sys.ID
	}
	return s.store(ctx, by, r.Kind(), r.Key(), systemID, r)
}

// store writes v as the record (kind, id) unless it is already stored exactly so,
// and records the change in the ledger.
func (s *Service) store(ctx context.Context, by vigil.Actor, kind, id, systemID string, v any) (Result, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Result{}, fmt.Errorf("couldn't encode %s %q: %w", kind, id, err)
	}
	res := Result{Kind: kind, ID: id}
	old, err := s.Store.Record(ctx, kind, id)
	switch {
	case errors.Is(err, vigil.ErrNotFound):
		res.Created = true
	case err != nil:
		return Result{}, fmt.Errorf("couldn't read %s %q: %w", kind, id, err)
	case bytes.Equal(old.Data, data) && old.SystemID == systemID:
		return res, nil
	}
	res.Changed = true
	rec := StoredRecord{Kind: kind, ID: id, SystemID: systemID, Data: data, UpdatedAt: s.now(), UpdatedBy: by.String()}
	if err := s.Store.PutRecord(ctx, rec); err != nil {
		return Result{}, fmt.Errorf("couldn't store %s %q: %w", kind, id, err)
	}
	action := "updated"
	if res.Created {
		action = "created"
	}
	sum := sha256.Sum256(data)
	if _, err := s.record(ctx, by, EventRecordChanged, systemID, map[string]string{
		"kind": kind, "id": id, "action": action, "digest": hex.EncodeToString(sum[:]),
	}); err != nil {
		return Result{}, err
	}
	return res, nil
}

func (s *Service) record(ctx context.Context, by vigil.Actor, typ, systemID string, attrs map[string]string) (vigil.Receipt, error) {
	r, err := s.Ledger.Record(ctx, vigil.Event{Type: typ, Time: s.now(), Actor: by.String(), SystemID: systemID, Attrs: attrs})
	if err != nil {
		return vigil.Receipt{}, fmt.Errorf("couldn't record %s in the ledger: %w", typ, err)
	}
	return r, nil
}

func (s *Service) putSystem(ctx context.Context, by vigil.Actor, r *System) (Result, error) {
	in := inventory.SystemInput{Name: r.ID, Purpose: r.Purpose, Owner: r.Owner, Lifecycle: r.Lifecycle}
	sys, err := s.Registry.LookupSystem(ctx, r.ID)
	switch {
	case errors.Is(err, vigil.ErrNotFound):
		if sys, err = s.Registry.CreateSystem(ctx, by, in); err != nil {
			return Result{}, err
		}
	case err != nil:
		return Result{}, err
	case sys.Purpose != r.Purpose || sys.Owner != r.Owner || (r.Lifecycle != "" && sys.Lifecycle != r.Lifecycle):
		if sys, err = s.Registry.UpdateSystem(ctx, by, sys.ID, in); err != nil {
			return Result{}, err
		}
	}
	if r.Lifecycle == "" {
		r.Lifecycle = sys.Lifecycle
	}
	res, err := s.store(ctx, by, KindSystem, sys.ID, sys.ID, r)
	res.ID = r.ID
	return res, err
}

// Get returns the record (kind, id). Systems are looked up by inventory name or id.
func (s *Service) Get(ctx context.Context, kind, id string) (Record, error) {
	if kind == KindSystem {
		return s.system(ctx, id)
	}
	if NewRecord(kind) == nil {
		return nil, vigil.Errorf(vigil.EINVALID, "%q is not a record kind; kinds are %s", kind, strings.Join(RecordKinds, ", "))
	}
	st, err := s.Store.Record(ctx, kind, id)
	if err != nil {
		if errors.Is(err, vigil.ErrNotFound) {
			return nil, vigil.NotFound("no %s record %q", kind, id)
		}
		return nil, err
	}
	return decodeRecord(st)
}

func decodeRecord(st StoredRecord) (Record, error) {
	r := NewRecord(st.Kind)
	if r == nil {
		return nil, fmt.Errorf("stored record %s/%s has an unknown kind", st.Kind, st.ID)
	}
	if err := json.Unmarshal(st.Data, r); err != nil {
		return nil, fmt.Errorf("couldn't decode stored %s %q: %w", st.Kind, st.ID, err)
	}
	return r, nil
}

// system returns a system's record with the inventory's own fields laid over it (the
// inventory is where name, purpose, owner and lifecycle live).
func (s *Service) system(ctx context.Context, idOrName string) (*System, error) {
	sys, err := s.Registry.LookupSystem(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	st, err := s.Store.Record(ctx, KindSystem, sys.ID)
	if errors.Is(err, vigil.ErrNotFound) {
		return nil, vigil.NotFound("AI system %q has no management-system record yet (risk class, role, approved models…)", sys.Name)
	}
	if err != nil {
		return nil, err
	}
	r, err := decodeRecord(st)
	if err != nil {
		return nil, err
	}
	out := r.(*System)
	out.ID, out.Purpose, out.Owner, out.Lifecycle = sys.Name, sys.Purpose, sys.Owner, sys.Lifecycle
	return out, nil
}

// List returns every record of kind, ordered by id.
func (s *Service) List(ctx context.Context, kind string) ([]Record, error) {
	if NewRecord(kind) == nil {
		return nil, vigil.Errorf(vigil.EINVALID, "%q is not a record kind; kinds are %s", kind, strings.Join(RecordKinds, ", "))
	}
	sts, err := s.Store.ListRecords(ctx, kind)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(sts))
	for _, st := range sts {
		var r Record
		if kind == KindSystem {
			r, err = s.system(ctx, st.ID)
		} else {
			r, err = decodeRecord(st)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Key(), b.Key()) })
	return out, nil
}

// Delete removes a record; the deletion is recorded in the ledger. A system's
// management-system record can be deleted, its inventory entry stays.
func (s *Service) Delete(ctx context.Context, by vigil.Actor, kind, id string) error {
	if NewRecord(kind) == nil {
		return vigil.Errorf(vigil.EINVALID, "%q is not a record kind", kind)
	}
	key, systemID := id, ""
	if kind == KindSystem {
		sys, err := s.Registry.LookupSystem(ctx, id)
		if err != nil {
			return err
		}
		key, systemID = sys.ID, sys.ID
	}
	if _, err := s.Store.Record(ctx, kind, key); err != nil {
		if errors.Is(err, vigil.ErrNotFound) {
			return vigil.NotFound("no %s record %q", kind, id)
		}
		return err
	}
	if err := s.Store.DeleteRecord(ctx, kind, key); err != nil {
		return fmt.Errorf("couldn't delete %s %q: %w", kind, id, err)
	}
	_, err := s.record(ctx, by, EventRecordChanged, systemID, map[string]string{"kind": kind, "id": id, "action": "deleted"})
	return err
}

// ImportResult summarises an import.
type ImportResult struct {
	Results []Result `json:"results"`
	Created int      `json:"created"`
	Updated int      `json:"updated"`
	Same    int      `json:"unchanged"`
}

// Import validates every record first and stores nothing unless all are valid (the
// errors name file, line, record and field); then it stores systems before the
// records that refer to them.
func (s *Service) Import(ctx context.Context, by vigil.Actor, recs []Parsed) (ImportResult, error) {
	var errs FieldErrors
	names := map[string]bool{}
	seen := map[string]Parsed{}
	for _, p := range recs {
		k := p.Record.Kind() + "/" + p.Record.Key()
		if prev, ok := seen[k]; ok {
			errs = append(errs, p.Locate(FieldErrors{{Field: "id", Msg: fmt.Sprintf("%s %q is also defined at %s:%d", p.Record.Kind(), p.Record.Key(), prev.File, prev.Line)}})...)
		}
		seen[k] = p
		errs = append(errs, p.Locate(s.Validate(p.Record))...)
		if p.Record.Kind() == KindSystem {
			names[p.Record.Key()] = true
		}
	}
	for _, p := range recs {
		name := p.Record.SystemName()
		if name == "" || names[name] {
			continue
		}
		if _, err := s.Registry.LookupSystem(ctx, name); errors.Is(err, vigil.ErrNotFound) {
			errs = append(errs, p.Locate(FieldErrors{{Field: "system", Msg: fmt.Sprintf("no AI system named %q in the inventory or in this import", name)}})...)
		} else if err != nil {
			return ImportResult{}, err
		}
	}
	if len(errs) > 0 {
		return ImportResult{}, errs.asVigil()
	}
	order := func(k string) int { return slices.Index(RecordKinds, k) }
	sorted := slices.Clone(recs)
	slices.SortStableFunc(sorted, func(a, b Parsed) int { return order(a.Record.Kind()) - order(b.Record.Kind()) })
	var out ImportResult
	for _, p := range sorted {
		res, err := s.Put(ctx, by, p.Record)
		if err != nil {
			return out, fmt.Errorf("%s:%d: %w", p.File, p.Line, err)
		}
		out.Results = append(out.Results, res)
		switch {
		case res.Created:
			out.Created++
		case res.Changed:
			out.Updated++
		default:
			out.Same++
		}
	}
	return out, nil
}

// Export returns every record of every kind, in RecordKinds order then by id.
func (s *Service) Export(ctx context.Context) ([]Record, error) {
	var out []Record
	for _, k := range RecordKinds {
		list, err := s.List(ctx, k)
		if err != nil {
			return nil, err
		}
		out = append(out, list...)
	}
	return out, nil
}

// newID returns a record id for something Vigil creates itself.
func (s *Service) newID(prefix string) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s-%s", prefix, s.now().Format("20060102"), hex.EncodeToString(b[:]))
}
