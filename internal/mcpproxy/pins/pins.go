// Package pins is the rug-pull defence of the MCP gateway: the first time Vigil sees a
// tool of a server it pins a hash of the tool's definition (name, title, description,
// input and output schema, annotations); when the server later describes the tool
// differently, the change is flagged, recorded in the ledger and, in pin mode, the
// tool stays hidden until an admin approves the new version.
//
// A server that swaps a tool's description for one carrying prompt-injected
// instructions, or quietly widens its schema, after users learned to trust it, is the
// attack this stops: the agent keeps seeing (and can only call) the version a human
// accepted.
//
// The package holds the rules and a Store interface; the SQL drivers implement it.
package pins

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-gateway/vigil/internal/vigil"
)

// Ledger event types this package writes.
const (
	// EventPinned: a tool was seen for the first time and its definition pinned.
	EventPinned = "mcp.tool.pinned"
	// EventChanged: a server described a pinned tool differently.
	EventChanged = "mcp.tool.changed"
	// EventApproved: an admin approved a changed definition as the tool's pin.
	EventApproved = "mcp.tool.approved"
)

// Mode says what a changed tool does until its new version is approved.
type Mode string

// The modes (config mcp_servers[].pinning.mode).
const (
	ModePin  Mode = "pin"  // hide the changed tool and refuse calls to it
	ModeWarn Mode = "warn" // record the change, keep serving the tool
	ModeOff  Mode = "off"  // don't pin at all
)

// Version is one definition of a tool.
type Version struct {
	// Hash is the hex SHA-256 of Definition.
	Hash string `json:"hash"`
	// Definition is the canonical JSON of the hashed fields (see Define).
	Definition json.RawMessage `json:"definition"`
	// SeenAt is when Vigil first saw this version.
	SeenAt time.Time `json:"seen_at"`
}

// Pin is what Vigil trusts about one tool of one server.
type Pin struct {
	Server string `json:"server"`
	Tool   string `json:"tool"`
	// Approved is the version agents may see and call: the first one seen, or the
	// last one an admin approved.
	Approved Version `json:"approved"`
	// ApprovedBy is "" for a version pinned on first sight (trust on first use), else
	// the admin who approved it; ApprovedAt is when.
	ApprovedBy string    `json:"approved_by,omitempty"`
	ApprovedAt time.Time `json:"approved_at"`
	// Pending is the latest different version the server described, until an admin
	// approves it. Nil when the server describes the tool as approved.
	Pending *Version `json:"pending,omitempty"`
}

// Store keeps pins.
//
// Implementations MUST be safe for concurrent use, also by several replicas sharing
// one database: CreatePin and Approve are atomic compare-and-set operations.
type Store interface {
	// ListPins returns the pins of server, or of every server when server is "",
	// ordered by server then tool.
	ListPins(ctx context.Context, server string) ([]Pin, error)
	// Pin returns one pin, or an error matching vigil.ErrNotFound.
	Pin(ctx context.Context, server, tool string) (Pin, error)
	// CreatePin stores a new pin. It MUST return an error matching vigil.ErrConflict
	// when the tool is already pinned (another replica saw it first).
	CreatePin(ctx context.Context, p Pin) error
	// SetPending records v as the tool's pending version. It MUST report false, and
	// change nothing, when v.Hash is already the pending version; and return an error
	// matching vigil.ErrNotFound when the tool is not pinned.
	SetPending(ctx context.Context, server, tool string, v Version) (changed bool, err error)
	// Approve makes the pending version whose hash is hash the approved one and clears
	// Pending, in one step. It MUST return an error matching vigil.ErrConflict when the
	// pending version is not hash (it changed again, or was approved already) and
	// vigil.ErrNotFound when the tool is not pinned.
	Approve(ctx context.Context, server, tool, hash, by string, at time.Time) (Pin, error)
}

// Recorder appends an event to the ledger and returns once it is durable.
type Recorder interface {
	Record(ctx context.Context, e vigil.Event) (vigil.Receipt, error)
}

// hashedFields are the parts of an MCP tool definition that Vigil pins. _meta and
// icons are left out: they are presentation, and servers change them freely.
var hashedFields = []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"}

