package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/vigil-gateway/vigil/internal/ledger"
	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
	"golang.org/x/mod/sumdb/tlog"
)

// LedgerAPI is what the ledger routes serve. With a nil Log they are not registered.
type LedgerAPI struct {
	Log *ledger.Log
	// PublicTiles serves the C2SP tlog-tiles read API (/ledger/checkpoint and
	// /ledger/tile/…) to anyone, as a public transparency log does. By default it
	// needs a token with a reading role: the tiles hold every leaf (event types,
	// actors, timings), which an organisation may not want public. The tiles are
	// evidence whatever the setting: a reader checks them against the signed
	// checkpoint, so serving them grants no power to change anything.
	PublicTiles bool
}

// ExternalPrefix starts the type of every event other systems append through
// POST /api/ledger/events, so they can never pass for Vigil's own events
// (decisions, approvals, erasures).
const ExternalPrefix = vigil.EventExternal + "."

// ledgerReaders may read entries and proofs; ledgerWriters may append events.
var (
	ledgerReaders = []vigil.Role{vigil.RoleAdmin, vigil.RoleAuditor, vigil.RoleViewer}
	ledgerWriters = []vigil.Role{vigil.RoleAdmin, vigil.RoleAuditor}
)

func (s *Server) registerLedger(mux *web.Mux) {
	if s.Ledger.Log == nil {
		return
	}
	tiles := func(h web.HandlerFunc) web.HandlerFunc {
		if s.Ledger.PublicTiles {
			return h
		}
		return s.role(h, ledgerReaders...)
	}
	mux.HandleFunc("GET /ledger/checkpoint", tiles(s.handleLedgerCheckpoint))
	mux.HandleFunc("GET /ledger/tile/{path...}", tiles(s.handleLedgerTile))

	mux.HandleFunc("GET /api/ledger/events/{id}", s.role(s.handleLedgerEvent, ledgerReaders...))
	mux.HandleFunc("GET /api/ledger/consistency", s.role(s.handleLedgerConsistency, ledgerReaders...))
	mux.HandleFunc("POST /api/ledger/events", s.role(s.handleLedgerAppend, ledgerWriters...))
	mux.HandleFunc("POST /api/ledger/events/{id}/erase", s.role(s.handleLedgerErase, vigil.RoleAdmin))
}

func (s *Server) handleLedgerCheckpoint(w http.ResponseWriter, r *http.Request) error {
	cp, err := s.Ledger.Log.Checkpoint(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache") // it changes every second
	_, err = w.Write(cp)
	return err
}

func (s *Server) handleLedgerTile(w http.ResponseWriter, r *http.Request) error {
	t, err := ledger.ParseTilePath("tile/" + r.PathValue("path"))
	if err != nil {
		return vigil.Errorf(vigil.ENOTFOUND, "%s is not a tile path (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>])", r.URL.Path)
	}
	data, err := s.Ledger.Log.Tile(r.Context(), t)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if t.W == ledger.TileWidth {
		// A full tile never changes.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	_, err = w.Write(data)
	return err
}

// ledgerEventView is an entry with its proof of inclusion.
type ledgerEventView struct {
	ID    string `json:"id"`
	Index int64  `json:"index"`
	// Entry is the leaf: the canonical envelope, exactly as hashed.
	Entry json.RawMessage `json:"entry"`
	// Checkpoint is the signed note the proof is against.
	Checkpoint string `json:"checkpoint"`
	// InclusionProof is the RFC 6962 audit path, base64 hashes leaf to root.
	InclusionProof []string `json:"inclusion_proof"`
	// TLogProof is the same as a C2SP tlog-proof, for offline checking.
	TLogProof string `json:"tlog_proof"`
}

func (s *Server) handleLedgerEvent(w http.ResponseWriter, r *http.Request) error {
	in, err := s.Ledger.Log.Prove(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if r.URL.Query().Get("format") == "tlog-proof" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, err := w.Write(in.TLogProof())
		return err
	}
	return web.WriteJSON(w, http.StatusOK, ledgerEventView{
		ID: in.Entry.EventID, Index: in.Entry.Index, Entry: in.Entry.Data,
		Checkpoint: string(in.Checkpoint.Note), InclusionProof: hashStrings(in.Proof),
		TLogProof: string(in.TLogProof()),
	})
}

func hashStrings(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out
}

func (s *Server) handleLedgerConsistency(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	from, err1 := strconv.ParseInt(q.Get("from"), 10, 64)
	to, err2 := strconv.ParseInt(q.Get("to"), 10, 64)
	if err1 != nil || err2 != nil {
		return vigil.Errorf(vigil.EINVALID, "from and to must be the sizes of two published checkpoints, e.g. ?from=10&to=20")
	}
	c, err := s.Ledger.Log.Consistency(r.Context(), from, to)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, map[string]any{
		"from": from, "to": to, "proof": hashStrings(c.Proof),
		"old_checkpoint": string(c.Old.Note), "new_checkpoint": string(c.New.Note),
	})
}

type ledgerAppendInput struct {
	// Type is the caller's event type (dotted lowercase words); it is recorded
	// as "external.<type>".
	Type string `json:"type"`
	// Data is any JSON; it is stored as the event's body (sealed, erasable), so it
	// may hold personal data.
	Data json.RawMessage `json:"data"`
}

func (s *Server) handleLedgerAppend(w http.ResponseWriter, r *http.Request) error {
	var in ledgerAppendInput
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	in.Type = strings.TrimPrefix(in.Type, ExternalPrefix)
	if in.Type == "" {
		return vigil.Errorf(vigil.EINVALID, "type is required, e.g. \"ticket.closed\"")
	}
	var body []byte
	if len(in.Data) > 0 && string(in.Data) != "null" {
		body = in.Data
	}
	rec, err := s.Ledger.Log.Record(r.Context(), vigil.Event{
		Type: ExternalPrefix + in.Type, Actor: ActorFrom(r.Context()).String(), Body: body,
	})
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusCreated, rec)
}

func (s *Server) handleLedgerErase(w http.ResponseWriter, r *http.Request) error {
	var in reasonInput
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	rec, err := s.Ledger.Log.Erase(r.Context(), ActorFrom(r.Context()).String(), r.PathValue("id"), in.Reason)
	if err != nil {
		return err
	}
	return web.WriteJSON(w, http.StatusOK, rec)
}