// Define extracts the pinned fields of a tool definition (one element of a tools/list
// result) as canonical JSON — keys sorted, no insignificant space, numbers as written
// — and returns the tool's name, that definition and its hash.
func Define(tool json.RawMessage) (name string, v Version, err error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(tool, &fields); err != nil {
		return "", Version{}, fmt.Errorf("couldn't read tool definition: %w", err)
	}
	if fields == nil {
		return "", Version{}, errors.New("couldn't read tool definition: null")
	}
	if err := json.Unmarshal(fields["name"], &name); err != nil || name == "" {
		return "", Version{}, errors.New("couldn't read tool definition: no name")
	}
	canon := map[string]any{}
	for _, k := range hashedFields {
		raw, ok := fields[k]
		if !ok {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var x any
		if err := dec.Decode(&x); err != nil {
			return "", Version{}, fmt.Errorf("couldn't read field %s of tool %q: %w", k, name, err)
		}
		canon[k] = x
	}
	def, err := json.Marshal(canon) // maps marshal with sorted keys
	if err != nil {
		return "", Version{}, fmt.Errorf("couldn't canonicalise tool %q: %w", name, err)
	}
	sum := sha256.Sum256(def)
	return name, Version{Hash: hex.EncodeToString(sum[:]), Definition: def}, nil
}

// Status is what Check found for one tool.
type Status string

// The statuses.
const (
	// New: first seen; now pinned with this version.
	New Status = "new"
	// Approved: the server describes the tool as pinned.
	Approved Status = "approved"
	// Changed: the server describes the tool differently from its pin.
	Changed Status = "changed"
)

// Service applies the pinning rules over a Store and records what it does.
type Service struct {
	Store  Store
	Ledger Recorder
	// Now is the clock; tests replace it.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// Seen is a tool as a server just described it.
type Seen struct {
	Name    string
	Version Version
}

// Check compares tools just listed by server with their pins: it pins tools seen for
// the first time and flags changed ones, recording each first sight and each new
// change in the ledger. It returns each tool's status by name. A failure of the store
// or the ledger is returned: the caller fails closed (treats every tool as unapproved).
func (s *Service) Check(ctx context.Context, server string, tools []Seen) (map[string]Status, error) {
	pinned, err := s.Store.ListPins(ctx, server)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the pins of %s: %w", server, err)
	}
	byName := make(map[string]Pin, len(pinned))
	for _, p := range pinned {
		byName[p.Tool] = p
	}
	out := make(map[string]Status, len(tools))
	for _, t := range tools {
		p, ok := byName[t.Name]
		if !ok {
			st, err := s.pinNew(ctx, server, t)
			if err != nil {
				return nil, err
			}
			out[t.Name] = st
			continue
		}
		if p.Approved.Hash == t.Version.Hash {
			out[t.Name] = Approved
			continue
		}
		out[t.Name] = Changed
		if p.Pending != nil && p.Pending.Hash == t.Version.Hash {
			continue
		}
		if err := s.flag(ctx, server, t, p.Approved.Hash); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// pinNew pins a tool seen for the first time. When another replica pinned it first,
// the stored pin decides.
func (s *Service) pinNew(ctx context.Context, server string, t Seen) (Status, error) {
	now := s.now()
	v := t.Version
	v.SeenAt = now
	p := Pin{Server: server, Tool: t.Name, Approved: v, ApprovedAt: now}
	err := s.Store.CreatePin(ctx, p)
	if errors.Is(err, vigil.ErrConflict) {
		got, err := s.Store.Pin(ctx, server, t.Name)
		if err != nil {
			return "", fmt.Errorf("couldn't read the pin of %s/%s: %w", server, t.Name, err)
		}
		if got.Approved.Hash == v.Hash {
			return Approved, nil
		}
		if got.Pending == nil || got.Pending.Hash != v.Hash {
			if err := s.flag(ctx, server, t, got.Approved.Hash); err != nil {
				return "", err
			}
		}
		return Changed, nil
	}
	if err != nil {
		return "", fmt.Errorf("couldn't pin %s/%s: %w", server, t.Name, err)
	}
	if err := s.record(ctx, EventPinned, "", server, t.Name, v, ""); err != nil {
		return "", err
	}
	return New, nil
}

// flag records a changed definition as pending.
func (s *Service) flag(ctx context.Context, server string, t Seen, approvedHash string) error {
	v := t.Version
	v.SeenAt = s.now()
	changed, err := s.Store.SetPending(ctx, server, t.Name, v)
	if err != nil {
		return fmt.Errorf("couldn't flag the change of %s/%s: %w", server, t.Name, err)
	}
	if !changed {
		return nil
	}
	return s.record(ctx, EventChanged, "", server, t.Name, v, approvedHash)
}

// List returns the pins of server ("" for all); with changedOnly, only those with a
// pending version.
func (s *Service) List(ctx context.Context, server string, changedOnly bool) ([]Pin, error) {
	ps, err := s.Store.ListPins(ctx, server)
	if err != nil {
		return nil, fmt.Errorf("couldn't list pins: %w", err)
	}
	if !changedOnly {
		return ps, nil
	}
	out := ps[:0]
	for _, p := range ps {
		if p.Pending != nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// Get returns one pin.
func (s *Service) Get(ctx context.Context, server, tool string) (Pin, error) {
	return s.Store.Pin(ctx, server, tool)
}

// Approve makes the pending version hash of server's tool the approved one, on behalf
// of by, and records it. hash must name the pending version the admin reviewed: if the
// server changed the tool again since, the approval is refused (ECONFLICT).
func (s *Service) Approve(ctx context.Context, by vigil.Actor, server, tool, hash string) (Pin, error) {
	if hash == "" {
		return Pin{}, vigil.Errorf(vigil.EINVALID, "hash is required: approve the pending version you reviewed (see vigil mcp tools)")
	}
	before, err := s.Store.Pin(ctx, server, tool)
	if err != nil {
		return Pin{}, err
	}
	p, err := s.Store.Approve(ctx, server, tool, hash, by.String(), s.now())
	if errors.Is(err, vigil.ErrConflict) {
		return Pin{}, vigil.Conflict("tool %s/%s has no pending version %s: it changed again or was approved already; review it again", server, tool, short(hash))
	}
	if err != nil {
		return Pin{}, err
	}
	if err := s.record(ctx, EventApproved, by.String(), server, tool, p.Approved, before.Approved.Hash); err != nil {
		return p, err
	}
	return p, nil
}

func (s *Service) record(ctx context.Context, typ, actor, server, tool string, v Version, previous string) error {
	if s.Ledger == nil {
		return nil
	}
	e := vigil.Event{
		Type: typ, Time: s.now(), Actor: actor,
		Attrs: map[string]string{"server": server, "tool": tool, "hash": v.Hash},
		Body:  v.Definition,
	}
	if actor == "" {
		e.Actor = vigil.Actor{Kind: vigil.ActorSystem, Name: "mcp-gateway"}.String()
	}
	if previous != "" {
		e.Attrs["previous"] = previous
	}
	if _, err := s.Ledger.Record(ctx, e); err != nil {
		return fmt.Errorf("couldn't record %s for %s/%s: %w", typ, server, tool, err)
	}
	return nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
